/**
 * sts-cache-command — `sealpost tls sts list | show | fetch | forget` with the
 * daemon running (the command acts on the daemon's own in-memory service,
 * through request files) and without it (on the cache files):
 *   - after a delivery the policy is listed and shown;
 *   - `fetch` gets a changed policy now, and the daemon's next delivery uses
 *     it without fetching again;
 *   - `forget` drops it from the daemon and the disk;
 *   - with the daemon stopped, `fetch` writes the cache file itself;
 *   - a bad domain is a usage error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('sealpost tls sts: list, show, fetch and forget, through the daemon and without it', async () => {
  const pki = labPki();
  const mx1 = mintCert(pki.dir, 'mx1', { names: ['mx1.cmd.test'], issuer: pki.root });
  const mx2 = mintCert(pki.dir, 'mx2', { names: ['mx2.cmd.test'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.cmd.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx1.cmd.test', tls: { key: mx1.key, cert: mx1.cert } }, { name: 'mx2.cmd.test', tls: { key: mx2.key, cert: mx2.cert } }],
    stsSites: { 'mta-sts.cmd.test': { cert: host, policy: stsPolicy('enforce', ['mx1.cmd.test']) } },
    zone: (_port, addr) => ({
      'cmd.test': { MX: [[10, 'mx1.cmd.test'], [20, 'mx2.cmd.test']] },
      'mx1.cmd.test': { A: ['127.0.0.2'] },
      'mx2.cmd.test': { A: ['127.0.0.3'] },
      '_mta-sts.cmd.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.cmd.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  const file = join(s.lab.dir, 'data', 'mta-sts', 'cmd.test.json');
  try {
    assert.match((await s.send('a@cmd.test')).line, /relay=mx1\.cmd\.test.*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    const list = await s.lab.cli(['tls', 'sts', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^cmd\.test: mode enforce, id 1, expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ, mx mx1\.cmd\.test$/m);
    const show = await s.lab.cli(['tls', 'sts', 'show', 'cmd.test']);
    assert.match(show.stdout, /^cmd\.test: MTA-STS policy id 1, mode enforce\n {2}fetched .*, max_age 86400, expires .*\n {2}\| version: STSv1\n {2}\| mode: enforce\n {2}\| mx: mx1\.cmd\.test\n {2}\| max_age: 86400\n$/);
    // A new policy; `fetch` gets it now, in the daemon.
    s.sts!.sites['mta-sts.cmd.test']!.policy = stsPolicy('enforce', ['mx2.cmd.test']);
    s.lab.dns.zone['_mta-sts.cmd.test']!.TXT = ['v=STSv1; id=2;'];
    const fetched = await s.lab.cli(['tls', 'sts', 'fetch', 'cmd.test']);
    assert.equal(fetched.code, 0, fetched.stderr);
    assert.match(fetched.stdout, /^cmd\.test: MTA-STS policy id 2, mode enforce \(fetched now\)$/m);
    assert.ok(s.lab.lines(/^sealpost\/mta-sts: MTA-STS policy of cmd\.test fetched: id 2, /).length === 1, s.lab.log());
    const requests = s.sts!.requests.length;
    assert.match((await s.send('b@cmd.test')).line, /relay=mx2\.cmd\.test.*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.sts!.requests.length, requests, 'the daemon used the policy the command fetched');
    const json = await s.lab.cli(['tls', 'sts', '-j', 'show', 'cmd.test']);
    assert.equal(JSON.parse(json.stdout).entry.id, '2');
    // forget: from the daemon's memory and the disk.
    const forgot = await s.lab.cli(['tls', 'sts', 'forget', 'cmd.test']);
    assert.equal(forgot.stdout, 'cmd.test: forgotten; the next delivery looks its policy up anew\n');
    assert.equal(existsSync(file), false);
    assert.equal((await s.lab.cli(['tls', 'sts', 'list'])).stdout, 'no MTA-STS policies cached\n');
    // Without the daemon: the command fetches and writes the cache itself.
    await s.lab.stop();
    const here = await s.lab.cli(['tls', 'sts', 'fetch', 'cmd.test']);
    assert.equal(here.code, 0, here.stderr);
    assert.match(here.stdout, /^cmd\.test: MTA-STS policy id 2, mode enforce \(fetched now\)$/m);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).id, '2');
    const bad = await s.lab.cli(['tls', 'sts', 'show', '../etc']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /not a policy domain name/);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
