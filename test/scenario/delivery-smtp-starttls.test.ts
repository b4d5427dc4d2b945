import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import type { TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';

const ZONE = {
  'single.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
  'mx.single.example': { A: ['127.0.0.2'] },
};

let pki: TestPki;
let cleanup: () => void;
before(() => {
  const t = tempDir('sealpost-pki-');
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['mx.single.example']);
});
after(() => cleanup());

test('may: STARTTLS offered → used; the receiver saw TLS; summary line at smtp_tls_loglevel 1; tls=may', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert } }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may', smtp_tls_loglevel: '1' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.tls, 'may');
    assert.equal(rx!.messages[0]!.tls, true);
    assert.match(rx!.messages[0]!.tlsProtocol ?? '', /^TLSv1\.[23]$/);
    const summary = lab.log.lines.find((l) => l.includes('TLS connection established to'));
    assert.match(summary ?? '', new RegExp(`^sealpost/smtp: Untrusted TLS connection established to mx\\.single\\.example\\[127\\.0\\.0\\.2\\]:${rx!.port}: TLSv1\\.[23] with cipher `));
    // EHLO twice: before and after the handshake (RFC 3207 §4.2).
    assert.equal(rx!.transcript.filter((l) => l.startsWith('C: EHLO')).length, 2);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('may: STARTTLS not offered → plaintext, tls=may:none', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.tls, 'may:none');
    assert.equal(rx!.messages[0]!.tls, false);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('may: STARTTLS refused with 454 → plaintext on the same connection', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert }, starttls: 'refuse-454' }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(rx!.messages[0]!.tls, false);
    assert.equal(rx!.connections, 1);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('none: STARTTLS offered but not used; smtp_tls_note_starttls_offer logs the offer', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert } }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'none', smtp_tls_note_starttls_offer: 'yes' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.tls, 'none');
    assert.equal(rx!.messages[0]!.tls, false);
    assert.ok(!rx!.transcript.includes('C: STARTTLS'));
    assert.ok(lab.log.lines.includes('sealpost/smtp: Host offered STARTTLS: [mx.single.example]'), lab.log.lines.join('\n'));
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('RFC 3207 §6: replies injected before the handshake are discarded, not read as answers after it', async () => {
  const inject = '250-mx.evil\r\n250 AUTH PLAIN\r\n250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n';
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert }, injectBeforeTls: inject }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.reason, '250 2.0.0 Ok: queued as M1');
    assert.equal(rx!.messages.length, 1);
    assert.equal(rx!.messages[0]!.tls, true);
    assert.equal(rx!.messages[0]!.helo, 'client.test');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('encrypt: server without STARTTLS → deferred 4.7.4 "TLS is required, but was not offered", no mail in the clear', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'encrypt' });
  try {
    const r = await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.7.4']);
    assert.equal(o.reason, 'TLS is required, but was not offered by host mx.single.example[127.0.0.2]');
    assert.ok(r.siteDeferral);
    assert.ok(!rx!.transcript.some((l) => l.startsWith('C: MAIL')));
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('TLS connections are cached by default (sealpost) and not with smtp_tls_connection_reuse = no (Postfix\'s default)', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert } }]);
  const noReuse = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may', smtp_tls_connection_reuse: 'no' });
  try {
    await noReuse.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] });
    await noReuse.deliver({ recipients: ['b@single.example'], nexthops: ['single.example'] });
    assert.equal(rx!.connections, 2);
  } finally {
    await noReuse.close();
  }
  const reuse = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may' });
  try {
    const first = await reuse.deliver({ recipients: ['c@single.example'], nexthops: ['single.example'] });
    const second = await reuse.deliver({ recipients: ['d@single.example'], nexthops: ['single.example'] });
    const o = outcomeOf(second);
    assert.equal(o.connUse, 2);
    assert.equal(rx!.connections, 3);
    assert.ok(rx!.messages.every((m) => m.tls));
    // The reused connection keeps its certificate evaluation: the record says reused, same trust and cipher.
    assert.equal(first.sessions![0]!.tls!.reused, false);
    assert.equal(second.sessions![0]!.tls!.reused, true);
    assert.equal(second.sessions![0]!.tls!.trust, first.sessions![0]!.tls!.trust);
    assert.equal(second.sessions![0]!.tls!.cipher, first.sessions![0]!.tls!.cipher);
  } finally {
    await reuse.close();
    await rx!.close();
  }
});
