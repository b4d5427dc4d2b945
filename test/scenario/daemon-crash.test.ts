/**
 * daemon-crash — the master is SIGKILLed at random moments while mail
 * arrives by SMTP and by sendmail (and while pickup works). After a final
 * start: every message that got 250 or exit 0 is queued exactly once, no file
 * is corrupt, nothing is left in maildrop/.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MESSAGE_QUEUES, openSpool } from '../../src/queue/spool.ts';
import { makeInstance, SmtpClient, type Instance } from '../unit/daemon/fixtures/instance.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function smtpLoop(inst: Instance, tokens: string[], accepted: Set<string>, stop: () => boolean): Promise<void> {
  while (!stop()) {
    let c: SmtpClient | undefined;
    try {
      const conn = await SmtpClient.connect(inst.port);
      c = conn.client;
      if (!conn.greeting.startsWith('220')) return;
      const token = `smtp-${tokens.length}`;
      tokens.push(token);
      const reply = await c.send('a@example.org', ['b@example.org'], `Subject: ${token}\n\nbody of ${token}`);
      if (reply.startsWith('250')) accepted.add(token);
    } catch {
      return;
    } finally {
      c?.close();
    }
  }
}

async function sendmailLoop(inst: Instance, tokens: string[], accepted: Set<string>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const token = `sm-${tokens.length}`;
    tokens.push(token);
    const r = await inst.cli(['sendmail', '-i', 'c@example.org'], { stdin: `Subject: ${token}\n\nbody of ${token}\n` });
    if (r.code === 0) accepted.add(token);
    await sleep(Math.random() * 20);
  }
}

test('SIGKILL crash loop: accepted mail is queued once, never corrupt', async () => {
  const inst = await makeInstance();
  const tokens: string[] = [];
  const accepted = new Set<string>();
  try {
    for (let round = 0; round < 10; round++) {
      // Mail waiting in maildrop when the daemon starts, so pickup is busy when it dies.
      await sendmailLoop(inst, tokens, accepted, 4);
      const d = await inst.startFg();
      let killed = false;
      const loops = Promise.all([smtpLoop(inst, tokens, accepted, () => killed), sendmailLoop(inst, tokens, accepted, 3)]);
      await sleep(20 + Math.random() * 150);
      d.kill('SIGKILL');
      killed = true;
      await d.exited;
      await loops;
    }
    const d = await inst.startFg();
    const spool = openSpool(inst.queueDir);
    for (let i = 0; i < 100 && spool.list('maildrop').length > 0; i++) await sleep(50);
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);

    assert.deepEqual(spool.list('maildrop'), []);
    assert.deepEqual(readdirSync(join(inst.queueDir, 'corrupt')), []);
    const seen = new Map<string, number>();
    for (const q of MESSAGE_QUEUES) {
      for (const id of spool.list(q)) {
        const { content } = await spool.readMessage(q, id); // verifies both checksums
        const token = /Subject: (\S+)/.exec(content.toString('utf8'))?.[1] ?? '?';
        seen.set(token, (seen.get(token) ?? 0) + 1);
      }
    }
    for (const t of accepted) assert.equal(seen.get(t), 1, `${t} accepted, queued ${seen.get(t) ?? 0} times`);
    for (const [t, n] of seen) assert.equal(n, 1, `${t} queued ${n} times`);
    assert.ok(accepted.size >= 20, `only ${accepted.size} messages accepted`);
  } finally {
    inst.cleanup();
  }
});
