/**
 * sts-testing-bad-cert — an MTA-STS policy in mode `testing` and an MX with a
 * self-signed certificate, through the real daemon: the mail is delivered as
 * before (main.cf `may`, RFC 8461 §5: "deliver anyway"), and what would have
 * failed under `enforce` is logged before the delivery's TLS summary
 * (`MTA-STS policy of D (mode testing) would have failed: ...`) and recorded
 * (session record `result.enforced = false`, for TLS-RPT).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('MTA-STS testing with a bad certificate: sent, the failure logged', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.testing.test'] });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.testing.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.testing.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.testing.test': { cert: host, policy: stsPolicy('testing', ['mx.testing.test']) } },
    zone: (_port, addr) => ({
      'testing.test': { MX: [[10, 'mx.testing.test']] },
      'mx.testing.test': { A: ['127.0.0.2'] },
      '_mta-sts.testing.test': { TXT: ['v=STSv1; id=t1;'] },
      'mta-sts.testing.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@testing.test');
    assert.match(line, /relay=mx\.testing\.test\[127\.0\.0\.2\]:\d+, .*tls=may, dsn=2\.0\.0, status=sent/, s.lab.log());
    const lines = s.lab.lines(/^sealpost\/smtp: /);
    const at = lines.findIndex((l) => l.includes('(mode testing) would have failed'));
    assert.equal(lines[at], `sealpost/smtp: MTA-STS policy of testing.test (mode testing) would have failed: certificate verification failed for mx.testing.test[127.0.0.2]:${s.port}: self-signed certificate`, s.lab.log());
    assert.match(lines[at + 1]!, /^sealpost\/smtp: Untrusted TLS connection established to mx\.testing\.test\[127\.0\.0\.2\]:/);
    assert.equal(s.rx[0]!.messages.length, 1);
    assert.equal(s.rx[0]!.messages[0]!.sni, 'mx.testing.test', 'SNI is the MX name under testing too (RFC 8461 §7.1)');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
