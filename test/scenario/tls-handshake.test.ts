/**
 * tls-handshake.test.ts — protocol bounds and failed handshakes end to end:
 * `protocols=` that the server cannot meet, a server that resets during the
 * handshake, and `may`'s plaintext fallback (only after the message waited
 * minimal_backoff_time, as Postfix's PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE).
 * A handshake failure never lets DATA through in the clear at `encrypt`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { makePki, type TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers, type Receiver } from '../harness/smtp-receiver.ts';

const ZONE = {
  'tls12.example': { MX: [[10, 'mx.tls12.example']] as Array<[number, string]> },
  'mx.tls12.example': { A: ['127.0.0.2'] },
  'broken.example': { MX: [[10, 'mx.broken.example']] as Array<[number, string]> },
  'mx.broken.example': { A: ['127.0.0.3'] },
  'inject.example': { MX: [[10, 'mx.inject.example']] as Array<[number, string]> },
  'mx.inject.example': { A: ['127.0.0.4'] },
};

let pki: TestPki;
let cleanup: () => void;
let tls12: Receiver;
let broken: Receiver;
let inject: Receiver;

before(async () => {
  const t = tempDir('sealpost-tls-hs-');
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['mx.tls12.example', 'mx.broken.example']);
  const tls = { key: pki.server.key, cert: pki.server.cert };
  [tls12, broken, inject] = (await startReceivers([
    { name: 'mx.tls12.example', tls, maxTlsVersion: 'TLSv1.2' },
    { name: 'mx.broken.example', tls, breakTls: true },
    // RFC 3207 §6 attack: plaintext replies injected before the handshake.
    { name: 'mx.inject.example', tls, injectBeforeTls: '250-mx.inject.example\r\n250 AUTH PLAIN\r\n' },
  ])) as [Receiver, Receiver, Receiver];
});
after(async () => {
  await tls12.close();
  await broken.close();
  await inject.close();
  cleanup();
});

async function lab(policy: string, extra: Record<string, string> = {}) {
  const l = await deliveryLab(ZONE, tls12.port, {
    smtp_tls_security_level: 'may',
    smtp_tls_loglevel: '1',
    smtp_tls_policy_maps: 'texthash:$config_directory/tls_policy',
    minimal_backoff_time: '300s',
    ...extra,
  });
  writeFileSync(join(l.dir, 'tls_policy'), policy);
  return l;
}

test('protocols= the server cannot meet: encrypt defers with Cannot start TLS: handshake failure', async () => {
  const l = await lab('tls12.example encrypt protocols=>=TLSv1.3\n');
  try {
    const before = tls12.messages.length;
    const o = outcomeOf(await l.deliver({ recipients: ['a@tls12.example'], nexthops: ['tls12.example'], waited: 3_600_000 }));
    assert.equal(o.status, 'deferred');
    assert.equal(o.reason, 'Cannot start TLS: handshake failure');
    assert.equal(o.dsn, '4.7.5');
    assert.equal(tls12.messages.length, before);
  } finally {
    await l.close();
  }
});

test('protocols=<=TLSv1.2 is honoured and logged (no key-exchange/signature details below TLS 1.3, as tls_misc.c)', async () => {
  const l = await lab('tls12.example encrypt protocols=<=TLSv1.2:>=TLSv1.2\n');
  try {
    const o = outcomeOf(await l.deliver({ recipients: ['a@tls12.example'], nexthops: ['tls12.example'] }));
    assert.equal(o.status, 'sent', JSON.stringify(o));
    assert.equal(tls12.messages.at(-1)!.tlsProtocol, 'TLSv1.2');
    assert.ok(l.log.lines.some((x) => /^sealpost\/smtp: Untrusted TLS connection established to mx\.tls12\.example\[127\.0\.0\.2\]:\d+: TLSv1\.2 with cipher ECDHE-ECDSA-\S+ \(\d+\/\d+ bits\)$/.test(x)), l.log.lines.join('\n'));
  } finally {
    await l.close();
  }
});

test('may: a failed handshake defers a fresh message (no throttle) and falls back to plaintext only after minimal_backoff_time', async () => {
  const l = await lab('', { smtp_tls_protocols: '>=TLSv1.3' });
  try {
    const before = tls12.messages.length;
    const fresh = await l.deliver({ recipients: ['a@tls12.example'], nexthops: ['tls12.example'] });
    const o = outcomeOf(fresh);
    assert.equal(o.status, 'deferred');
    assert.equal(o.reason, 'Cannot start TLS: handshake failure');
    assert.equal(fresh.siteDeferral, undefined, 'may does not throttle the destination');
    assert.equal(tls12.messages.length, before);
    const retried = await l.deliver({ recipients: ['a@tls12.example'], nexthops: ['tls12.example'], waited: 3_600_000, queueId: '4RETRY00001' });
    const old = outcomeOf(retried);
    assert.equal(old.status, 'sent', JSON.stringify(old));
    assert.equal(old.tls, 'may:none');
    assert.equal(tls12.messages.at(-1)!.tls, false);
    // tls_client.c's SSL_connect line (OpenSSL's reason: no shared protocol), then smtp(8)'s note
    // that announces the plaintext retry, both logged with the failed session's record.
    const [failed, plain] = retried.sessions ?? [];
    assert.equal(failed?.logLines[0], `SSL_connect error to mx.tls12.example[127.0.0.2]:${tls12.port}: -1`);
    assert.match(failed?.logLines[1] ?? '', /^warning: TLS library problem: error:[0-9A-F]{8}:SSL routines::.*protocol version.*:$/);
    assert.equal(failed?.logLines.at(-1), '4RETRY00001: Cannot start TLS: handshake failure');
    assert.deepEqual(plain?.result, { kind: 'plaintext', type: 'validation-failure' });
  } finally {
    await l.close();
  }
});

test('a reset during the handshake: encrypt defers and throttles, no plaintext ever reaches the server', async () => {
  const l = await lab('broken.example encrypt\n');
  try {
    const r = await l.deliver({ recipients: ['a@broken.example'], nexthops: ['broken.example'], waited: 3_600_000 });
    const o = outcomeOf(r);
    assert.equal(o.status, 'deferred');
    assert.equal(o.reason, 'Cannot start TLS: handshake failure');
    assert.deepEqual(r.siteDeferral, { reason: 'Cannot start TLS: handshake failure', dsn: '4.7.5' });
    // tls_client.c: the errno text (the server reset the connection when the ClientHello arrived).
    assert.deepEqual(r.sessions?.[0]?.logLines, [`SSL_connect error to mx.broken.example[127.0.0.3]:${tls12.port}: Connection reset by peer`]);
    assert.equal(broken.messages.length, 0);
    assert.ok(!broken.transcript.some((x) => x.startsWith('C: MAIL')), broken.transcript.join('\n'));
  } finally {
    await l.close();
  }
});

test('plaintext injected before the handshake is discarded: encrypt delivers over TLS, in step', async () => {
  const l = await lab('inject.example encrypt\n');
  try {
    const o = outcomeOf(await l.deliver({ recipients: ['a@inject.example'], nexthops: ['inject.example'] }));
    assert.equal(o.status, 'sent', JSON.stringify(o));
    assert.equal(o.tls, 'encrypt');
    assert.equal(inject.messages.length, 1);
    assert.equal(inject.messages[0]!.tls, true);
  } finally {
    await l.close();
  }
});
