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

test('smtp_mx_session_limit = 2: after two sessions that failed softly the third MX is not tried', async () => {
  const busy = { greeting: '421 4.7.0 too busy' };
  const rxs = await startReceivers([{ host: '127.0.0.2', ...busy }, { host: '127.0.0.3', ...busy }, { host: '127.0.0.4' }]);
  const lab = await deliveryLab(ZONE, rxs[0]!.port);
  try {
    const r = await lab.deliver({ recipients: ['a@three.example'], nexthops: ['three.example'] });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.7.0']);
    assert.equal(o.reason, 'host b.three.example[127.0.0.3] refused to talk to me: 421 4.7.0 too busy');
    assert.deepEqual(rxs.map((x) => x.connections), [1, 1, 0]);
    assert.ok(lab.log.lines.some((l) => /^sealpost\/smtp: 4A\d+: host a\.three\.example\[127\.0\.0\.2\] refused to talk to me: 421 4\.7\.0 too busy$/.test(l)), lab.log.lines.join('\n'));
  } finally {
    await lab.close();
    await Promise.all(rxs.map((x) => x.close()));
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
