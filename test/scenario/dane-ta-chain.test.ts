/**
 * dane-ta-chain — DANE-TA (2 0 1) through the real daemon: the receiver
 * presents leaf + intermediate, the TLSA record pins the intermediate (a
 * certificate above the leaf, RFC 7672 §3.1.2); the chain below it is
 * verified and the leaf names the TLSA base domain (the MX host). The root
 * is not in smtp_tls_CAfile: DANE alone authenticates. Sent, Verified,
 * tls=dane, SNI = the MX name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCa, mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('DANE-TA match with a chain: sent, Verified, tls=dane', async () => {
  const pki = labPki();
  const inter = makeCa(pki.dir, 'intermediate', pki.root);
  const leaf = mintCert(pki.dir, 'ta-leaf', { names: ['mx.ta.test'], issuer: inter, chain: [inter] });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.ta.test', tls: { key: leaf.key, cert: leaf.chain } }],
    zone: (port) => ({
      'ta.test': { MX: [[10, 'mx.ta.test']], ad: true },
      'mx.ta.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.ta.test`]: { TLSA: [tlsaFor(inter.cert, 2, 0, 1)], ad: true },
    }),
    mainCf: ['smtp_tls_security_level = dane', 'smtp_tls_loglevel = 2'],
  });
  try {
    const { line } = await s.send('bob@ta.test');
    assert.match(line, /relay=mx\.ta\.test\[127\.0\.0\.2\]:\d+, .*tls=dane, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: Verified TLS connection established to mx\.ta\.test\[127\.0\.0\.2\]:/).length, 1, s.lab.log());
    // smtp_tls_loglevel 2: the match, as tls_dane.c words it.
    assert.equal(s.lab.lines(/^sealpost\/smtp: mx\.ta\.test\[127\.0\.0\.2\]:\d+: Matched DANE TA certificate at depth 1: 2 0 1 [0-9A-F]{64}$/).length, 1, s.lab.log());
    assert.equal(s.rx[0]!.messages.length, 1);
    assert.equal(s.rx[0]!.messages[0]!.sni, 'mx.ta.test');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
