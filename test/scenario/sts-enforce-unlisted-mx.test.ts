/**
 * sts-enforce-unlisted-mx — MTA-STS `enforce` and an MX host the policy does
 * not list, through the real daemon: the unlisted host is never connected
 * to (RFC 8461 §5), with Postfix's warning (`MX name 'H' does not match STS
 * MX pattern for 'D'`); mail goes to the listed MX (a one-label wildcard
 * pattern) even though the unlisted one has the better preference. A domain
 * whose only MX is unlisted is deferred, and `mailq` says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert } from '../harness/pki.ts';
import { labPki, stsDaneLab, stsPolicy } from './stsdane-lab.ts';

test('MTA-STS enforce: an MX not in the policy is never tried', async () => {
  const pki = labPki();
  const good = mintCert(pki.dir, 'good', { names: ['mx2.sts.test'], issuer: pki.root });
  const rogue = mintCert(pki.dir, 'rogue', { names: ['rogue.example'], issuer: pki.root });
  const host = mintCert(pki.dir, 'policy-host', { names: ['mta-sts.sts.test', 'mta-sts.only.test'], issuer: pki.root });
  const s = await stsDaneLab({
    receivers: [{ name: 'rogue.example', tls: { key: rogue.key, cert: rogue.cert } }, { name: 'mx2.sts.test', tls: { key: good.key, cert: good.cert } }],
    stsSites: {
      'mta-sts.sts.test': { cert: host, policy: stsPolicy('enforce', ['*.sts.test']) },
      'mta-sts.only.test': { cert: host, policy: stsPolicy('enforce', ['mx.only.test']) },
    },
    zone: (_port, addr) => ({
      'sts.test': { MX: [[5, 'rogue.example'], [10, 'mx2.sts.test']] },
      'only.test': { MX: [[10, 'rogue.example']] },
      'rogue.example': { A: ['127.0.0.2'] },
      'mx2.sts.test': { A: ['127.0.0.3'] },
      '_mta-sts.sts.test': { TXT: ['v=STSv1; id=1;'] },
      '_mta-sts.only.test': { TXT: ['v=STSv1; id=7;'] },
      'mta-sts.sts.test': { A: [addr] },
      'mta-sts.only.test': { A: [addr] },
    }),
    mainCf: ['smtp_tls_security_level = may', `smtp_tls_CAfile = ${pki.root.cert}`],
  });
  try {
    const { line } = await s.send('bob@sts.test');
    assert.match(line, /relay=mx2\.sts\.test\[127\.0\.0\.3\]:\d+, .*tls=secure, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: warning: MX name 'rogue\.example' does not match STS MX pattern for 'sts\.test'$/).length, 1, s.lab.log());
    const only = await s.send('carol@only.test');
    const reason = 'MX host rogue.example is not listed in the MTA-STS policy of only.test';
    assert.ok(only.line.includes(`relay=none, `) && only.line.endsWith(`dsn=4.7.5, status=deferred (${reason})`), `${only.line}\n${s.lab.log()}`);
    assert.equal(await s.reasonInMailq(only.id), reason);
    assert.equal(s.rx[0]!.connections, 0, 'the unlisted MX was never connected to');
    assert.equal(s.rx[1]!.messages.length, 1);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
