/**
 * dane-tlsa-servfail — the validating resolver answers SERVFAIL for the TLSA
 * query (what it says for bogus data), through the real daemon: the server
 * is not tried and the mail is deferred with Postfix's reason `TLSA lookup
 * error for HOST:PORT` (4.7.5, smtp_tls_policy.c dane_init()), after the
 * per-server warning `TLS policy lookup for DEST/HOST: ...`. No connection is
 * made — a lookup failure never downgrades (RFC 7672 §2.2).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { labPki, stsDaneLab } from './stsdane-lab.ts';

test('TLSA SERVFAIL: deferred with TLSA lookup error, no connection', async () => {
  const pki = labPki();
  const s = await stsDaneLab({
    receivers: [{ name: 'mx.bogus.test' }],
    zone: (port) => ({
      'bogus.test': { MX: [[10, 'mx.bogus.test']], ad: true },
      'mx.bogus.test': { A: ['127.0.0.2'], ad: true },
      [`_${port}._tcp.mx.bogus.test`]: { servfail: true },
    }),
    mainCf: ['smtp_tls_security_level = dane'],
  });
  try {
    const { id, line } = await s.send('bob@bogus.test');
    const reason = `TLSA lookup error for mx.bogus.test:${s.port}`;
    assert.match(line, new RegExp(`relay=none, .*dsn=4\\.7\\.5, status=deferred \\(${reason.replace(/\./g, '\\.')}\\)$`), s.lab.log());
    assert.equal(s.lab.lines(new RegExp(`^sealpost/smtp: warning: TLS policy lookup for bogus\\.test/mx\\.bogus\\.test: ${reason.replace(/\./g, '\\.')}$`)).length, 1, s.lab.log());
    assert.equal(s.lab.lines(/^sealpost\/smtp: warning: DANE TLSA lookup problem: /).length, 1, s.lab.log());
    assert.equal(await s.reasonInMailq(id), reason);
    assert.equal(s.rx[0]!.connections, 0, 'no connection to the server');
  } finally {
    await s.close();
    pki.cleanup();
  }
});
