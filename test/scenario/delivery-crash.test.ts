/**
 * delivery-crash — issue 4's crash check: the daemon is SIGKILLed in the
 * middle of a relay run (SMTP in, SMTP out to Debian's smtp-sink, which dumps
 * every message it receives to a file), then started again and left to drain
 * the queue. Every message that got `250 ... queued as ID` must reach the
 * receiver at least once; duplicates are counted and must stay within the
 * deliveries that can be in flight at the kill (the destination concurrency
 * limit × one message per session, plus messages whose 250 from the receiver
 * was on the wire).
 *
 * The run is brief by default (SEALPOST_CRASH_N messages, default 1500) so the
 * suite stays fast; the bench-sized run (10k) is the same test with
 * SEALPOST_CRASH_N=10000.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { MESSAGE_QUEUES, openSpool } from '../../src/queue/spool.ts';
import { freePort, makeInstance, SmtpClient, type Daemon, type Instance } from '../unit/daemon/fixtures/instance.ts';

const N = Number(process.env.SEALPOST_CRASH_N ?? 1500);
const SESSIONS = 10;
const CONCURRENCY = 20; // default_destination_concurrency_limit

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function startSink(dumpDir: string, port: number): Promise<ChildProcess> {
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, '-d', `${dumpDir}/m.`, `127.0.0.2:${port}`, '256'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.2');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return sink;
    await sleep(50);
  }
  throw new Error('smtp-sink did not start');
}

/** Queue IDs sealpost stamped into the Received: headers of what the sink got. */
function receivedIds(dumpDir: string): string[] {
  const ids: string[] = [];
  for (const f of readdirSync(dumpDir)) {
    let text: string;
    try {
      text = readFileSync(join(dumpDir, f), 'latin1');
    } catch (err) {
      // smtp-sink removes the dump of a transaction that did not complete (the connection died
      // in DATA when the daemon was killed): listed a moment ago, gone now, never received.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    // One file per transaction: find sealpost's own Received: header.
    const m = /\(sealpost\) with E?SMTPS?A? id ([0-9A-Za-z]+)/.exec(text);
    if (m) ids.push(m[1]!);
  }
  return ids;
}

async function sender(port: number, count: number, accepted: string[], stop: () => boolean): Promise<void> {
  let c: SmtpClient | undefined;
  try {
    const conn = await SmtpClient.connect(port);
    c = conn.client;
    if (!conn.greeting.startsWith('220')) return;
    await c.cmd('EHLO client.example');
    for (let i = 0; i < count && !stop(); i++) {
      if (!(await c.cmd('MAIL FROM:<alice@example.org>')).startsWith('250')) return;
      if (!(await c.cmd('RCPT TO:<bob@sink.test>')).startsWith('250')) return;
      if (!(await c.cmd('DATA')).startsWith('354')) return;
      const reply = await c.cmd(`Subject: crash ${i}\r\n\r\n${'x'.repeat(1000)}\r\n.`);
      const m = /queued as ([0-9A-Za-z]+)/.exec(reply);
      if (!m) return;
      accepted.push(m[1]!);
    }
  } catch {
    /* the daemon died under us: what was accepted is recorded */
  } finally {
    c?.close();
  }
}

async function drained(inst: Instance, d: Daemon, timeoutMs: number): Promise<void> {
  const spool = openSpool(inst.queueDir);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = MESSAGE_QUEUES.reduce((n, q) => n + spool.list(q).length, 0);
    if (left === 0) return;
    if (Date.now() > deadline) throw new Error(`${left} messages still queued after ${timeoutMs} ms:\n${d.log.slice(-3000)}`);
    await sleep(200);
  }
}

test('SIGKILL during a relay run: every accepted message is delivered, duplicates bounded by the in-flight window', { timeout: 240_000 }, async () => {
  const sinkPort = await freePort();
  const inst = await makeInstance(
    [`relayhost = [127.0.0.2]:${sinkPort}`, 'smtp_tls_security_level = none', 'minimal_backoff_time = 1s', 'maximal_backoff_time = 2s', 'queue_run_delay = 1s'].join('\n'),
  );
  inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
  const dumpDir = join(inst.dir, 'sink');
  mkdirSync(dumpDir);
  const sink = await startSink(dumpDir, sinkPort);
  try {
    const accepted: string[] = [];
    let d = await inst.startFg();
    let killed = false;
    const per = Math.ceil(N / SESSIONS);
    const senders = Promise.all(Array.from({ length: SESSIONS }, () => sender(inst.port, per, accepted, () => killed)));
    // Kill once delivery is well under way: half the messages accepted and some delivered.
    while (accepted.length < N / 2) await sleep(20);
    d.kill('SIGKILL');
    killed = true;
    await d.exited;
    await senders;
    const beforeRestart = receivedIds(dumpDir).length;

    d = await inst.startFg();
    await drained(inst, d, 120_000);
    d.kill('SIGTERM');
    await d.exited;

    const got = receivedIds(dumpDir);
    const counts = new Map<string, number>();
    for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
    const missing = accepted.filter((id) => !counts.has(id));
    const duplicates = [...counts.values()].reduce((n, c) => n + (c - 1), 0);
    assert.ok(accepted.length >= N / 2, `accepted ${accepted.length}`);
    assert.ok(beforeRestart > 0, 'some mail was delivered before the kill');
    assert.deepEqual(missing, [], `accepted but never delivered (of ${accepted.length})`);
    assert.ok(duplicates <= CONCURRENCY * 2, `duplicates ${duplicates} exceed the in-flight bound ${CONCURRENCY * 2}`);
    process.stdout.write(`# crash: ${accepted.length} accepted, ${got.length} received, ${duplicates} duplicates\n`);
  } finally {
    sink.kill('SIGKILL');
    inst.cleanup();
  }
});
