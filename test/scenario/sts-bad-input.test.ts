/**
 * sts-bad-input — bad MTA-STS input never crashes the daemon and never
 * downgrades what is cached, through the real daemon:
 *   - an oversized policy file (more than sealpost_mta_sts_max_policy_size),
 *     a binary one, one served as text/html: no policy (logged with its RFC
 *     8460 type), delivery as main.cf says;
 *   - bad `_mta-sts` TXT records (two `v=STSv1` records; an `id` that is not
 *     1–32 letters and digits): no policy, logged, no fetch at all;
 *   - a domain whose cached `enforce` policy is refreshed (new id) into a
 *     binary file: the cached policy is kept and still enforced.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import type { StsSite } from '../harness/sts-server.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('oversized, binary and mistyped policy files, bad TXT records: no crash, no downgrade', async () => {
  const pki = labPki();
  const names = ['big', 'bin', 'html', 'twice', 'badid', 'kept'];
  const mx = mintCert(pki.dir, 'mx', { names: names.map((n) => `mx.${n}.test`), issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: names.map((n) => `mta-sts.${n}.test`), issuer: pki.root });
  const policy = (n: string) => stsPolicy('enforce', [`mx.${n}.test`]);
  const sites: Record<string, StsSite> = {
    'mta-sts.big.test': { cert: host, policy: policy('big'), behavior: 'oversized' },
    'mta-sts.bin.test': { cert: host, behavior: 'binary' },
    'mta-sts.html.test': { cert: host, policy: policy('html'), behavior: 'wrong-type' },
    'mta-sts.twice.test': { cert: host, policy: policy('twice') },
    'mta-sts.badid.test': { cert: host, policy: policy('badid') },
    'mta-sts.kept.test': { cert: host, policy: policy('kept') },
  };
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: sites,
    zone: (_port, addr) => {
      const z: Record<string, object> = {};
      for (const n of names) {
        z[`${n}.test`] = { MX: [[10, `mx.${n}.test`]] };
        z[`mx.${n}.test`] = { A: ['127.0.0.2'] };
        z[`mta-sts.${n}.test`] = { A: [addr] };
        z[`_mta-sts.${n}.test`] = { TXT: ['v=STSv1; id=1;'], ttl: 0 };
      }
      z['_mta-sts.twice.test'] = { TXT: ['v=STSv1; id=1;', 'v=STSv1; id=2;'] };
      z['_mta-sts.badid.test'] = { TXT: ['v=STSv1; id=not-alphanumeric!;'] };
      return z;
    },
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const warnings: Record<string, RegExp> = {
      big: /MTA-STS policy of big\.test: .*: policy larger than 65536 bytes \(sts-policy-invalid\); delivering without MTA-STS$/,
      bin: /MTA-STS policy of bin\.test: .* \(sts-policy-invalid\); delivering without MTA-STS$/,
      html: /MTA-STS policy of html\.test: .*: media type "text\/html" is not text\/plain \(sts-policy-invalid\); delivering without MTA-STS$/,
      twice: /MTA-STS: 2 "v=STSv1" TXT records at _mta-sts\.twice\.test \(exactly one is allowed\); no policy for twice\.test$/,
      badid: /MTA-STS: invalid TXT record at _mta-sts\.badid\.test: bad id "not-alphanumeric!" .*; no policy for badid\.test$/,
    };
    for (const [n, re] of Object.entries(warnings)) {
      const { line } = await s.send(`bob@${n}.test`);
      assert.match(line, /tls=may, dsn=2\.0\.0, status=sent/, `${n}: ${s.lab.log()}`);
      assert.equal(s.lab.lines(new RegExp(`^sealpost/mta-sts: warning: ${re.source}`)).length, 1, `${n}: ${s.lab.log()}`);
    }
    assert.equal(s.sts!.requests.filter((r) => r.host === 'mta-sts.twice.test' || r.host === 'mta-sts.badid.test').length, 0, 'bad TXT records: no fetch');
    // A cached enforce policy survives a refresh that returns garbage.
    const first = await s.send('one@kept.test');
    assert.match(first.line, /tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    sites['mta-sts.kept.test']!.behavior = 'binary';
    s.lab.dns.zone['_mta-sts.kept.test']!.TXT = ['v=STSv1; id=2;'];
    // Past the kept TXT answer (TTL 0: 2 s; dns/answer-cache.ts).
    await new Promise((r) => setTimeout(r, 2_100));
    const second = await s.send('two@kept.test');
    assert.match(second.line, /tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/mta-sts: warning: MTA-STS policy of kept\.test: .* \(sts-policy-invalid\); keeping the cached policy id 1$/).length, 1, s.lab.log());
    assert.equal(s.rx[0]!.messages.length, names.length - 1 + 2);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
