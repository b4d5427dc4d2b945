/**
 * tls-published.test.ts — `sealpost tls explain` and `sealpost tls-finger`
 * with DANE and MTA-STS, against the loopback lab (DNS server with the AD
 * bit, the HTTPS policy host on port 443, SMTP receivers), no daemon:
 *   - explain shows the `_mta-sts` TXT record, the policy fetched (id,
 *     expiry, lines; not stored), per MX host whether the MX and address
 *     answers were secure, the TLSA records, which source won and why; an
 *     unlisted MX is "NOT TRIED"; `-n` looks nothing up;
 *   - tls-finger prints the MTA-STS policy and a `dane` and an `mta-sts`
 *     verdict per server, with the TLSA records.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { startDnsServer, type DnsLab } from '../../harness/dns-server.ts';
import { makeCa, mintCert, tlsaFor, type ServerCert } from '../../harness/pki.ts';
import { startReceivers, type Receiver } from '../../harness/smtp-receiver.ts';
import { startStsServer, type StsLab } from '../../harness/sts-server.ts';

let dir: string;
let cleanup: () => void;
let dns: DnsLab;
let sts: StsLab;
let rx: Receiver[];
let mx: ServerCert;

before(async () => {
  const t = tempDir('sealpost-tls-published-');
  dir = t.dir;
  cleanup = t.cleanup;
  const root = makeCa(dir, 'root');
  mx = mintCert(dir, 'mx', { names: ['self.invalid'] });
  const host = mintCert(dir, 'policy-host', { names: ['mta-sts.both.test'], issuer: root });
  rx = await startReceivers([{ name: 'mx.both.test', tls: { key: mx.key, cert: mx.cert } }]);
  const port = rx[0]!.port;
  sts = await startStsServer({ sites: { 'mta-sts.both.test': { cert: host, policy: 'version: STSv1\nmode: enforce\nmx: mail.both.test\nmax_age: 86400\n' } } });
  dns = await startDnsServer({
    'both.test': { MX: [[10, 'mx.both.test']], ad: true },
    'mx.both.test': { A: ['127.0.0.2'], ad: true },
    [`_${port}._tcp.mx.both.test`]: { TLSA: [tlsaFor(mx.cert, 3, 1, 1)], ad: true },
    '_mta-sts.both.test': { TXT: ['v=STSv1; id=20261204;'] },
    'mta-sts.both.test': { A: [sts.address] },
  });
  writeFileSync(join(dir, 'main.cf'), [
    `data_directory = ${join(dir, 'data')}`,
    `queue_directory = ${join(dir, 'queue')}`,
    `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
    `smtp_tcp_port = ${port}`,
    `smtp_tls_CAfile = ${root.cert}`,
    'smtp_dns_support_level = dnssec',
    'smtp_tls_security_level = dane',
    '',
  ].join('\n'));
  writeFileSync(join(dir, 'master.cf'), 'smtp unix - - n - - smtp\n');
});
after(async () => {
  await Promise.all(rx.map((r) => r.close()));
  await sts.close();
  await dns.close();
  cleanup();
});

test('tls explain: the MTA-STS policy, the TLSA records per MX host, the winner; nothing stored', async () => {
  const r = await sealpost(['-c', dir, 'tls', 'explain', 'bob@both.test']);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  const port = rx[0]!.port;
  assert.match(o, /^ {2}MTA-STS: policy of both\.test \(fetched now; not stored\):\n {4}TXT _mta-sts\.both\.test: "v=STSv1; id=20261204;"\n {4}id 20261204, mode enforce, max_age 86400, fetched \S+, expires \S+\n {4}\| version: STSv1\n {4}\| mode: enforce\n {4}\| mx: mail\.both\.test\n {4}\| max_age: 86400\n/m);
  assert.match(o, /^ {2}level: dane \(effective may before the MX hosts are known; /m);
  assert.ok(o.includes(`    mx.both.test[127.0.0.2]:${port}: MX RRset secure, address records secure\n`), o);
  assert.ok(o.includes(`      DANE: _${port}._tcp.mx.both.test: 1 usable TLSA record(s) of 1; SNI mx.both.test\n        TLSA ${tlsaFor(mx.cert, 3, 1, 1).join(' ')}\n`), o);
  assert.match(o, /^ {6}MTA-STS: mx\.both\.test matches no mx pattern \(mail\.both\.test\)$/m);
  assert.ok(o.includes(`      level: dane (from TLSA records of _${port}._tcp.mx.both.test; source dane)\n`), o);
  assert.match(o, /^ {6}DANE: the certificate must match a TLSA record; SNI mx\.both\.test$/m);
  assert.equal(existsSync(join(dir, 'data', 'mta-sts', 'both.test.json')), false, 'explain never stores a policy');
  // -n: tables only.
  const offline = await sealpost(['-c', dir, 'tls', 'explain', '-n', 'bob@both.test']);
  assert.match(offline.stdout, /^ {2}MTA-STS: not looked up \(-n: no network\)$/m);
  assert.doesNotMatch(offline.stdout, /servers \(the per-server step/);
});

test('tls explain: without usable TLSA the MTA-STS policy decides, and an unlisted MX is not tried', async () => {
  const base = `${dir}/main.cf`;
  const other = tempDir('sealpost-tls-published-may-');
  try {
    // The same lab with main.cf at may: DANE is not asked, MTA-STS applies.
    const { readFileSync } = await import('node:fs');
    writeFileSync(join(other.dir, 'main.cf'), readFileSync(base, 'utf8').replace('smtp_tls_security_level = dane', 'smtp_tls_security_level = may'));
    writeFileSync(join(other.dir, 'master.cf'), 'smtp unix - - n - - smtp\n');
    const r = await sealpost(['-c', other.dir, 'tls', 'explain', 'bob@both.test']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {6}NOT TRIED: MX host mx\.both\.test is not listed in the MTA-STS policy of both\.test$/m);
    assert.match(r.stdout, /^ {6}warning: MX name 'mx\.both\.test' does not match STS MX pattern for 'both\.test'$/m);
  } finally {
    other.cleanup();
  }
});

test('tls-finger: the MTA-STS policy, a dane verdict with its TLSA record, an mta-sts verdict', async () => {
  const r = await sealpost(['-c', dir, 'tls-finger', '-t', '5', 'both.test']);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  assert.match(o, /^MTA-STS: policy of both\.test \(fetched now; not stored\): mode enforce, id 20261204, mx mail\.both\.test, expires \S+$/m);
  assert.match(o, /^ {2}dane: would deliver \(Verified TLS\)$/m);
  assert.ok(o.includes(`      TLSA ${tlsaFor(mx.cert, 3, 1, 1).join(' ')}\n`), o);
  assert.match(o, /^ {2}mta-sts \(enforce\): not tried \(MX host mx\.both\.test is not listed in the MTA-STS policy of both\.test\)$/m);
  assert.match(o, /^ {2}verify: deferred \(Server certificate not verified\)$/m);
});
