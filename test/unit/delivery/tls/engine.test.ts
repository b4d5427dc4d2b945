/**
 * engine.test.ts — the TLS engine against real handshakes: node tls servers
 * on 127.0.0.1 (ephemeral ports) presenting certificates from a test PKI
 * (CA-valid, self-signed, expired, wrong name), and the trust word, failure
 * and log lines evaluate() gives at each level; SecureContexts built once per
 * policy shape; session resumption across engines through the cache file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createServer, type Server, type TLSSocket } from 'node:tls';
import { X509Certificate, createHash } from 'node:crypto';
import { loadConfig } from '../../../../src/config/load.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { createTlsEngine } from '../../../../src/delivery/tls/engine.ts';
import { onPeerEvaluated } from '../../../../src/delivery/tls/enforce.ts';
import type { ConnectPolicy, ServerIdentity, TlsEvaluation } from '../../../../src/delivery/tls/types.ts';
import { connectable } from '../../../harness/policy.ts';
import { makePki, type ServerCert, type TestPki } from '../../../harness/pki.ts';
import { tempDir } from '../../../harness/cli.ts';

let tmp: { dir: string; cleanup: () => void };
let pki: TestPki;
const servers: Server[] = [];
const conns = new Set<{ destroy(): void }>();
function track(s: Server): void {
  s.on('secureConnection', (c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
  });
  servers.push(s);
}

before(() => {
  tmp = tempDir('sealpost-tls-engine-');
  pki = makePki(tmp.dir, ['mx.example.com', 'example.com']);
});
after(async () => {
  for (const c of conns) c.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  tmp.cleanup();
});

async function tlsServer(cert: ServerCert, opts: { withCa?: boolean; anonymous?: boolean } = {}): Promise<number> {
  const keyPem = readFileSync(cert.key, 'utf8');
  const certPem = readFileSync(cert.cert, 'utf8') + (opts.withCa ? readFileSync(pki.caCert, 'utf8') : '');
  const s = createServer({ key: keyPem, cert: certPem }, (sock) => {
    sock.on('error', () => {});
    sock.end('hello\r\n');
  });
  track(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as { port: number }).port;
}

let cfgN = 0;
function engineFor(mainCf: string) {
  const dir = join(tmp.dir, `cfg${cfgN++}`);
  require_mkdir(dir);
  writeFileSync(join(dir, 'main.cf'), `compatibility_level = 3.11\n${mainCf}`);
  const config = loadConfig({ configDir: dir });
  const log = memoryMailLog();
  const engine = createTlsEngine({ config, tables: new TableSet({ baseDir: dir }), log });
  return { engine, log, dir };
}
import { mkdirSync } from 'node:fs';
function require_mkdir(d: string): void {
  mkdirSync(d, { recursive: true });
}

async function handshake(engine: ReturnType<typeof createTlsEngine>, policy: ConnectPolicy, server: ServerIdentity): Promise<{ ev: TlsEvaluation; socket: TLSSocket }> {
  const opts = engine.connectOptions(policy, server);
  const plain = netConnect(server.port, server.address);
  await new Promise<void>((r, j) => plain.once('connect', r).once('error', j));
  const socket = tlsConnect({ ...opts, socket: plain });
  await new Promise<void>((r, j) => socket.once('secureConnect', r).once('error', j));
  const ev = engine.evaluate(policy, socket, server);
  // Read the server's first bytes: the server side finished its handshake too.
  await new Promise<void>((r) => {
    socket.once('data', () => r());
    socket.once('end', () => r());
    socket.once('error', () => r());
  });
  return { ev, socket };
}

const srv = (port: number, hostname = 'mx.example.com'): ServerIdentity => ({ hostname, address: '127.0.0.1', port, mxAuthenticated: false });

test('may without any CA: a CA-signed certificate is Untrusted, delivery continues; summary line in Postfix shape', async () => {
  const port = await tlsServer(pki.server, { withCa: true });
  const { engine } = engineFor('');
  const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  assert.equal(policy.level, 'may');
  const { ev, socket } = await handshake(engine, policy, srv(port));
  socket.destroy();
  assert.equal(ev.trust, 'Untrusted');
  assert.equal(ev.failure, undefined);
  assert.deepEqual(onPeerEvaluated(policy, ev), { action: 'continue' });
  const line = engine.summaryLine(ev, srv(port), false);
  assert.match(line, new RegExp(`^Untrusted TLS connection established to mx\\.example\\.com\\[127\\.0\\.0\\.1\\]:${port}: TLSv1\\.3 with cipher TLS_AES_256_GCM_SHA384 \\(256/256 bits\\) key-exchange X25519 server-signature ECDSA \\(prime256v1\\) server-digest SHA256$`));
  assert.match(engine.summaryLine(ev, srv(port), true), /^Untrusted TLS connection reused to /);
});

test('encrypt with smtp_tls_CAfile: CA-signed → Trusted; self-signed → Untrusted; neither fails', async () => {
  const good = await tlsServer(pki.server, { withCa: true });
  const self = await tlsServer(pki.selfSigned);
  const { engine, log } = engineFor(`smtp_tls_security_level = encrypt\nsmtp_tls_CAfile = ${pki.caCert}\n`);
  const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  assert.equal(policy.level, 'encrypt');
  const a = await handshake(engine, policy, srv(good));
  a.socket.destroy();
  assert.equal(a.ev.trust, 'Trusted');
  assert.equal(a.ev.failure, undefined);
  const b = await handshake(engine, policy, srv(self));
  b.socket.destroy();
  assert.equal(b.ev.trust, 'Untrusted');
  assert.equal(b.ev.failure, undefined);
  // encrypt does not require matching: no verification lines at loglevel 0.
  assert.deepEqual(b.ev.logLines, []);
  assert.deepEqual(log.lines, []);
});

test('verify: CA-valid with the MX name → Verified; wrong name → Untrusted (num=62) + Server certificate not verified', async () => {
  const good = await tlsServer(pki.server, { withCa: true });
  const wrong = await tlsServer(pki.wrongName, { withCa: true });
  const { engine } = engineFor(`smtp_tls_security_level = verify\nsmtp_tls_CAfile = ${pki.caCert}\n`);
  const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  assert.deepEqual(policy.match, ['hostname']);
  const a = await handshake(engine, policy, srv(good));
  a.socket.destroy();
  assert.equal(a.ev.trust, 'Verified');
  assert.deepEqual(onPeerEvaluated(policy, a.ev), { action: 'continue' });
  const b = await handshake(engine, policy, srv(wrong));
  b.socket.destroy();
  assert.equal(b.ev.trust, 'Untrusted');
  assert.deepEqual(b.ev.failure, { reason: 'Server certificate not verified', dsn: '4.7.5' });
  assert.deepEqual(b.ev.logLines, [`server certificate verification failed for mx.example.com[127.0.0.1]:${wrong}: num=62:hostname mismatch`]);
  assert.deepEqual(onPeerEvaluated(policy, b.ev), { action: 'fail', reason: 'Server certificate not verified', dsn: '4.7.5', nextHost: true, throttle: true, type: 'certificate-host-mismatch' });
  // verify's default strategy is the MX host name: a certificate not naming it fails.
  const c = await handshake(engine, policy, srv(good, 'other.example.net'));
  c.socket.destroy();
  assert.equal(c.ev.trust, 'Untrusted');
  assert.ok(c.ev.failure);
});

test('secure: self-signed → untrusted issuer line; expired → certificate has expired; dot-nexthop accepts mx.example.com', async () => {
  const self = await tlsServer(pki.selfSigned);
  const expired = await tlsServer(pki.expired, { withCa: true });
  const good = await tlsServer(pki.server, { withCa: true });
  const { engine } = engineFor(`smtp_tls_security_level = secure\nsmtp_tls_CAfile = ${pki.caCert}\n`);
  const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  assert.deepEqual(policy.match, ['nexthop', 'dot-nexthop']);
  const a = await handshake(engine, policy, srv(self));
  a.socket.destroy();
  assert.equal(a.ev.trust, 'Untrusted');
  assert.deepEqual(a.ev.logLines, [`certificate verification failed for mx.example.com[127.0.0.1]:${self}: self-signed certificate`]);
  assert.equal(a.ev.failure?.reason, 'Server certificate not verified');
  const b = await handshake(engine, policy, srv(expired));
  b.socket.destroy();
  assert.equal(b.ev.trust, 'Untrusted');
  assert.deepEqual(b.ev.logLines, [`server certificate verification failed for mx.example.com[127.0.0.1]:${expired}: certificate has expired`]);
  const c = await handshake(engine, policy, srv(good, 'anything.example.net'));
  c.socket.destroy();
  // secure matches the next-hop domain, not the (forgeable) MX name.
  assert.equal(c.ev.trust, 'Verified');
});

test('verify without a CAfile: untrusted issuer names the CA (X509_NAME_oneline form)', async () => {
  const good = await tlsServer(pki.server, { withCa: true });
  const { engine } = engineFor('smtp_tls_security_level = verify\n');
  const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  const a = await handshake(engine, policy, srv(good));
  a.socket.destroy();
  assert.equal(a.ev.trust, 'Untrusted');
  assert.deepEqual(a.ev.logLines, [`certificate verification failed for mx.example.com[127.0.0.1]:${good}: untrusted issuer /CN=sealpost test CA`]);
});

test('fingerprint: certificate and public-key digests match (colons optional); a wrong one fails', async () => {
  const self = await tlsServer(pki.selfSigned);
  const der = new X509Certificate(readFileSync(pki.selfSigned.cert)).raw;
  const certFp = createHash('sha256').update(der).digest('hex');
  const spki = new X509Certificate(readFileSync(pki.selfSigned.cert)).publicKey.export({ type: 'spki', format: 'der' });
  const keyFp = createHash('sha256').update(spki).digest('hex').toUpperCase().match(/../g)!.join(':');
  for (const fp of [certFp, keyFp]) {
    const { engine } = engineFor(`smtp_tls_security_level = fingerprint\nsmtp_tls_fingerprint_cert_match = ${fp}\n`);
    const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
    const a = await handshake(engine, policy, srv(self));
    a.socket.destroy();
    assert.equal(a.ev.trust, 'Verified', fp);
    assert.equal(a.ev.failure, undefined);
  }
  const { engine } = engineFor(`smtp_tls_security_level = fingerprint\nsmtp_tls_fingerprint_cert_match = ${'00'.repeat(32)}\n`);
  const policy = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  const b = await handshake(engine, policy, srv(self));
  b.socket.destroy();
  assert.equal(b.ev.trust, 'Untrusted');
  assert.equal(b.ev.failure?.reason, 'Server certificate not verified');
  assert.deepEqual(b.ev.logLines, [`server certificate verification failed for mx.example.com[127.0.0.1]:${self}: num=65:no matching DANE TLSA records`]);
});

test('tafile= replaces CAfile trust at secure', async () => {
  const good = await tlsServer(pki.server, { withCa: true });
  const { engine, dir } = engineFor('smtp_tls_policy_maps = texthash:policy\n');
  writeFileSync(join(dir, 'policy'), `example.com secure tafile=${pki.caCert}\nexample.net secure\n`);
  const p1 = connectable(await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  assert.deepEqual(p1.trustAnchorFiles, [pki.caCert]);
  const a = await handshake(engine, p1, srv(good));
  a.socket.destroy();
  assert.equal(a.ev.trust, 'Verified');
  const p2 = connectable(await engine.policyFor('example.net', { tlsRequiredNo: false, requireTls: false }));
  const b = await handshake(engine, p2, srv(good));
  b.socket.destroy();
  assert.equal(b.ev.trust, 'Untrusted');
});

test('SNI: servername=hostname sends the MX name; default sends none', async () => {
  const seen: (string | false)[] = [];
  const keyPem = readFileSync(pki.server.key, 'utf8');
  const certPem = readFileSync(pki.server.cert, 'utf8');
  const s = createServer({ key: keyPem, cert: certPem }, (sock) => {
    seen.push((sock as TLSSocket & { servername: string | false }).servername);
    sock.on('error', () => {});
    sock.end('hello\r\n');
  });
  track(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  const { engine, dir } = engineFor('smtp_tls_policy_maps = texthash:policy\n');
  writeFileSync(join(dir, 'policy'), 'sni.example encrypt servername=hostname\n');
  const p1 = connectable(await engine.policyFor('sni.example', { tlsRequiredNo: false, requireTls: false }));
  (await handshake(engine, p1, srv(port))).socket.destroy();
  const p2 = connectable(await engine.policyFor('plain.example', { tlsRequiredNo: false, requireTls: false }));
  (await handshake(engine, p2, srv(port))).socket.destroy();
  assert.deepEqual(seen, ['mx.example.com', false]);
});

test('contexts are built once per policy shape, not per connection or next hop', async () => {
  const { engine } = engineFor(`smtp_tls_CAfile = ${pki.caCert}\n`);
  const a = connectable(await engine.policyFor('a.example', { tlsRequiredNo: false, requireTls: false }));
  const b = connectable(await engine.policyFor('b.example', { tlsRequiredNo: false, requireTls: false }));
  const s = srv(25);
  const first = engine.connectOptions(a, s).secureContext;
  assert.ok(first);
  assert.equal(engine.connectOptions(b, s).secureContext, first);
  // A rebuilt context would be a new object: every connection of the shape gets the very same one.
  for (let i = 0; i < 200; i++) assert.equal(engine.connectOptions(i % 2 ? a : b, srv(25 + i)).secureContext, first, 'connectOptions must not rebuild contexts');
});

test('session resumption: a second engine resumes from smtp_tls_session_cache_database', async () => {
  const port = await tlsServer(pki.server, { withCa: true });
  const db = join(tmp.dir, 'scache');
  const cf = `smtp_tls_session_cache_database = btree:${db}\nsmtp_tls_protocols = <=TLSv1.2\n`;
  const e1 = engineFor(cf).engine;
  const p1 = connectable(await e1.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  assert.equal(p1.maxProtocol, 'TLSv1.2');
  const a = await handshake(e1, p1, srv(port));
  assert.equal(a.socket.isSessionReused(), false);
  a.socket.destroy();
  e1.flush();
  assert.ok(existsSync(db));
  const e2 = engineFor(cf).engine;
  const p2 = connectable(await e2.policyFor('example.com', { tlsRequiredNo: false, requireTls: false }));
  const b = await handshake(e2, p2, srv(port));
  assert.equal(b.socket.isSessionReused(), true);
  assert.equal(b.ev.trust, 'Untrusted');
  b.socket.destroy();
});
