/**
 * interop-postfix — sealpost's daemon delivers to a real Postfix 3.7 (Debian)
 * receiver with its own STARTTLS (smtpd_tls_security_level = may, a
 * certificate for mx.interop.test from the test CA), at every client level
 * that certificate allows: may, encrypt, fingerprint, verify, secure
 * (match=.interop.test), plus secure with the default next-hop match, which
 * the certificate does not allow. Each case asserts sealpost's delivery line,
 * its TLS trust word, and that the Postfix peer logged the TLS session and
 * took the message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDnsServer } from '../harness/dns-server.ts';
import { makePki } from '../harness/pki.ts';
import { startPostfixPeer } from '../harness/postfix-daemon.ts';
import { freePort, makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

const PEER = '127.0.0.5';
const CASES = ['may', 'encrypt', 'fingerprint', 'verify', 'secure', 'wrongname'] as const;

test('delivery to a real Postfix receiver with STARTTLS at every level its certificate allows', { timeout: 120_000 }, async () => {
  const inst = await makeInstance();
  const port = await freePort();
  mkdirSync(join(inst.dir, 'pki'));
  const pki = makePki(join(inst.dir, 'pki'), ['mx.interop.test']);
  const zone: Record<string, { MX?: Array<[number, string]>; A?: string[] }> = { 'mx.interop.test': { A: [PEER] } };
  for (const c of CASES) zone[`${c}.interop.test`] = { MX: [[10, 'mx.interop.test']] };
  const dns = await startDnsServer(zone);
  const peer = await startPostfixPeer(PEER, port, [
    'smtpd_tls_security_level = may',
    `smtpd_tls_cert_file = ${pki.server.cert}`,
    `smtpd_tls_key_file = ${pki.server.key}`,
    'smtpd_tls_loglevel = 1',
    `relay_domains = ${CASES.map((c) => `${c}.interop.test`).join(', ')}`,
    'relay_transport = discard:',
  ]);
  try {
    const fp = new X509Certificate(readFileSync(pki.server.cert)).fingerprint256;
    const policy = join(inst.configDir, 'tls_policy');
    writeFileSync(
      policy,
      [
        'may.interop.test may',
        'encrypt.interop.test encrypt',
        `fingerprint.interop.test fingerprint match=${fp}`,
        'verify.interop.test verify',
        'secure.interop.test secure match=.interop.test',
        'wrongname.interop.test secure',
        '',
      ].join('\n'),
    );
    inst.writeMainCf(
      [
        `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
        `smtp_tcp_port = ${port}`,
        `smtp_tls_CAfile = ${pki.caCert}`,
        'tls_append_default_CA = no',
        `smtp_tls_policy_maps = texthash:${policy}`,
        'smtp_tls_security_level = may',
        'smtp_tls_loglevel = 1',
        'minimal_backoff_time = 60s',
        'queue_run_delay = 60s',
      ].join('\n'),
    );
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const d = await inst.startFg();
    for (const c of CASES) {
      const { client } = await SmtpClient.connect(inst.port);
      assert.match(await client.send('alice@example.org', [`bob@${c}.interop.test`], `Subject: ${c}\r\n\r\ninterop at ${c}\r\n`), /^250 /);
      client.close();
    }
    for (const c of CASES) await d.waitFor(new RegExp(`to=<bob@${c}\\.interop\\.test>.*status=(sent|deferred)`), 20_000);
    const line = (c: string) => d.log.split('\n').find((l) => l.includes(`to=<bob@${c}.interop.test>`)) ?? '';
    const relay = `relay=mx.interop.test[${PEER}]:${port}`;
    for (const c of ['may', 'encrypt', 'fingerprint', 'verify', 'secure']) {
      assert.match(line(c), new RegExp(`${relay.replace(/[[\]]/g, '\\$&')}, .*dsn=2\\.0\\.0, status=sent \\(250 2\\.0\\.0 Ok: queued as `), line(c));
    }
    assert.match(line('wrongname'), /relay=mx\.interop\.test\[127\.0\.0\.5\]:\d+, .*dsn=4\.7\.5, status=deferred \(Server certificate not verified\)/);
    // Trust words: a CA file is configured, so may/encrypt see a Trusted peer; levels that match names see Verified.
    const tlsLines = d.log.split('\n').filter((l) => / TLS connection established to mx\.interop\.test\[127\.0\.0\.5\]:/.test(l));
    assert.ok(tlsLines.some((l) => /: Trusted TLS connection established/.test(l)), tlsLines.join('\n'));
    assert.ok(tlsLines.filter((l) => /: Verified TLS connection established/.test(l)).length >= 3, tlsLines.join('\n'));
    assert.ok(tlsLines.every((l) => /: TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\)/.test(l)), tlsLines.join('\n'));
    // The Postfix peer saw TLS sessions from us and discarded five messages.
    await peer.waitLog(/TLS connection established from \S+\[127\.0\.0\.1\]/);
    const discarded = () => (peer.log().match(/postfix\/discard\[\d+\]: \w+: to=<bob@\w+\.interop\.test>.*status=sent/g) ?? []).length;
    for (let i = 0; discarded() < 5 && i < 100; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(discarded(), 5, peer.log());
    if (process.env.SEALPOST_TEST_VERBOSE) process.stdout.write(d.log.replace(/^/gm, '# '));
    d.kill('SIGTERM');
    await d.exited;
  } finally {
    peer.stop();
    await dns.close();
    inst.cleanup();
  }
});
