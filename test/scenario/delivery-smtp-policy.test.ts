import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import type { TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';

const ZONE = {
  'single.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
  'mx.single.example': { A: ['127.0.0.2'] },
  'three.example': { MX: [[10, 'a.three.example'], [20, 'b.three.example'], [30, 'c.three.example']] as Array<[number, string]> },
  'a.three.example': { A: ['127.0.0.2'] },
  'b.three.example': { A: ['127.0.0.3'] },
  'c.three.example': { A: ['127.0.0.4'] },
  'two.example': { MX: [[10, 'a.two.example'], [20, 'b.two.example']] as Array<[number, string]> },
  'a.two.example': { A: ['127.0.0.5'] },
  'b.two.example': { A: ['127.0.0.6'] },
  'fallback.example': { A: ['127.0.0.7', '127.0.0.8', '127.0.0.9'] },
};

let pki: TestPki;
let dir: string;
let cleanup: () => void;
before(() => {
  const t = tempDir('sealpost-policy-');
  dir = t.dir;
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['mx.single.example']);
});
after(() => cleanup());

test('smtp_mx_session_limit = 2: two sessions that got past EHLO, then no third MX; handshake errors do not count', async () => {
  const busy = { replies: { mail: () => '451 4.3.0 try later' } };
  const rxs = await startReceivers([{ host: '127.0.0.2', ...busy }, { host: '127.0.0.3', ...busy }, { host: '127.0.0.4' }]);
  const lab = await deliveryLab(ZONE, rxs[0]!.port);
  try {
    const r = await lab.deliver({ recipients: ['a@three.example'], nexthops: ['three.example'] });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.3.0']);
    assert.equal(o.reason, 'host b.three.example[127.0.0.3] said: 451 4.3.0 try later (in reply to MAIL FROM command)');
    assert.equal(r.siteDeferral, undefined); // smtp_mesg_fail does not throttle
    assert.deepEqual(rxs.map((x) => x.connections), [1, 1, 0]);
    assert.ok(lab.log.lines.some((l) => /^sealpost\/smtp: 4A\d+: host a\.three\.example\[127\.0\.0\.2\] said: 451 4\.3\.0 try later \(in reply to MAIL FROM command\)$/.test(l)), lab.log.lines.join('\n'));
  } finally {
    await lab.close();
    await Promise.all(rxs.map((x) => x.close()));
  }
  const greet = { greeting: '421 4.7.0 too busy' };
  const rys = await startReceivers([{ host: '127.0.0.2', ...greet }, { host: '127.0.0.3', ...greet }, { host: '127.0.0.4' }]);
  const lab2 = await deliveryLab(ZONE, rys[0]!.port);
  try {
    const o = outcomeOf(await lab2.deliver({ recipients: ['a@three.example'], nexthops: ['three.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.relay, `c.three.example[127.0.0.4]:${rys[0]!.port}`);
  } finally {
    await lab2.close();
    await Promise.all(rys.map((x) => x.close()));
  }
});

test('smtp_mx_session_limit counts per next hop: a second next hop and a fallback relay each get their own two sessions', async () => {
  // smtp_connect.c: "Enforce the MX session and MX address counts per next-hop or fall-back destination".
  const busy = { replies: { mail: () => '451 4.3.0 try later' } };
  const rxs = await startReceivers([
    { host: '127.0.0.2', ...busy }, { host: '127.0.0.3', ...busy }, { host: '127.0.0.4' },
    { host: '127.0.0.5', ...busy }, { host: '127.0.0.6' },
  ]);
  const lab = await deliveryLab(ZONE, rxs[0]!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@three.example'], nexthops: ['three.example', 'two.example'] }));
    assert.equal(o.status, 'sent', o.reason);
    assert.equal(o.relay, `b.two.example[127.0.0.6]:${rxs[0]!.port}`);
    // Two sessions for three.example (its third MX not tried), then two for two.example.
    assert.deepEqual(rxs.map((x) => x.connections), [1, 1, 0, 1, 1]);
  } finally {
    await lab.close();
    await Promise.all(rxs.map((x) => x.close()));
  }
  const rys = await startReceivers([{ host: '127.0.0.2', ...busy }, { host: '127.0.0.7', ...busy }, { host: '127.0.0.8', ...busy }, { host: '127.0.0.9' }]);
  const lab2 = await deliveryLab(ZONE, rys[0]!.port, { smtp_mx_session_limit: '2' });
  try {
    const o = outcomeOf(await lab2.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], fallbackRelays: ['[fallback.example]'] }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.3.0']);
    assert.equal(o.reason, 'host fallback.example[127.0.0.8] said: 451 4.3.0 try later (in reply to MAIL FROM command)');
    // The fallback relay's third address is beyond its two sessions.
    assert.deepEqual(rys.map((x) => x.connections), [1, 1, 1, 0]);
  } finally {
    await lab2.close();
    await Promise.all(rys.map((x) => x.close()));
  }
});

test('a relayhost that does not resolve is a configuration problem: 4.3.5, never a bounce', async () => {
  const lab = await deliveryLab(ZONE, 9, { relayhost: '[gone.example]' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@three.example'], nexthops: ['[gone.example]'] }));
    assert.deepEqual([o.status, o.dsn, o.relay], ['deferred', '4.3.5', 'none']);
    assert.equal(o.reason, 'Host or domain name not found. Name service error for name=gone.example type=A: Host not found');
    assert.ok(lab.log.lines.includes('sealpost/smtp: warning: relayhost configuration problem'), lab.log.lines.join('\n'));
  } finally {
    await lab.close();
  }
});

test('an invalid TLS policy entry: no connection, deferred with the policy reason, relay=none', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const file = join(dir, 'tls_policy');
  writeFileSync(file, 'single.example bogus-level\n');
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_policy_maps: `texthash:${file}` });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.deepEqual([o.status, o.dsn, o.relay], ['deferred', '4.7.5', 'none']);
    assert.equal(o.reason, 'client TLS configuration problem');
    assert.equal(o.tls, undefined);
    assert.equal(rx!.connections, 0);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('may + failed handshake: deferred "Cannot start TLS: handshake failure" on a first attempt, plaintext after minimal_backoff_time', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert }, breakTls: true }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'may', minimal_backoff_time: '300s' });
  try {
    const first = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.deepEqual([first.status, first.dsn, first.reason], ['deferred', '4.7.5', 'Cannot start TLS: handshake failure']);
    assert.equal(rx!.messages.length, 0);
    const retry = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], waited: 301_000 }));
    assert.equal(retry.status, 'sent');
    assert.equal(retry.tls, 'may:none');
    assert.equal(rx!.messages[0]!.tls, false);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('encrypt + failed handshake: never plaintext, deferred and throttled', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', tls: { key: pki.server.key, cert: pki.server.cert }, breakTls: true }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_tls_security_level: 'encrypt' });
  try {
    const r = await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], waited: 10_000_000 });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn, o.reason], ['deferred', '4.7.5', 'Cannot start TLS: handshake failure']);
    assert.ok(r.siteDeferral);
    assert.equal(rx!.connections, 1);
    assert.equal(rx!.messages.length, 0);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('smtp_log_tls_feature_status = no: outcomes carry no tls field', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_log_tls_feature_status: 'no' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.tls, undefined);
    assert.ok(o.timing.started <= o.timing.connected && o.timing.connected <= o.timing.finished);
  } finally {
    await lab.close();
    await rx!.close();
  }
});
