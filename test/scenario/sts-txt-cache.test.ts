/**
 * sts-txt-cache — the daemon's MTA-STS service keeps the `_mta-sts` TXT
 * answer for its TTL (dns/answer-cache.ts: 1 s + TTL clamped to 1..100 s), as
 * a caching resolver would: through the real daemon, three deliveries to an
 * `enforce` destination cost one TXT question and one policy fetch; `sealpost
 * tls sts fetch` asks DNS anew (its "now" is DNS's now).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('MTA-STS: the TXT answer is kept for its TTL; tls sts fetch asks again', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.txtc.test'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.txtc.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.txtc.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.txtc.test': { cert: host, policy: 'version: STSv1\nmode: enforce\nmx: mx.txtc.test\nmax_age: 86400\n' } },
    zone: (_port, stsAddress) => ({
      'txtc.test': { MX: [[10, 'mx.txtc.test']] },
      'mx.txtc.test': { A: ['127.0.0.2'] },
      '_mta-sts.txtc.test': { TXT: ['v=STSv1; id=1;'], ttl: 60 },
      'mta-sts.txtc.test': { A: [stsAddress] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  const txtQuestions = (): number => s.lab.dns.queries.filter((q) => q.type === 'TXT' && q.name.toLowerCase() === '_mta-sts.txtc.test').length;
  try {
    for (const rcpt of ['a@txtc.test', 'b@txtc.test', 'c@txtc.test']) {
      assert.match((await s.send(rcpt)).line, /tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    }
    assert.equal(txtQuestions(), 1, 'three deliveries within the TTL: one TXT question');
    assert.equal(s.sts!.requests.length, 1, 'one policy fetch');
    const fetched = await s.lab.cli(['tls', 'sts', 'fetch', 'txtc.test']);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.equal(txtQuestions(), 2, '`tls sts fetch` asks DNS anew');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
