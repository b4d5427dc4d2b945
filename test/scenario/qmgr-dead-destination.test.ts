/**
 * qmgr-dead-destination — a destination whose only MX refuses connections
 * becomes dead after its first failed cohort: the rest of its mail is
 * deferred at once with `delivery temporarily suspended: connect to ...:
 * Connection refused` (logged as sealpost/error, no connection attempted),
 * while mail for a healthy destination queued behind it is delivered at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'live.test': { MX: [[10, 'mx.live.test']] as Array<[number, string]> },
  'mx.live.test': { A: ['127.0.0.2'] },
  // Nothing listens on 127.0.0.9 at the lab port: Connection refused.
  'dead.test': { MX: [[10, 'mx.dead.test']] as Array<[number, string]> },
  'mx.dead.test': { A: ['127.0.0.9'] },
};

test('a dead destination with many messages never slows delivery to another', async () => {
  const [live] = await startReceivers([{ name: 'mx.live.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: live!.port, mainCf: ['minimal_backoff_time = 60s', 'maximal_backoff_time = 120s', 'queue_run_delay = 60s'] });
  const DEAD = 40;
  const LIVE = 10;
  try {
    await lab.start();
    for (let i = 0; i < DEAD; i++) await lab.submit('alice@sender.test', [`u${i}@dead.test`]);
    for (let i = 0; i < LIVE; i++) await lab.submit('alice@sender.test', [`v${i}@live.test`]);
    await live!.waitForMessages(LIVE, 10_000);
    await lab.waitLog(/status=deferred/, DEAD, 10_000);
    // The live mail went out at its first attempt, never waiting in deferred/ behind the dead mail ...
    assert.equal((await lab.waitLog(/to=<v\d+@live\.test>, .*status=sent/, LIVE)).length, LIVE);
    assert.deepEqual(lab.lines(/to=<v\d+@live\.test>, .*status=deferred/), []);
    assert.equal(live!.messages.length, LIVE);
    const attempts = lab.lines(/^sealpost\/smtp: [0-9A-F]+: to=<u\d+@dead\.test>, .*status=deferred \(connect to mx\.dead\.test\[127\.0\.0\.9\]:\d+: Connection refused\)$/);
    const suspended = lab.lines(
      /^sealpost\/error: [0-9A-F]+: to=<u\d+@dead\.test>, relay=none, delay=[\d.]+, delays=[\d./]+, dsn=4\.4\.1, status=deferred \(delivery temporarily suspended: connect to mx\.dead\.test\[127\.0\.0\.9\]:\d+: Connection refused\)$/,
    );
    // ... because the dead destination cost only its first cohort's connection attempts; the rest of
    // its mail was deferred without a delivery agent (no agent time taken from other destinations).
    assert.ok(attempts.length >= 1 && attempts.length < 10, `connection attempts: ${attempts.length}\n${lab.log()}`);
    assert.equal(attempts.length + suspended.length, DEAD, lab.log());
    const q = await lab.cli(['mailq']);
    assert.match(q.stdout, /\(delivery temporarily suspended: connect to mx\.dead\.test\[127\.0\.0\.9\]:\d+: Connection refused\)/);
    assert.match(q.stdout, new RegExp(`-- \\d+ Kbytes in ${DEAD} Requests\\.`));
  } finally {
    await lab.cleanup();
    await live!.close();
  }
});
