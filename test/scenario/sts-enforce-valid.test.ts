/**
 * sts-enforce-valid — MTA-STS `enforce` through the real daemon: the
 * destination publishes `_mta-sts` and a policy listing its MX; main.cf says
 * only `may`. The daemon fetches the policy over HTTPS from the policy host
 * (port 443 of a loopback address, certificate from the test CA, which is
 * smtp_tls_CAfile), then delivers over TLS 1.2+ with SNI = the MX name and a
 * certificate verified for the MX name: `Verified`, `tls=secure`. The policy
 * is cached in data_directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('MTA-STS enforce with a valid certificate for the MX name: sent, Verified, the policy cached', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.sts.test'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.sts.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.sts.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.sts.test': { cert: host, policy: 'version: STSv1\nmode: enforce\nmx: mx.sts.test\nmax_age: 86400\n' } },
    zone: (_port, stsAddress) => ({
      'sts.test': { MX: [[10, 'mx.sts.test']] },
      'mx.sts.test': { A: ['127.0.0.2'] },
      '_mta-sts.sts.test': { TXT: ['v=STSv1; id=20260101T000000;'] },
      'mta-sts.sts.test': { A: [stsAddress] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@sts.test');
    assert.match(line, /relay=mx\.sts\.test\[127\.0\.0\.2\]:\d+, .*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.ok(s.lab.lines(/^sealpost\/smtp: Verified TLS connection established to mx\.sts\.test\[127\.0\.0\.2\]:\d+: TLSv1\.[23] /).length === 1, s.lab.log());
    assert.ok(s.lab.lines(/^sealpost\/mta-sts: MTA-STS policy of sts\.test fetched: id 20260101T000000, mode enforce, max_age 86400$/).length === 1, s.lab.log());
    const got = s.rx[0]!.messages;
    assert.equal(got.length, 1);
    assert.equal(got[0]!.sni, 'mx.sts.test');
    assert.equal(s.sts!.requests.length, 1);
    assert.deepEqual(s.sts!.requests[0], { sni: 'mta-sts.sts.test', host: 'mta-sts.sts.test', path: '/.well-known/mta-sts.txt' });
    const file = join(s.lab.dir, 'data', 'mta-sts', 'sts.test.json');
    assert.ok(existsSync(file));
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).id, '20260101T000000');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
