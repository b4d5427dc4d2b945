/**
 * sts-table-override — a local smtp_tls_policy_maps entry overrides both
 * published policies (issue 11 item 1), through the real daemon: the
 * destination publishes an MTA-STS `enforce` policy that does not list its MX
 * and TLSA records that do not match, main.cf says `dane`; the entry
 * `override.test encrypt` decides alone — no policy fetch, no TLSA query —
 * and the mail goes out over TLS (`tls=encrypt`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('a local table entry overrides DANE and MTA-STS', async () => {
  const pki = labPki();
  const mx = mintCert(pki.dir, 'mx', { names: ['mx.override.test'] });
  const other = mintCert(pki.dir, 'other', { names: ['mx.override.test'] });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.override.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.override.test', tls: { key: mx.key, cert: mx.cert } }],
    stsSites: { 'mta-sts.override.test': { cert: host, policy: stsPolicy('enforce', ['elsewhere.override.test']) } },
    zone: (port, addr) => ({
      'override.test': { MX: [[10, 'mx.override.test']], ad: true },
      'mx.override.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.override.test`]: { TLSA: [tlsaFor(other.cert, 3, 1, 1)], ad: true },
      '_mta-sts.override.test': { TXT: ['v=STSv1; id=1;'] },
      'mta-sts.override.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = dane', `smtp_tls_CAfile = ${pki.root.cert}`, 'smtp_tls_policy_maps = texthash:$config_directory/tls_policy'],
    start: false,
  });
  try {
    writeFileSync(join(s.lab.configDir, 'tls_policy'), 'override.test encrypt\n');
    await s.lab.start();
    const { line } = await s.send('bob@override.test');
    assert.match(line, /relay=mx\.override\.test\[127\.0\.0\.2\]:\d+, .*tls=encrypt, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.sts!.requests.length, 0, 'no MTA-STS policy fetch');
    assert.equal(s.lab.dns.queries.filter((q) => q.type === 'TLSA' || q.name.startsWith('_mta-sts.')).length, 0, 'neither TLSA nor _mta-sts asked');
    assert.equal(s.rx[0]!.messages.length, 1);
    assert.equal(s.rx[0]!.messages[0]!.tls, true);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
