/**
 * sts-malformed-policy — the policy host serves a file that is not an RFC
 * 8461 policy (no `mode:` line, a wildcard in the middle of a pattern),
 * through the real daemon: there is no policy (RFC 8461 §3.3); the reason is
 * logged (`sts-policy-invalid`), the mail goes out as main.cf says (`may`),
 * and nothing is cached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('malformed policy file: no policy, logged, delivered as main.cf says', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['wrong.example'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.broken.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.broken.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.broken.test': { cert: host, policy: 'version: STSv1\nmx: mx.*.broken.test\nmax_age: 86400\n' } },
    zone: (_port, addr) => ({
      'broken.test': { MX: [[10, 'mx.broken.test']] },
      'mx.broken.test': { A: ['127.0.0.2'] },
      '_mta-sts.broken.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.broken.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@broken.test');
    assert.match(line, /relay=mx\.broken\.test\[127\.0\.0\.2\]:\d+, .*tls=may, dsn=2\.0\.0, status=sent/, s.lab.log());
    const warned = s.lab.lines(/^sealpost\/mta-sts: warning: MTA-STS policy of broken\.test: https:\/\/mta-sts\.broken\.test\/\.well-known\/mta-sts\.txt: .* \(sts-policy-invalid\); delivering without MTA-STS$/);
    assert.equal(warned.length, 1, s.lab.log());
    assert.equal(s.rx[0]!.messages.length, 1);
    assert.equal(existsSync(join(s.lab.dir, 'data', 'mta-sts', 'broken.test.json')), false);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
