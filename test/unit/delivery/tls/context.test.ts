/**
 * context.test.ts — SecureContext material: CAfile, CApath, default roots
 * only with tls_append_default_CA, client certificates from
 * smtp_tls_chain_files or smtp_tls_cert_file/key_file (checked by a real
 * server that asks for one), and unreadable files as configuration problems.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect, createServer, rootCertificates, type TLSSocket } from 'node:tls';
import { loadConfig } from '../../../../src/config/load.ts';
import { ContextCache, pemBlocks } from '../../../../src/delivery/tls/context.ts';
import { createTlsEngine } from '../../../../src/delivery/tls/engine.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import type { ConnectPolicy } from '../../../../src/delivery/tls/types.ts';
import { makePki, type TestPki } from '../../../harness/pki.ts';
import { tempDir } from '../../../harness/cli.ts';
import { fixtureApplied } from '../../../harness/policy.ts';

let tmp: { dir: string; cleanup: () => void };
let pki: TestPki;
before(() => {
  tmp = tempDir('sealpost-tls-ctx-');
  pki = makePki(tmp.dir, ['mx.example.com']);
});
after(() => tmp.cleanup());

let n = 0;
function config(mainCf: string) {
  const dir = join(tmp.dir, `c${n++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.cf'), mainCf);
  return loadConfig({ configDir: dir });
}
const policy: ConnectPolicy = Object.freeze({
  applied: fixtureApplied('encrypt'),
  level: 'encrypt',
  nexthop: 'example.com',
  nexthopDomain: 'example.com',
  match: [],
  minProtocol: 'TLSv1.2',
  maxProtocol: 'TLSv1.3',
  ciphers: 'HIGH',
  trustAnchorFiles: [],
  connectionReuse: false,
  source: 'test',
  tlsRequiredNo: false,
});

test('pemBlocks separates certificates and keys', () => {
  const b = pemBlocks(readFileSync(pki.server.chain, 'utf8'));
  assert.equal(b.keys.length, 1);
  assert.equal(b.certs.length, 2);
});

test('CA bundle: empty by default (no Node roots), CAfile + CApath, roots only with tls_append_default_CA', () => {
  assert.deepEqual(new ContextCache(config('')).caBundle(), []);
  const capath = join(tmp.dir, 'capath');
  mkdirSync(capath);
  copyFileSync(pki.caCert, join(capath, 'a1b2c3d4.0'));
  const both = new ContextCache(config(`smtp_tls_CAfile = ${pki.caCert}\nsmtp_tls_CApath = ${capath}\n`)).caBundle();
  assert.equal(both.length, 2);
  const roots = new ContextCache(config('tls_append_default_CA = yes\n')).caBundle();
  assert.equal(roots.length, rootCertificates.length);
});

test('one context per shape', () => {
  const c = new ContextCache(config(''));
  const a = c.get(policy);
  assert.equal(c.get({ ...policy, nexthop: 'other.example' }), a);
  assert.notEqual(c.get({ ...policy, ciphers: 'HIGH:!SHA1' }), a);
  assert.equal(c.size, 2);
  assert.throws(() => c.get({ ...policy, ciphers: 'NO-SUCH-CIPHER' }), /cannot set up the TLS client context \(ciphers "NO-SUCH-CIPHER"\)/);
});

async function clientCertSeen(mainCf: string): Promise<string | undefined> {
  const s = createServer({ key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert), requestCert: true, rejectUnauthorized: false }, (sock) => {
    sock.on('error', () => {});
    sock.end('hi\r\n');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  try {
    const c = new ContextCache(config(mainCf));
    const plain = netConnect(port, '127.0.0.1');
    await new Promise<void>((r) => plain.once('connect', r));
    let seen: string | undefined;
    s.once('secureConnection', (sock: TLSSocket) => {
      const cert = sock.getPeerCertificate();
      seen = cert && cert.subject ? String(cert.subject.CN) : undefined;
    });
    const t = tlsConnect({ socket: plain, secureContext: c.get(policy), rejectUnauthorized: false });
    await new Promise<void>((r, j) => t.once('secureConnect', r).once('error', j));
    await new Promise<void>((r) => t.once('data', () => r()));
    t.destroy();
    return seen;
  } finally {
    await new Promise((r) => s.close(r));
  }
}

test('client certificate from smtp_tls_chain_files, or smtp_tls_cert_file + smtp_tls_key_file; none by default', async () => {
  assert.equal(await clientCertSeen(`smtp_tls_chain_files = ${pki.wrongName.chain}\n`), 'wrong.invalid');
  assert.equal(await clientCertSeen(`smtp_tls_cert_file = ${pki.server.cert}\nsmtp_tls_key_file = ${pki.server.key}\n`), 'mx.example.com');
  assert.equal(await clientCertSeen(''), undefined);
});

test('an unreadable CAfile or client key makes the policy invalid (client TLS configuration problem), with a warning', async () => {
  for (const cf of ['smtp_tls_CAfile = /nonexistent/ca.pem\n', 'smtp_tls_cert_file = /nonexistent/cert.pem\n']) {
    const c = config(`smtp_tls_security_level = encrypt\n${cf}`);
    const log = memoryMailLog();
    const engine = createTlsEngine({ config: c, tables: new TableSet({}), log });
    const p = await engine.policyFor('example.com', { tlsRequiredNo: false, requireTls: false });
    assert.equal(p.level, 'invalid', cf);
    assert.deepEqual(p.invalid, { reason: 'client TLS configuration problem', dsn: '4.7.5' });
    assert.match(log.lines[0]!, /^sealpost\/smtp: warning: smtp_tls_(CAfile|cert_file): cannot read \/nonexistent\/.*: ENOENT$/);
  }
});
