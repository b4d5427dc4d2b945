/**
 * dane-tlsa-cache — the delivery agent keeps a TLSA answer as Postfix's
 * smtp(8) keeps it (tls_dane.c): 1 s + its TTL clamped to [1 s, 100 s]. Three
 * messages to a `dane` destination through the real daemon: the first two (one
 * after the other, within the TTL) cost one TLSA question at the lab's DNS
 * server; the third, sent after the answer's 1 s + 1 s, asks again. Every
 * message is verified by DANE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('TLSA answers are kept for 1 s + TTL (clamped to 1..100 s), then asked again', async () => {
  const pki = labPki();
  const cert = mintCert(pki.dir, 'ee', { names: ['mx.cache.test'] });
  let qname = '';
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.cache.test', tls: { key: cert.key, cert: cert.cert } }],
    zone: (port) => {
      qname = `_${port}._tcp.mx.cache.test`;
      return {
        'cache.test': { MX: [[10, 'mx.cache.test']], ad: true },
        'mx.cache.test': { A: ['127.0.0.2'], ad: true },
        // TTL 0 is read as 1 s: the answer is used for 2 s.
        [qname]: { TLSA: [tlsaFor(cert.cert, 3, 1, 1)], ad: true, ttl: 0 },
      };
    },
    mainCf: ['smtp_tls_security_level = dane'],
  });
  const tlsaQuestions = (): number => s.lab.dns.queries.filter((q) => q.type === 'TLSA' && q.name.toLowerCase() === qname.toLowerCase()).length;
  try {
    const first = await s.send('a@cache.test');
    const second = await s.send('b@cache.test');
    for (const { line } of [first, second]) assert.match(line, /tls=dane, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(tlsaQuestions(), 1, 'two deliveries within the TTL: one TLSA question');
    await new Promise((r) => setTimeout(r, 2_100));
    const third = await s.send('c@cache.test');
    assert.match(third.line, /tls=dane, dsn=2\.0\.0, status=sent/, s.lab.log());
    assert.equal(tlsaQuestions(), 2, 'after 1 s + TTL the question is asked again');
    assert.equal(s.lab.lines(/Verified TLS connection established to mx\.cache\.test/).length >= 1, true, s.lab.log());
  } finally {
    await s.close();
    pki.cleanup();
  }
});
