/**
 * dane-mismatch — a TLSA record that matches no certificate of the chain,
 * through the real daemon: the mail is deferred with Postfix's reason
 * (`Server certificate not verified`, 4.7.5), the verification line is
 * logged, `mailq` shows the reason, and the receiver never gets the message
 * — no plaintext retry, no unauthenticated TLS (RFC 7672 §2.2: a DANE
 * authentication failure never falls back), although the level is only
 * opportunistic `dane`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mintCert, tlsaFor } from '../harness/pki.ts';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('TLSA mismatch: deferred, Server certificate not verified, never plaintext', async () => {
  const pki = labPki();
  const presented = mintCert(pki.dir, 'presented', { names: ['mx.bad.test'] });
  const pinned = mintCert(pki.dir, 'pinned', { names: ['mx.bad.test'] });
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.bad.test', tls: { key: presented.key, cert: presented.cert } }],
    zone: (port) => ({
      'bad.test': { MX: [[10, 'mx.bad.test']], ad: true },
      'mx.bad.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.bad.test`]: { TLSA: [tlsaFor(pinned.cert, 3, 1, 1)], ad: true },
    }),
    mainCf: ['smtp_tls_security_level = dane'],
  });
  try {
    const { id, line } = await s.send('bob@bad.test');
    assert.match(line, /relay=mx\.bad\.test\[127\.0\.0\.2\]:\d+, .*dsn=4\.7\.5, status=deferred \(Server certificate not verified\)$/, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: server certificate verification failed for mx\.bad\.test\[127\.0\.0\.2\]:\d+: num=1:unspecified certificate verification error$|^sealpost\/smtp: certificate verification failed for mx\.bad\.test\[127\.0\.0\.2\]:\d+: self-signed certificate$/).length, 1, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: Untrusted TLS connection established to mx\.bad\.test\[127\.0\.0\.2\]:/).length, 1, s.lab.log());
    assert.equal(await s.reasonInMailq(id), 'Server certificate not verified');
    assert.equal(s.rx[0]!.messages.length, 0, 'never sent: no plaintext, no unauthenticated TLS');
    assert.ok(s.rx[0]!.transcript.every((l) => !/^C: MAIL FROM/.test(l)), 'no MAIL FROM on any connection');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
