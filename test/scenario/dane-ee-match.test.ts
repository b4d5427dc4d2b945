/**
 * dane-ee-match — DANE-EE (3 1 1) through the real daemon: a `dane`
 * destination whose MX zone is signed and publishes a TLSA record for the
 * receiver's key gets the mail over TLS with SNI = the MX name (the TLSA
 * base domain), `Verified` in the log, `tls=dane`, even though the
 * certificate is self-signed and names another host (DANE-EE: no name and no
 * CA checks, RFC 7672 §3.1.1).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('DANE-EE match: sent, Verified, tls=dane, SNI = the TLSA base domain', async () => {
  const pki = labPki();
  const cert = mintCert(pki.dir, 'ee', { names: ['unrelated.invalid'] });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.dane.test', tls: { key: cert.key, cert: cert.cert } }],
    zone: (port) => ({
      'dane.test': { MX: [[10, 'mx.dane.test']], ad: true },
      'mx.dane.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.dane.test`]: { TLSA: [tlsaFor(cert.cert, 3, 1, 1)], ad: true },
    }),
    mainCf: ['smtp_tls_security_level = dane'],
  });
  try {
    const { line } = await s.send('bob@dane.test');
    assert.match(line, /relay=mx\.dane\.test\[127\.0\.0\.2\]:\d+, .*tls=dane, dsn=2\.0\.0, status=sent/, s.lab.log());
    const est = s.lab.lines(/TLS connection established to mx\.dane\.test/);
    assert.match(est[0]!, /^sealpost\/smtp: Verified TLS connection established to mx\.dane\.test\[127\.0\.0\.2\]:\d+: TLSv1\.3 with cipher /);
    const got = s.rx[0]!.messages;
    assert.equal(got.length, 1);
    assert.equal(got[0]!.tls, true);
    assert.equal(got[0]!.sni, 'mx.dane.test');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
