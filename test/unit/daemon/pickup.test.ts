import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.ts';
import { Pickup } from '../../../src/daemon/pickup.ts';
import { CleanupFilter } from '../../../src/intake/cleanup.ts';
import { pickupReceived } from '../../../src/intake/local-cleanup.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import type { DeliveryEvent } from '../../../src/reports/events.ts';
import { memoryMailLog } from '../../../src/reports/maillog.ts';
import { tempDir } from '../../harness/cli.ts';

const env = { arrivalTime: Date.UTC(2026, 10, 28, 12, 0, 0), sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }] };
const settings = { myorigin: 'example.org', myhostname: 'mx.example.org', mailName: 'sealpost', tlsRequiredEnable: true, addMissingHeaders: true };

function localCleanup(content: Buffer, uid: number, id: string) {
  const f = new CleanupFilter(env, id, [pickupReceived(settings, uid, id, new Date(env.arrivalTime))], settings);
  const out = Buffer.concat([...f.push(content), ...f.end()]);
  return { content: out, messageId: f.facts().messageId };
}

test('local cleanup: pickup Received: first, missing headers at the end of the header', () => {
  const out = localCleanup(Buffer.from('Subject: s\r\n\r\nbody\r\n'), 1000, 'ABC123');
  const text = out.content.toString();
  assert.match(text, /^Received: by mx\.example\.org \(sealpost, from userid 1000\)\r\n\tid ABC123; \w{3}, 28 Nov 2026 \d\d:\d\d:00 [+-]\d{4} \(.+\)\r\nSubject: s\r\n/);
  assert.match(text, /Subject: s\r\nFrom: alice@example\.org\r\nDate: .*\r\nMessage-Id: <\d{14}\.ABC123@mx\.example\.org>\r\n\r\nbody\r\n$/);
  assert.equal(out.messageId, `<${/Message-Id: <(.*)>/.exec(text)![1]}>`);
  const kept = localCleanup(Buffer.from('From: x@y\r\nDate: d\r\nMessage-ID: <m@y>\r\n\r\nb\r\n'), 0, 'ID');
  assert.equal(kept.messageId, '<m@y>');
  assert.doesNotMatch(kept.content.toString(), /Message-Id: </);
});

async function setup() {
  const t = tempDir();
  const spool = await createSpool(join(t.dir, 'q'));
  writeFileSync(join(t.dir, 'main.cf'), 'myhostname = mx.example.org\n');
  const config = loadConfig({ configDir: t.dir });
  const log = memoryMailLog();
  return { t, spool, config, log };
}

test('scanOnce moves maildrop files to incoming and logs pickup and cleanup lines; corrupt files are set aside', async () => {
  const { t, spool, config, log } = await setup();
  try {
    const drop = await spool.writeMessage(env, Buffer.from('Subject: s\r\n\r\nbody\r\n'), 'maildrop');
    writeFileSync(spool.path('maildrop', 'AAAAA1'), 'not a queue file');
    const queued: string[] = [];
    const p = new Pickup({ spool, config, log, onQueued: (id) => queued.push(id) });
    assert.equal(await p.scanOnce(), 1);
    assert.deepEqual(spool.list('maildrop'), []);
    assert.deepEqual(spool.list('incoming'), queued);
    assert.notEqual(queued[0], drop);
    assert.deepEqual(spool.list('corrupt'), ['AAAAA1']);
    const id = queued[0]!;
    assert.deepEqual(log.lines.filter((l) => !l.includes('corrupt')), [
      `sealpost/pickup: ${id}: uid=${process.getuid!()} from=<alice@example.org>`,
      `sealpost/cleanup: ${id}: message-id=<${/Message-Id: <(.*)>/.exec((await spool.readContent('incoming', id)).toString())![1]}>`,
    ]);
    assert.match(log.lines.find((l) => l.includes('corrupt'))!, /^sealpost\/pickup: warning: maildrop\/AAAAA1: .*: moved to corrupt\/$/);
  } finally {
    t.cleanup();
  }
});

test('a pickup interrupted after the incoming write is finished without a duplicate', async () => {
  const { t, spool, config, log } = await setup();
  try {
    const content = Buffer.from('Subject: s\r\n\r\nbody\r\n');
    const drop = await spool.writeMessage(env, content, 'maildrop');
    // The crash: pickup wrote incoming/ID and its state file, but the maildrop file is still there.
    const first = new Pickup({ spool, config, log });
    assert.equal(await first.scanOnce(), 1);
    const [queued] = spool.list('incoming');
    const again = await spool.writeMessage(env, content, 'maildrop');
    mkdirSync(join(spool.dir, 'private'), { recursive: true });
    writeFileSync(join(spool.dir, 'private', 'pickup.state'), `${again}\n`);
    // A second, unrelated message with other content must not be taken for it.
    await spool.writeMessage({ ...env, arrivalTime: env.arrivalTime + 1 }, content, 'maildrop');
    const p = new Pickup({ spool, config, log });
    await p.recoverInterrupted();
    assert.equal(spool.locate(again, ['maildrop']), undefined, 'the already-queued maildrop file is removed');
    assert.ok(log.lines.some((l) => l.includes(`${queued}: maildrop file ${again} was already queued before a restart`)));
    assert.equal(await p.scanOnce(), 1);
    assert.equal(spool.list('incoming').length, 2);
    assert.notEqual(drop, again);
  } finally {
    t.cleanup();
  }
});

test('a running pickup takes a new maildrop file on its directory watch (the poll is an hour away) and publishes received', async () => {
  const { t, spool, config, log } = await setup();
  const events: DeliveryEvent[] = [];
  const waiting: Array<(id: string) => void> = [];
  const next = () => new Promise<string>((r) => waiting.push(r));
  const first = next();
  const second = next();
  const p = new Pickup({ spool, config, log, intervalMs: 3_600_000, onQueued: (id) => waiting.shift()!(id), publish: (e) => events.push(e) });
  try {
    // A file from before the start: the start's own scan takes it.
    await spool.writeMessage(env, Buffer.from('Subject: before\r\n\r\nbody\r\n'), 'maildrop');
    await p.start();
    await first;
    // That scan listed the directory before this file existed: only the watch can bring it in before the hourly poll.
    await spool.writeMessage({ ...env, recipients: [{ address: 'bob@example.com' }, { address: 'carol@example.net' }] }, Buffer.from('Message-ID: <w1@example.org>\r\nSubject: s\r\n\r\nbody\r\n'), 'maildrop');
    const id = await second;
    assert.equal(spool.list('incoming').length, 2);
    assert.equal(events.length, 2);
    const e = events[1]!;
    assert.ok(e.kind === 'received');
    assert.deepEqual([e.queueId, e.origin, e.sender, e.nrcpt, e.messageId], [id, 'pickup', 'alice@example.org', 2, 'w1@example.org']);
    assert.equal(e.size, (await spool.readEnvelopeAsync('incoming', id)).contentLength);
  } finally {
    await p.stop();
    t.cleanup();
  }
});
