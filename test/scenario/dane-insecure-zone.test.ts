/**
 * dane-insecure-zone — a `dane` destination whose zone is not signed (no AD
 * bit from the validating resolver), through the real daemon: DANE does not
 * apply (RFC 7672 §2.2: no TLSA lookup for hosts in insecure zones — none is
 * even asked), the level is opportunistic (`tls=dane:may`): the mail goes
 * out over unauthenticated TLS although the TLSA record published in the
 * zone would not match.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('insecure zone: no DANE, no TLSA lookup, opportunistic TLS (tls=dane:may)', async () => {
  const pki = labPki();
  const cert = mintCert(pki.dir, 'mx', { names: ['mx.unsigned.test'] });
  const other = mintCert(pki.dir, 'other', { names: ['mx.unsigned.test'] });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.unsigned.test', tls: { key: cert.key, cert: cert.cert } }],
    zone: (port) => ({
      'unsigned.test': { MX: [[10, 'mx.unsigned.test']] },
      'mx.unsigned.test': { A: ['127.0.0.2'] },
      [`_${port}._tcp.mx.unsigned.test`]: { TLSA: [tlsaFor(other.cert, 3, 1, 1)] },
    }),
    mainCf: ['smtp_tls_security_level = dane'],
  });
  try {
    const { line } = await s.send('bob@unsigned.test');
    assert.match(line, /relay=mx\.unsigned\.test\[127\.0\.0\.2\]:\d+, .*tls=dane:may, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: Untrusted TLS connection established to mx\.unsigned\.test\[127\.0\.0\.2\]:/).length, 1, s.lab.log());
    assert.equal(s.lab.dns.queries.filter((q) => q.type === 'TLSA').length, 0, 'no TLSA query for an insecure host');
    assert.equal(s.rx[0]!.messages.length, 1);
    assert.equal(s.rx[0]!.messages[0]!.tls, true);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
