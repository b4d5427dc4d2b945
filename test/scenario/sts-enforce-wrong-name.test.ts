/**
 * sts-enforce-wrong-name — MTA-STS `enforce`, and the MX presents a
 * certificate (from a trusted CA) for another name, through the real daemon:
 * deferred; the reason keeps Postfix's text and names the policy
 * (`Server certificate not verified: MTA-STS policy of D demands TLS 1.2 or
 * later with a valid certificate for MX`), in the log line and in `mailq`;
 * the receiver gets nothing although main.cf says only `may`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('MTA-STS enforce, certificate for another name: deferred, the reason names the policy', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['other.example'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.sts.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.sts.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.sts.test': { cert: host, policy: stsPolicy('enforce', ['mx.sts.test']) } },
    zone: (_port, addr) => ({
      'sts.test': { MX: [[10, 'mx.sts.test']] },
      'mx.sts.test': { A: ['127.0.0.2'] },
      '_mta-sts.sts.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.sts.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { id, line } = await s.send('bob@sts.test');
    const reason = 'Server certificate not verified: MTA-STS policy of sts.test demands TLS 1.2 or later with a valid certificate for mx.sts.test';
    assert.ok(line.endsWith(`dsn=4.7.5, status=deferred (${reason})`), `${line}\n${s.lab.log()}`);
    assert.equal(s.lab.lines(/^sealpost\/smtp: server certificate verification failed for mx\.sts\.test\[127\.0\.0\.2\]:\d+: num=62:hostname mismatch$/).length, 1, s.lab.log());
    assert.equal(await s.reasonInMailq(id), reason);
    assert.equal(s.rx[0]!.messages.length, 0, 'never delivered: not in plaintext, not over unverified TLS');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
