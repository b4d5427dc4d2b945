/**
 * sts-redirect — the policy host answers with a redirect, through the real
 * daemon: RFC 8461 §3.3 "HTTP 3xx redirects MUST NOT be followed" — one
 * request only, the failure logged (`sts-policy-fetch-error`), no policy:
 * the mail goes out as main.cf says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('redirect from the policy host: refused, not followed, no policy', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.redir.test'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.redir.test', 'mta-sts.target.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.redir.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: {
      'mta-sts.redir.test': { cert: host, behavior: 'redirect', location: 'https://mta-sts.target.test/.well-known/mta-sts.txt' },
      'mta-sts.target.test': { cert: host, policy: stsPolicy('enforce', ['nothing.target.test']) },
    },
    zone: (_port, addr) => ({
      'redir.test': { MX: [[10, 'mx.redir.test']] },
      'mx.redir.test': { A: ['127.0.0.2'] },
      '_mta-sts.redir.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.redir.test': { A: [addr] },
      'mta-sts.target.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@redir.test');
    assert.match(line, /tls=may, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/mta-sts: warning: MTA-STS policy of redir\.test: https:\/\/mta-sts\.redir\.test\/\.well-known\/mta-sts\.txt: redirect \(HTTP 301 to https:\/\/mta-sts\.target\.test\/\.well-known\/mta-sts\.txt\) not followed \(sts-policy-fetch-error\); delivering without MTA-STS$/).length, 1, s.lab.log());
    assert.deepEqual(s.sts!.requests.map((r) => r.host), ['mta-sts.redir.test'], 'the redirect target was never asked');
    assert.equal(s.rx[0]!.messages.length, 1);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
