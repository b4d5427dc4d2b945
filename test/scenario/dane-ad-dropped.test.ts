/**
 * dane-ad-dropped — a resolver that stops setting the AD bit halfway,
 * through the real daemon: the first message to a `dane-only` destination
 * is authenticated with its TLSA record; then the TLSA answer arrives
 * without the AD bit (the MX and address answers still have it). That
 * answer is not trusted (RFC 7672 §2.2: insecure TLSA records are as none),
 * and `dane-only` defers with Postfix's `no TLSA records found` — never a
 * plaintext or unauthenticated delivery, never a crash. When the whole
 * resolver stops validating, the MX RRset is insecure: `non DNSSEC
 * destination`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('the AD bit dropped halfway: dane-only defers, never downgrades', async () => {
  const pki = labPki();
  const cert = mintCert(pki.dir, 'mx', { names: ['mx.ad.test'] });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.ad.test', tls: { key: cert.key, cert: cert.cert } }],
    zone: (port) => ({
      'ad.test': { MX: [[10, 'mx.ad.test']], ad: true },
      // Another destination on the same server (the first may be throttled by then).
      'ad2.test': { MX: [[10, 'mx.ad.test']], ad: true },
      'mx.ad.test': { A: ['127.0.0.2'], ad: true },
      // TTL 0: the agent keeps a TLSA answer 1 s + max(TTL, 1 s), as Postfix's smtp(8) does (dns/answer-cache.ts).
      [`_${port}._tcp.mx.ad.test`]: { TLSA: [tlsaFor(cert.cert, 3, 1, 1)], ad: true, adLimit: 1, ttl: 0 },
    }),
    mainCf: ['smtp_tls_security_level = dane-only'],
  });
  try {
    const first = await s.send('one@ad.test');
    assert.match(first.line, /tls=dane-only, dsn=2\.0\.0, status=sent/, s.lab.log());
    // Past the cached answer's 2 s, the TLSA question is asked again, and now comes back without AD.
    await new Promise((r) => setTimeout(r, 2_100));
    const second = await s.send('two@ad.test');
    assert.match(second.line, /relay=none, .*dsn=4\.7\.5, status=deferred \(no TLSA records found\)$/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: warning: TLS policy lookup for ad\.test\/mx\.ad\.test: no TLSA records found$/).length, 1, s.lab.log());
    assert.equal(await s.reasonInMailq(second.id), 'no TLSA records found');
    s.lab.dns.stripAd = true;
    const third = await s.send('three@ad2.test');
    assert.match(third.line, /relay=none, .*dsn=4\.7\.5, status=deferred \(non DNSSEC destination\)$/, s.lab.log());
    assert.deepEqual(s.rx[0]!.messages.map((m) => m.rcptTo[0]), ['one@ad.test']);
  } finally {
    await s.close();
    pki.cleanup();
  }
});
