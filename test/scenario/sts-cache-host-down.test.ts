/**
 * sts-cache-host-down — the MTA-STS cache survives a restart and a failed
 * refresh keeps it (RFC 8461 §5.1), through the real daemon: the first
 * delivery fetches the `enforce` policy and caches it in data_directory; the
 * daemon stops, the policy host goes down and the TXT record gets a new id;
 * after the restart the refetch fails (warned), the cached policy still
 * applies (`tls=secure`, Verified), and the mail is sent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('policy host down with a cached policy: the cached policy applies after a restart', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.cache.test'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.cache.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.cache.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.cache.test': { cert: host, policy: stsPolicy('enforce', ['mx.cache.test']) } },
    zone: (_port, addr) => ({
      'cache.test': { MX: [[10, 'mx.cache.test']] },
      'mx.cache.test': { A: ['127.0.0.2'] },
      '_mta-sts.cache.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.cache.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const first = await s.send('one@cache.test');
    assert.match(first.line, /tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    await s.lab.stop();
    await s.sts!.pause();
    s.lab.dns.zone['_mta-sts.cache.test']!.TXT = ['v=STSv1; id=2;'];
    await s.lab.start();
    const second = await s.send('two@cache.test');
    assert.match(second.line, /relay=mx\.cache\.test\[127\.0\.0\.2\]:\d+, .*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/mta-sts: warning: MTA-STS policy of cache\.test: .*\(sts-policy-fetch-error\); keeping the cached policy id 1$/).length, 1, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: Verified TLS connection established to mx\.cache\.test/).length, 2, s.lab.log());
    assert.equal(s.rx[0]!.messages.length, 2);
    assert.equal(s.sts!.requests.length, 1, 'fetched once, before the host went down');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
