/**
 * sts-tls-required-no — a message with `TLS-Required: No` (RFC 8689 §5),
 * through the real daemon: the sender prefers delivery; DANE and MTA-STS are
 * skipped (Postfix ≥ 3.10 policy_create(): no policy lookups, the level
 * capped at `may`). The destination's MTA-STS `enforce` policy does not list
 * its MX and its TLSA record does not match, main.cf says `dane-only`: the
 * message is sent anyway over opportunistic TLS (`tls=may`), without a
 * policy fetch or a TLSA query; an ordinary message to it is deferred.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('TLS-Required: No skips DANE and MTA-STS', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.trn.test'] });
  const other = mintCert(pki.dir, 'other', { names: ['mx.trn.test'] });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.trn.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.trn.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.trn.test': { cert: host, policy: stsPolicy('enforce', ['elsewhere.trn.test']) } },
    zone: (port, addr) => ({
      'trn.test': { MX: [[10, 'mx.trn.test']], ad: true },
      'mx.trn.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.trn.test`]: { TLSA: [tlsaFor(other.cert, 3, 1, 1)], ad: true },
      '_mta-sts.trn.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.trn.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = dane-only', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@trn.test', 'Subject: report\r\nTLS-Required: No\r\n\r\nhello\r\n');
    assert.match(line, /relay=mx\.trn\.test\[127\.0\.0\.2\]:\d+, .*tls=may, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.sts!.requests.length, 0, 'no MTA-STS policy fetch');
    assert.equal(s.lab.dns.queries.filter((q) => q.type === 'TLSA' || q.name.startsWith('_mta-sts.')).length, 0, 'neither TLSA nor _mta-sts asked');
    assert.equal(s.rx[0]!.messages.length, 1);
    // Without the header the same destination is deferred (the TLSA record does not match).
    const plain = await s.send('carol@trn.test');
    assert.match(plain.line, /dsn=4\.7\.5, status=deferred \(Server certificate not verified\)$/, s.lab.log());
    assert.equal(s.rx[0]!.messages.length, 1);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
