/**
 * tls-finger.test.ts — `sealpost tls-finger` against loopback receivers found
 * through the lab DNS server: a CA-valid one, a self-signed one and one that
 * does not offer STARTTLS. Asserts the capability list, the fingerprint line,
 * the name checks and the verdict per level in Postfix's reason words, the
 * exit codes (0 when a server answered, 1 when none did, 64 for usage).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { makePki, type TestPki } from '../../harness/pki.ts';
import { startDnsServer, type DnsLab } from '../../harness/dns-server.ts';
import { closedPort, startReceivers, type Receiver } from '../../harness/smtp-receiver.ts';

let dir: string;
let cleanup: () => void;
let pki: TestPki;
let dns: DnsLab;
let rx: Receiver[];

before(async () => {
  const t = tempDir('sealpost-tls-finger-');
  dir = t.dir;
  cleanup = t.cleanup;
  pki = makePki(dir, ['mx.valid.example']);
  rx = await startReceivers([
    { name: 'mx.valid.example', tls: { key: pki.server.key, cert: pki.server.cert } },
    { name: 'mx.self.example', tls: { key: pki.selfSigned.key, cert: pki.selfSigned.cert } },
    { name: 'mx.plain.example' },
    { name: 'mx.refuse.example', tls: { key: pki.server.key, cert: pki.server.cert }, starttls: 'refuse-454' },
    { name: 'mx.busy.example', greeting: '554 5.3.2 mx.busy.example busy' },
  ]);
  dns = await startDnsServer({
    'valid.example': { MX: [[10, 'mx.valid.example']] },
    'mx.valid.example': { A: ['127.0.0.2'] },
    'self.example': { MX: [[10, 'mx.self.example']] },
    'mx.self.example': { A: ['127.0.0.3'] },
    'plain.example': { MX: [[10, 'mx.plain.example']] },
    'mx.plain.example': { A: ['127.0.0.4'] },
    'refuse.example': { MX: [[10, 'mx.refuse.example']] },
    'mx.refuse.example': { A: ['127.0.0.5'] },
    'busy.example': { MX: [[10, 'mx.busy.example']] },
    'mx.busy.example': { A: ['127.0.0.6'] },
    'dead.example': { MX: [[10, 'mx.dead.example']] },
    'mx.dead.example': { A: ['127.0.0.9'] },
  });
  writeFileSync(
    `${dir}/main.cf`,
    [
      `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
      `smtp_tcp_port = ${rx[0]!.port}`,
      `smtp_tls_CAfile = ${pki.caCert}`,
      // Ignored by tls-finger, as by posttls-finger(1):
      `smtp_tls_policy_maps = inline:{ valid.example=none }`,
      '',
    ].join('\n'),
  );
});
after(async () => {
  await Promise.all(rx.map((r) => r.close()));
  await dns.close();
  cleanup();
});

const finger = (args: string[]) => sealpost(['-c', dir, 'tls-finger', '-t', '5', ...args]);

test('CA-valid receiver: capabilities, chain, name checks, every level delivers', async () => {
  const r = await finger(['valid.example']);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  assert.match(o, /^destination: valid\.example \(MX lookup\)$/m);
  assert.match(o, /^=== mx\.valid\.example\[127\.0\.0\.2\]:\d+ ===$/m);
  assert.match(o, /^greeting: 220 mx\.valid\.example/m);
  assert.match(o, /^EHLO capabilities:\n(  .+\n)*  STARTTLS\n/m);
  assert.match(o, /^  PIPELINING$/m);
  assert.match(o, /^TLS: TLSv1\.3 with cipher /m);
  assert.match(o, /^chain trust: trusted/m);
  assert.match(o, /^  \[0\] subject: \/CN=mx\.valid\.example$/m);
  assert.match(o, /^      issuer: \/CN=sealpost test CA$/m);
  const der = new X509Certificate(readFileSync(pki.server.cert)).raw;
  const fp = [...createHash('sha256').update(der).digest()].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
  assert.ok(o.includes(`      sha256 certificate fingerprint: ${fp}\n`), o);
  assert.match(o, /^  hostname \(mx\.valid\.example\): matches mx\.valid\.example$/m);
  assert.match(o, /^  nexthop \(valid\.example\): no match$/m);
  assert.match(o, /^  dot-nexthop \(\.valid\.example\): matches mx\.valid\.example$/m);
  assert.match(o, /^  may: would deliver \(Trusted TLS\)$/m);
  assert.match(o, /^  encrypt: would deliver \(Trusted TLS\)$/m);
  assert.match(o, /^  verify: would deliver \(Verified TLS\)$/m);
  assert.match(o, /^  secure: would deliver \(Verified TLS\)$/m);
  assert.doesNotMatch(o, /^  fingerprint: /m, 'fingerprint level only with fingerprint arguments');
  assert.match(o, /^QUIT: 221/m);
  assert.match(o, /^1 of 1 server answered$/m);
});

test('self-signed receiver: verify and secure would defer with Postfix\'s reason; fingerprint match delivers', async () => {
  const der = new X509Certificate(readFileSync(pki.selfSigned.cert)).raw;
  const fp = [...createHash('sha256').update(der).digest()].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
  const r = await finger(['self.example', fp]);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  assert.match(o, /^chain trust: untrusted/m);
  assert.ok(o.includes(`      sha256 certificate fingerprint: ${fp}\n`), o);
  assert.match(o, /^  may: would deliver \(Untrusted TLS\)$/m);
  assert.match(o, /^  encrypt: would deliver \(Untrusted TLS\)$/m);
  assert.match(o, /^  fingerprint: would deliver \(Verified TLS\)$/m);
  assert.match(o, /^  verify: deferred \(Server certificate not verified\)$/m);
  assert.match(o, /^  secure: deferred \(Server certificate not verified\)$/m);
  assert.match(o, /certificate verification failed for mx\.self\.example\[127\.0\.0\.3\]:\d+: self-signed certificate/);
});

test('a wrong fingerprint fails the fingerprint level; -d changes the digest', async () => {
  const r = await finger(['-d', 'sha1', '-l', 'fingerprint', 'self.example', '00'.repeat(20).replace(/(..)(?!$)/g, '$1:')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^      sha1 certificate fingerprint: ([0-9A-F]{2}:){19}[0-9A-F]{2}$/m);
  assert.match(r.stdout, /^  fingerprint: deferred \(Server certificate not verified\)$/m);
  assert.doesNotMatch(r.stdout, /^  may: /m, '-l judges one level only');
});

test('match arguments replace the verify/secure name strategies', async () => {
  const r = await finger(['-l', 'secure', 'valid.example', 'other.example']);
  assert.match(r.stdout, /^  other\.example: no match$/m);
  assert.match(r.stdout, /^  secure: deferred \(Server certificate not verified\)$/m);
  assert.match(r.stdout, /^      server certificate verification failed for mx\.valid\.example\[127\.0\.0\.2\]:\d+: num=62:hostname mismatch$/m);
});

test('no STARTTLS: encrypt and above would defer (TLS is required, but was not offered by host ...)', async () => {
  const r = await finger(['plain.example']);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  assert.match(o, /^STARTTLS: not offered$/m);
  assert.doesNotMatch(o, /^  STARTTLS$/m);
  assert.match(o, /^  may: would deliver \(plaintext\)$/m);
  assert.match(o, /^  encrypt: deferred \(TLS is required, but was not offered by host mx\.plain\.example\[127\.0\.0\.4\]\)$/m);
  assert.match(o, /^  verify: deferred \(TLS is required, but was not offered by host mx\.plain\.example\[127\.0\.0\.4\]\)$/m);
});

test('STARTTLS refused: may continues in plaintext, encrypt defers with the server\'s reply', async () => {
  const r = await finger(['refuse.example']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^STARTTLS refused: 454 4\.7\.0 /m);
  assert.match(r.stdout, /^  may: would deliver \(plaintext\)$/m);
  assert.match(r.stdout, /^  encrypt: deferred \(TLS is required, but host mx\.refuse\.example\[127\.0\.0\.5\] refused to start TLS: 454 4\.7\.0 .+\)$/m);
});

test('a server that greets with 554 answered, but gets no verdicts', async () => {
  const r = await finger(['busy.example']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^greeting: 554 5\.3\.2 mx\.busy\.example busy$/m);
  assert.match(r.stdout, /no EHLO sent, no verdicts/);
  assert.doesNotMatch(r.stdout, /^verdicts/m);
});

test('[host]:port skips the MX lookup', async () => {
  const r = await finger([`[127.0.0.2]:${rx[0]!.port}`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^destination: \[127\.0\.0\.2\]:\d+ \(no MX lookup\)$/m);
  assert.match(r.stdout, /^=== 127\.0\.0\.2\[127\.0\.0\.2\]:\d+ ===$/m);
  // secure's nexthop is the IP address: the certificate does not name it.
  assert.match(r.stdout, /^  secure: deferred \(Server certificate not verified\)$/m);
});

test('nobody answers: connection refused per host, exit 1', async () => {
  const port = await closedPort(['127.0.0.9']);
  const r = await finger([`dead.example:${port}`]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^connect to mx\.dead\.example\[127\.0\.0\.9\]:\d+: Connection refused$/m);
  assert.match(r.stdout, /^0 of 1 server answered$/m);
});

test('DNS failure is reported, exit 1', async () => {
  const r = await finger(['nosuch.example']);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^cannot find a server: .*nosuch\.example.*\(dsn=5\.4\.4\)$/m);
});

test('usage errors exit 64 with one fatal line', async () => {
  for (const args of [[], ['-l', 'bogus', 'x.example'], ['-a', 'ipx', 'x.example'], ['-Q', 'x'], ['-t', '0', 'x.example'], ['-o', 'novalue', 'x.example']]) {
    const r = await sealpost(['-c', dir, 'tls-finger', ...args]);
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: sealpost tls-finger/);
    assert.equal(r.stderr.split('\n').filter((l) => l.includes('fatal:')).length, 1, r.stderr);
    assert.equal(r.stdout, '');
  }
  const lvl = await sealpost(['-c', dir, 'tls-finger', '-l', 'secur', 'x.example']);
  assert.match(lvl.stderr, /^sealpost\/tls-finger: fatal: Invalid TLS level "secur": use none, may/);
});

test('posttls-finger options sealpost does not have are refused by name', async () => {
  for (const [flag, why] of [['-w', 'SMTPS wrapper mode'], ['-f', 'DANE'], ['-R', 'SRV lookups'], ['-S', 'LMTP'], ['-X', 'tlsproxy'], ['-x', 'raw public keys']]) {
    const r = await sealpost(['-c', dir, 'tls-finger', flag!, 'x.example']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, new RegExp(`^sealpost/tls-finger: fatal: option ${flag} of posttls-finger \\(.*${why}.*\\) is not supported by sealpost tls-finger\n$`));
  }
  for (const [flag, arg] of [['-L', 'summary'], ['-m', '3'], ['-M', 'dane'], ['-r', '2']]) {
    const r = await sealpost(['-c', dir, 'tls-finger', flag!, arg!, 'x.example']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, new RegExp(`option ${flag} of posttls-finger`));
  }
  const hk = await sealpost(['-c', dir, 'tls-finger', '-H', '/x.pem', '-k', '/y.pem', 'x.example']);
  assert.match(hk.stderr, /When the '-H' option is used, neither the '-k', nor the '-K' options may be used/);
});

test('-c drops the SMTP chat, -C prints the chain in PEM, -P is the CApath, -o sets a parameter', async () => {
  const { mkdirSync, copyFileSync } = await import('node:fs');
  const capath = `${dir}/capath`;
  mkdirSync(capath, { recursive: true });
  copyFileSync(pki.caCert, `${capath}/ca.pem`);
  const r = await finger(['-c', '-C', '-P', capath, '-o', 'smtp_tls_CAfile=', '-T', '5', '-l', 'verify', 'valid.example']);
  assert.equal(r.code, 0, r.stderr);
  const o = r.stdout;
  assert.doesNotMatch(o, /^greeting: /m);
  assert.doesNotMatch(o, /^EHLO capabilities/m);
  assert.doesNotMatch(o, /^QUIT: /m);
  assert.match(o, /^TLS: TLSv1\.3 with cipher /m);
  assert.match(o, /^chain trust: trusted/m);
  assert.match(o, /^certificate \[0\] \(PEM\):\n-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----$/m);
  const pem = readFileSync(pki.server.cert, 'utf8').replace(/\r/g, '');
  const body = /-----BEGIN CERTIFICATE-----\n([\s\S]*?)-----END CERTIFICATE-----/.exec(pem)![1]!.replace(/\n/g, '');
  assert.ok(o.replace(/\n/g, '').includes(body), 'the leaf certificate as sent');
  assert.match(o, /^  verify: would deliver \(Verified TLS\)$/m);
  // Without any CA the same level defers: -P was what made it trusted.
  const none = await finger(['-c', '-o', 'smtp_tls_CAfile=', '-l', 'verify', 'valid.example']);
  assert.match(none.stdout, /^  verify: deferred \(Server certificate not verified\)$/m);
});
