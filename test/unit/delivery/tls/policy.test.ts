/**
 * policy.test.ts — deciding the policy for a next hop: main.cf defaults and
 * obsolete parameters, smtp_tls_policy_maps (order, `.parent`, verbatim
 * `[host]:port` keys, a socketmap: table like an MTA-STS resolver), fail
 * closed on lookup errors and bad entries with Postfix's warnings,
 * TLS-Required: No, dane/dane-only without TLSA.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { createTlsEngine } from '../../../../src/delivery/tls/engine.ts';
import { globalLevel, tlsDeprecationWarnings } from '../../../../src/delivery/tls/policy.ts';
import { encodeNetstring, NetstringDecoder } from '../../../../src/maps/netstring.ts';
import { tempDir } from '../../../harness/cli.ts';
import { connectable } from '../../../harness/policy.ts';

let tmp: { dir: string; cleanup: () => void };
before(() => {
  tmp = tempDir('sealpost-tls-policy-');
});
after(() => tmp.cleanup());

let n = 0;
function setup(mainCf: string, files: Record<string, string> = {}) {
  const dir = join(tmp.dir, `c${n++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.cf'), mainCf);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const config = loadConfig({ configDir: dir });
  const log = memoryMailLog();
  const tables = new TableSet({ baseDir: dir });
  const engine = createTlsEngine({ config, tables, log });
  return { engine, log, config, dir, tables };
}
const msg = { tlsRequiredNo: false, requireTls: false };

test('default level: may at compatibility_level 3.11, none below (obsolete smtp_use_tls = no)', async () => {
  assert.equal((await setup('compatibility_level = 3.11\n').engine.policyFor('example.com', msg)).level, 'may');
  const p = await setup('compatibility_level = 3.6\n').engine.policyFor('example.com', msg);
  assert.equal(p.level, 'none');
  assert.equal(p.source, 'smtp_tls_security_level');
  assert.ok(Object.isFrozen(p));
});

test('obsolete parameters map as Postfix maps them, and warn with the replacement', () => {
  const lvl = (cf: string) => globalLevel(setup(`compatibility_level = 3.6\n${cf}`).config);
  assert.equal(lvl('smtp_use_tls = yes\n'), 'may');
  assert.equal(lvl('smtp_enforce_tls = yes\n'), 'verify');
  assert.equal(lvl('smtp_enforce_tls = yes\nsmtp_tls_enforce_peername = no\n'), 'encrypt');
  assert.equal(lvl('smtp_enforce_tls = yes\nsmtp_tls_security_level = may\n'), 'may');
  const w = tlsDeprecationWarnings(setup('smtp_use_tls = yes\nsmtp_tls_per_site = hash:x\nsmtp_tls_policy_maps = hash:y\n').config);
  assert.deepEqual(w, [
    // compatibility_level 3.11 makes smtp_tls_security_level default to may, so the old setting is inert.
    'support for parameter "smtp_use_tls" will be removed; instead, specify "smtp_tls_security_level = may" (ignored: smtp_tls_security_level is set)',
    'support for parameter "smtp_tls_per_site" will be removed; instead, specify "smtp_tls_policy_maps"',
    'smtp_tls_per_site ignored when smtp_tls_policy_maps is not empty.',
  ]);
});

test('main.cf defaults fill the policy: mandatory protocols/ciphers at encrypt+, match lists', async () => {
  const { engine } = setup('compatibility_level = 3.11\nsmtp_tls_mandatory_protocols = >=TLSv1.2\nsmtp_tls_protocols = !SSLv2, !SSLv3\nsmtp_tls_mandatory_exclude_ciphers = RC4\nsmtp_tls_policy_maps = texthash:pol\n', {
    pol: 'enc.example encrypt\nsec.example secure\nver.example verify\n',
  });
  const may = connectable(await engine.policyFor('example.com', msg));
  assert.deepEqual([may.minProtocol, may.maxProtocol], ['TLSv1', 'TLSv1.3']);
  assert.equal(may.ciphers, 'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH');
  const enc = connectable(await engine.policyFor('enc.example', msg));
  assert.deepEqual([enc.minProtocol, enc.maxProtocol], ['TLSv1.2', 'TLSv1.3']);
  assert.equal(enc.ciphers, 'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH:!RC4:!eNULL');
  assert.deepEqual(enc.matchedEntry, { table: 'texthash:pol', key: 'enc.example', value: 'encrypt' });
  const sec = connectable(await engine.policyFor('sec.example', msg));
  assert.deepEqual(sec.match, ['nexthop', 'dot-nexthop']);
  assert.match(sec.ciphers, /:!aNULL$/);
  assert.deepEqual(connectable(await engine.policyFor('ver.example', msg)).match, ['hostname']);
});

test('table attributes override main.cf; exclude= preempts both exclusion lists', async () => {
  const { engine } = setup('smtp_tls_exclude_ciphers = MD5\nsmtp_tls_policy_maps = texthash:pol\n', {
    pol: 'example.com secure match=mx.example.com:.example.net ciphers=high exclude=3DES protocols=>=TLSv1.3 servername=nexthop connection_reuse=yes\n',
  });
  const p = connectable(await engine.policyFor('example.com', msg));
  assert.equal(p.level, 'secure');
  assert.deepEqual(p.match, ['mx.example.com', '.example.net']);
  assert.equal(p.ciphers, 'aNULL:-aNULL:HIGH:@STRENGTH:!3DES:!aNULL');
  assert.deepEqual([p.minProtocol, p.maxProtocol], ['TLSv1.3', 'TLSv1.3']);
  assert.equal(p.servername, 'nexthop');
  assert.equal(p.connectionReuse, true);
});

test('keys: next hop verbatim; .parent walk only for bare domains; first table wins per key', async () => {
  const { engine } = setup('smtp_tls_policy_maps = texthash:one, texthash:two\n', {
    one: '.example.com encrypt\n[mx.example.net] verify\n',
    two: 'sub.example.com secure\n[mx.example.net]:587 secure\n.net none\n',
  });
  // sub.example.com (table two) beats .example.com (table one): each key in every table first.
  assert.equal((await engine.policyFor('sub.example.com', msg)).level, 'secure');
  assert.equal((await engine.policyFor('a.b.example.com', msg)).level, 'encrypt');
  assert.equal((await engine.policyFor('example.com', msg)).level, 'may');
  assert.equal((await engine.policyFor('[mx.example.net]', msg)).level, 'verify');
  assert.equal((await engine.policyFor('[mx.example.net]:587', msg)).level, 'secure');
  // [host]:port gets exactly one lookup: no .net parent for it.
  assert.equal((await engine.policyFor('[mx.example.net]:25', msg)).level, 'may');
  assert.equal((await engine.policyFor('mx.example.net', msg)).level, 'none');
  assert.equal((await engine.policyFor('[mx.example.net]', msg)).nexthopDomain, 'mx.example.net');
});

test('an invalid entry defers with client TLS configuration problem and Postfix warnings', async () => {
  const { engine, log } = setup('smtp_tls_policy_maps = texthash:pol\n', { pol: 'example.com encrypt match=nexthop\n' });
  const p = await engine.policyFor('example.com', msg);
  assert.equal(p.level, 'invalid');
  assert.deepEqual(p.invalid, { reason: 'client TLS configuration problem', dsn: '4.7.5' });
  // smtp_connect.c: the per-server warning names the MX host, at the server step.
  const s = await engine.serverPolicy(p, { hostname: 'mx.example.com', address: '192.0.2.1', port: 25, mxAuthenticated: false });
  assert.deepEqual(s.kind === 'defer' && s.deferral, { reason: 'client TLS configuration problem', dsn: '4.7.5' });
  assert.deepEqual(log.lines, [
    'sealpost/smtp: warning: smtp_tls_policy_maps, next-hop destination "example.com": attribute "match" invalid at security level "encrypt"',
    'sealpost/smtp: warning: TLS policy lookup for example.com/mx.example.com: client TLS configuration problem',
  ]);
});

test('bad values the parser cannot see are invalid too: protocols=, cipher grade, no fingerprints, unreadable tafile', async () => {
  const { engine, log } = setup('smtp_tls_policy_maps = texthash:pol\n', {
    pol: 'a.example encrypt protocols=>=TLSv9\nb.example encrypt ciphers=strong\nc.example fingerprint\nd.example secure tafile=/nonexistent/ta.pem\ne.example encrypt exclude=!RC4\n',
  });
  for (const d of ['a.example', 'b.example', 'c.example', 'd.example', 'e.example']) {
    const p = await engine.policyFor(d, msg);
    assert.equal(p.level, 'invalid', d);
    assert.equal(p.invalid?.reason, 'client TLS configuration problem');
  }
  assert.ok(log.lines.includes('sealpost/smtp: warning: nexthop domain c.example: configured at fingerprint security level, but with no fingerprints to match.'));
});

test('a bad smtp_tls_security_level in main.cf makes every policy invalid, never a downgrade', async () => {
  const { engine, log } = setup('smtp_tls_security_level = mandatory\n');
  const p = await engine.policyFor('example.com', msg);
  assert.equal(p.level, 'invalid');
  assert.ok(log.lines[0]!.endsWith('invalid tls security level: "mandatory"'));
});

test('TLS-Required: No skips the tables and caps the level at may', async () => {
  const { engine } = setup('smtp_tls_security_level = secure\nsmtp_tls_policy_maps = texthash:pol\n', { pol: 'example.com none\n' });
  const p = await engine.policyFor('example.com', { tlsRequiredNo: true, requireTls: false });
  assert.equal(p.level, 'may');
  assert.equal(p.tlsRequiredNo, true);
  assert.equal(p.source, 'TLS-Required: No');
  assert.equal((await engine.policyFor('example.com', msg)).level, 'none');
  const none = await setup('smtp_tls_security_level = none\n').engine.policyFor('x.example', { tlsRequiredNo: true, requireTls: false });
  assert.equal(none.level, 'none');
});

test('dane without DNSSEC: dane runs as may (tls=dane:may); dane-only is a configuration problem', async () => {
  const { engine, log } = setup('smtp_tls_policy_maps = texthash:pol\n', { pol: 'd.example dane\no.example dane-only\n' });
  const d = await engine.policyFor('d.example', msg);
  assert.equal(d.level, 'may');
  assert.equal(d.configuredLevel, 'dane');
  const o = await engine.policyFor('o.example', msg);
  assert.deepEqual(o.invalid, { reason: 'client TLS configuration problem', dsn: '4.7.5' });
  assert.ok(log.lines.includes('sealpost/smtp: warning: o.example: dane-only configured with dnssec lookups disabled'));
});

test('dane-only with smtp_dns_support_level = dnssec and the system resolver (no AD bit, no TLSA): decided per MX host, no TLSA records found', async () => {
  const { engine, log } = setup('smtp_dns_support_level = dnssec\nsmtp_tls_security_level = dane-only\n');
  const hop = await engine.policyFor('example.com', msg);
  assert.equal(hop.level, 'dane-only');
  const s = await engine.serverPolicy(hop, { hostname: 'mx.example.com', address: '192.0.2.1', port: 25, mxAuthenticated: true, addressAuthenticated: false });
  assert.deepEqual(s.kind === 'defer' && [s.deferral, s.resultType, s.applied.source, s.applied.type], [{ reason: 'no TLSA records found', dsn: '4.7.5' }, 'dane-required', 'dane', 'tlsa']);
  assert.ok(log.lines.includes('sealpost/smtp: warning: TLS policy lookup for example.com/mx.example.com: no TLSA records found'), log.lines.join('\n'));
});

test('obsolete smtp_tls_per_site: MUST → verify, MUST_NOPEERMATCH → encrypt, a wildcard MAY yields to a stronger global level', async () => {
  const { engine } = setup('smtp_tls_security_level = encrypt\nsmtp_tls_per_site = texthash:site\n', { site: 'a.example MUST\nb.example MUST_NOPEERMATCH\nc.example MAY\nd.example NONE\ne.example SOMETIMES\n' });
  assert.equal((await engine.policyFor('a.example', msg)).level, 'verify');
  assert.equal((await engine.policyFor('b.example', msg)).level, 'encrypt');
  assert.equal((await engine.policyFor('c.example', msg)).level, 'encrypt');
  assert.equal((await engine.policyFor('d.example', msg)).level, 'none');
  assert.equal((await engine.policyFor('e.example', msg)).invalid?.reason, 'client TLS configuration problem');
});

interface Sm {
  server: Server;
  port: number;
  asked: string[];
  sockets: Set<Socket>;
}
async function socketmapServer(answers: Record<string, string>): Promise<Sm> {
  const sm: Sm = { server: createServer(), port: 0, asked: [], sockets: new Set() };
  sm.server.on('connection', (sock) => {
    sm.sockets.add(sock);
    sock.on('close', () => sm.sockets.delete(sock));
    sock.on('error', () => {});
    const dec = new NetstringDecoder(10000);
    sock.on('data', (chunk) => {
      dec.push(chunk);
      for (let f = dec.next(); f; f = dec.next()) {
        const req = f.toString();
        const key = req.slice(req.indexOf(' ') + 1);
        sm.asked.push(key);
        sock.write(encodeNetstring(answers[key] ?? 'NOTFOUND '));
      }
    });
  });
  await new Promise<void>((r) => sm.server.listen(0, '127.0.0.1', r));
  sm.port = (sm.server.address() as { port: number }).port;
  return sm;
}
async function stopSm(sm: Sm): Promise<void> {
  for (const s of sm.sockets) s.destroy();
  await new Promise((r) => sm.server.close(r));
}

test('socketmap: an MTA-STS resolver answers; a local table listed first wins; TEMP → client TLS configuration problem 4.7.5 (Postfix 3.7/3.11)', async () => {
  const sm = await socketmapServer({
    'dismail.de': 'OK secure match=mx1.dismail.de servername=hostname',
    'sts.example': 'OK secure policy_type=sts policy_domain=sts.example mx_host_pattern=*.sts.example { policy_string = mode: enforce }',
    'temp.example': 'TEMP resolver busy',
  });
  try {
    const spec = `socketmap:inet:127.0.0.1:${sm.port}:postfix`;
    const { engine, log, tables } = setup(`smtp_tls_policy_maps = texthash:local, ${spec}\n`, { local: 'override.example encrypt\n' });
    const p = await engine.policyFor('dismail.de', msg);
    assert.equal(p.level, 'secure');
    assert.deepEqual(p.match, ['mx1.dismail.de']);
    assert.deepEqual(p.matchedEntry, { table: spec, key: 'dismail.de', value: 'secure match=mx1.dismail.de servername=hostname' });
    const sts = await engine.policyFor('sts.example', msg);
    assert.deepEqual(engine.details(sts)?.mxHostPatterns, ['*.sts.example']);
    assert.equal((await engine.policyFor('override.example', msg)).level, 'encrypt');
    const t = await engine.policyFor('temp.example', msg);
    assert.equal(t.level, 'invalid');
    assert.deepEqual(t.invalid, { reason: 'client TLS configuration problem', dsn: '4.7.5' });
    assert.ok(log.lines.includes('sealpost/smtp: warning: smtp_tls_policy_maps, next-hop destination "temp.example": policy table lookup error'), log.lines.join('\n'));
    assert.ok(log.lines.some((l) => l.includes('resolver busy')), 'the table error itself is logged too');
    await engine.serverPolicy(t, { hostname: 'mx.temp.example', address: '192.0.2.1', port: 25, mxAuthenticated: false });
    assert.ok(log.lines.includes('sealpost/smtp: warning: TLS policy lookup for temp.example/mx.temp.example: client TLS configuration problem'));
    // Errors are not cached: the resolver is asked again.
    const before = sm.asked.filter((k) => k === 'temp.example').length;
    await engine.policyFor('temp.example', msg);
    assert.equal(sm.asked.filter((k) => k === 'temp.example').length, before + 1);
    await tables.close();
  } finally {
    await stopSm(sm);
  }
});

test('socketmap unreachable: every next hop defers with client TLS configuration problem after "policy table lookup error", never falls back to the default level', async () => {
  const sm = await socketmapServer({});
  const port = sm.port;
  await stopSm(sm);
  const { engine, tables, log } = setup(`smtp_tls_security_level = may\nsmtp_tls_policy_maps = socketmap:inet:127.0.0.1:${port}:postfix\n`);
  const p = await engine.policyFor('example.com', msg);
  assert.equal(p.level, 'invalid');
  assert.equal(p.invalid?.reason, 'client TLS configuration problem');
  assert.equal(p.invalid?.dsn, '4.7.5');
  assert.ok(log.lines.includes('sealpost/smtp: warning: smtp_tls_policy_maps, next-hop destination "example.com": policy table lookup error'), log.lines.join('\n'));
  await tables.close();
});

test('decided policies are cached per next hop, and reset() drops them', async () => {
  const { engine, dir } = setup('smtp_tls_policy_maps = texthash:pol\n', { pol: 'example.com encrypt\n' });
  const a = await engine.policyFor('example.com', msg);
  assert.equal(await engine.policyFor('example.com', msg), a);
  writeFileSync(join(dir, 'pol'), 'example.com secure\n');
  engine.reset();
  assert.equal((await engine.policyFor('example.com', msg)).level, 'encrypt', 'texthash is read at open; TableSet.reopen() is the reload');
});
