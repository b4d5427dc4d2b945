/**
 * dane-unusable-tlsa — a signed destination whose TLSA records are all
 * unusable for SMTP, through the real daemon: PKIX-TA(0)/PKIX-EE(1) usages
 * (RFC 7672 §3.1.3), an unknown usage (4) and a private-use matching type.
 * Postfix's dane_init() makes `dane` run as mandatory unauthenticated TLS
 * (`encrypt`): the mail goes out over TLS (`tls=dane:encrypt`), each
 * unusable record is warned about in Postfix's words, and a server without
 * STARTTLS would not get it in plaintext (the second destination).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('all TLSA records unusable (PKIX usages, an unknown usage): dane runs as encrypt, never plaintext', async () => {
  const pki = labPki();
  const cert = mintCert(pki.dir, 'mx', { names: ['mx.unusable.test'] });
  const [, s1, m1, d1] = tlsaFor(cert.cert, 3, 1, 1);
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.unusable.test', tls: { key: cert.key, cert: cert.cert } }, { name: 'mx.plain.test' }],
    zone: (port) => ({
      'unusable.test': { MX: [[10, 'mx.unusable.test']], ad: true },
      'mx.unusable.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.unusable.test`]: { TLSA: [[1, s1, m1, d1], [0, 0, 1, d1], [4, 1, 1, d1], [3, 1, 255, d1]], ad: true },
      'plain.test': { MX: [[10, 'mx.plain.test']], ad: true },
      'mx.plain.test': { A: ['127.0.0.3'], ad: true },
      [`_${port}._tcp.mx.plain.test`]: { TLSA: [[1, 1, 1, d1]], ad: true },
    }),
    mainCf: ['smtp_tls_security_level = dane'],
  });
  try {
    const { line } = await s.send('bob@unusable.test');
    assert.match(line, /relay=mx\.unusable\.test\[127\.0\.0\.2\]:\d+, .*tls=dane:encrypt, dsn=2\.0\.0, status=sent/, s.lab.log());
    const p = s.port;
    assert.equal(s.lab.lines(new RegExp(`^sealpost/smtp: warning: _${p}\\._tcp\\.mx\\.unusable\\.test unsupported TLSA certificate usage: 1 1 1 [0-9A-F]{64}$`)).length, 1, s.lab.log());
    assert.equal(s.lab.lines(new RegExp(`^sealpost/smtp: warning: _${p}\\._tcp\\.mx\\.unusable\\.test unsupported TLSA certificate usage: 4 1 1 `)).length, 1, s.lab.log());
    assert.equal(s.lab.lines(new RegExp(`^sealpost/smtp: warning: _${p}\\._tcp\\.mx\\.unusable\\.test reserved private-use matching type: 3 1 255 `)).length, 1, s.lab.log());
    assert.equal(s.rx[0]!.messages.length, 1);
    assert.equal(s.rx[0]!.messages[0]!.tls, true);
    // The same with a server that offers no STARTTLS: encrypt never sends in plaintext.
    const plain = await s.send('carol@plain.test');
    assert.match(plain.line, /dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered by host mx\.plain\.test\[127\.0\.0\.3\]\)$/, s.lab.log());
    assert.equal(await s.reasonInMailq(plain.id), 'TLS is required, but was not offered by host mx.plain.test[127.0.0.3]');
    assert.equal(s.rx[1]!.messages.length, 0);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
