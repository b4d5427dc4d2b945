/**
 * dane-and-sts — a destination that publishes both usable TLSA records and
 * an MTA-STS `enforce` policy, through the real daemon: DANE applies and
 * MTA-STS does not (RFC 8461 §2; issue 11): the policy lists another MX
 * host, which MTA-STS alone would skip, and the certificate is self-signed
 * for another name, which MTA-STS alone would refuse; DANE-EE authenticates
 * it and the mail is sent with `tls=dane`. An unsigned destination whose MX
 * host has no TLSA falls to its MTA-STS policy and is skipped; one whose MX
 * host is the signed one with TLSA gets "halfdane" (Postfix's
 * smtp_tls_dane_insecure_mx_policy = dane): DANE still beats MTA-STS,
 * `Trusted`, `tls=dane:halfdane`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('DANE and MTA-STS both published: DANE applies; without usable TLSA, MTA-STS', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['self.invalid'] });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.both.test', 'mta-sts.stsonly.test', 'mta-sts.half.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.both.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: {
      'mta-sts.both.test': { cert: host, policy: stsPolicy('enforce', ['other.both.test']) },
      'mta-sts.stsonly.test': { cert: host, policy: stsPolicy('enforce', ['other.both.test']) },
      'mta-sts.half.test': { cert: host, policy: stsPolicy('enforce', ['other.both.test']) },
    },
    zone: (port, addr) => ({
      'both.test': { MX: [[10, 'mx.both.test']], ad: true },
      'stsonly.test': { MX: [[10, 'mx.stsonly.test']] },
      'mx.stsonly.test': { A: ['127.0.0.2'] },
      'half.test': { MX: [[10, 'mx.both.test']] },
      'mx.both.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.both.test`]: { TLSA: [tlsaFor(mx.cert, 3, 1, 1)], ad: true },
      '_mta-sts.both.test': { TXT: ['v=STSv1; id=1;'] },
      '_mta-sts.stsonly.test': { TXT: ['v=STSv1; id=1;'] },
      '_mta-sts.half.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.half.test': { A: [addr] },
      'mta-sts.both.test': { A: [addr] },
      'mta-sts.stsonly.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = dane', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@both.test');
    assert.match(line, /relay=mx\.both\.test\[127\.0\.0\.2\]:\d+, .*tls=dane, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: Verified TLS connection established to mx\.both\.test/).length, 1, s.lab.log());
    assert.equal(s.lab.lines(/does not match STS MX pattern for 'both\.test'/).length, 0, 'MTA-STS was not applied');
    // Unsigned, no TLSA: no DANE; its MTA-STS policy does not list the MX.
    const other = await s.send('carol@stsonly.test');
    assert.ok(other.line.endsWith('dsn=4.7.5, status=deferred (MX host mx.stsonly.test is not listed in the MTA-STS policy of stsonly.test)'), `${other.line}\n${s.lab.log()}`);
    // An insecure MX RRset naming the signed host with TLSA: halfdane, DANE still first.
    const half = await s.send('dave@half.test');
    assert.match(half.line, /relay=mx\.both\.test\[127\.0\.0\.2\]:\d+, .*tls=dane:halfdane, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: Trusted TLS connection established to mx\.both\.test/).length, 1, s.lab.log());
    assert.deepEqual(s.rx[0]!.messages.map((m) => m.rcptTo[0]), ['bob@both.test', 'dave@half.test']);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
