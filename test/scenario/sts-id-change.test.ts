/**
 * sts-id-change — a new `id` in the `_mta-sts` TXT record makes the daemon
 * fetch the policy again (RFC 8461 §5.1), through the real daemon: the first
 * policy lists mx1, the new one only mx2; after the change the mail goes to
 * mx2, mx1 is no longer tried (even though a connection to it may still be
 * cached), and the fetch is logged with the new id. The SMTP client runs in
 * the master's thread here (`sealpost_delivery_workers = 0`: the agent asks
 * the MTA-STS service directly; the other scenarios go through a worker
 * thread's channel).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('policy id change: the policy is fetched again and applies at once', async () => {
  const pki = labPki();
  const mx1 = mintCert(pki.dir, 'mx1', { names: ['mx1.idc.test'], issuer: pki.root });
  const mx2 = mintCert(pki.dir, 'mx2', { names: ['mx2.idc.test'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.idc.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx1.idc.test', tls: { key: mx1.key, cert: mx1.cert } }, { name: 'mx2.idc.test', tls: { key: mx2.key, cert: mx2.cert } }],
    stsSites: { 'mta-sts.idc.test': { cert: host, policy: stsPolicy('enforce', ['mx1.idc.test']) } },
    zone: (_port, addr) => ({
      'idc.test': { MX: [[10, 'mx1.idc.test'], [20, 'mx2.idc.test']] },
      'mx1.idc.test': { A: ['127.0.0.2'] },
      'mx2.idc.test': { A: ['127.0.0.3'] },
      // TTL 0: the daemon keeps the TXT answer 2 s (dns/answer-cache.ts), as a caching resolver would keep it for its TTL.
      '_mta-sts.idc.test': { TXT: ['v=STSv1; id=one;'], ttl: 0 },
      'mta-sts.idc.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`, 'smtp_connection_cache_time_limit = 30s', 'sealpost_delivery_workers = 0'],
  });
  try {
    const first = await s.send('a@idc.test');
    assert.match(first.line, /relay=mx1\.idc\.test\[127\.0\.0\.2\]:\d+, .*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    s.sts!.sites['mta-sts.idc.test']!.policy = stsPolicy('enforce', ['mx2.idc.test']);
    s.lab.dns.zone['_mta-sts.idc.test']!.TXT = ['v=STSv1; id=two;'];
    await new Promise((r) => setTimeout(r, 2_100));
    const second = await s.send('b@idc.test');
    assert.match(second.line, /relay=mx2\.idc\.test\[127\.0\.0\.3\]:\d+, .*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.sts!.requests.length, 2);
    assert.equal(s.lab.lines(/^sealpost\/mta-sts: MTA-STS policy of idc\.test fetched: id two, mode enforce, max_age 86400$/).length, 1, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: warning: MX name 'mx1\.idc\.test' does not match STS MX pattern for 'idc\.test'$/).length, 1, s.lab.log());
    assert.deepEqual(s.rx.map((r) => r.messages.length), [1, 1]);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
