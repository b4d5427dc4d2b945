/**
 * intake-fsync-before-250.test.ts — the durability contract of intake,
 * through real smtpd sessions on a real socket: no `250 ... queued as ID`
 * reaches a client before the fsync that covers message ID has completed.
 * Both durability paths are checked, with the fsync held back by an injected
 * hook that records when it completed and which messages it covered:
 *   - the group-commit journal (the daemon's default, queue/journal.ts): one
 *     fdatasync covers the messages of several sessions at once;
 *   - the file spool without a journal: the file fsync, then the fsync of
 *     its directory after the rename.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fdatasyncSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';
import { Journal, readJournal } from '../../src/queue/journal.ts';
import { RawSmtp, startTestSmtpd, type TestSmtpd } from '../harness/smtp-client.ts';

/** A gate the hook waits on; `open()` lets every waiting fsync (and later ones) through. */
function gate() {
  let opened = false;
  const waiting: Array<() => void> = [];
  return {
    wait: () => (opened ? Promise.resolve() : new Promise<void>((r) => waiting.push(r))),
    open: () => {
      opened = true;
      for (const f of waiting.splice(0)) f();
    },
    get waiting() {
      return waiting.length;
    },
  };
}

/** One session up to the end of DATA; resolves with the final reply, recording `250 ID` when it arrives. */
async function send(t: TestSmtpd, n: number, events: string[]): Promise<string> {
  const c = await RawSmtp.open(t.port);
  await c.reply();
  await c.cmd('EHLO client.example');
  await c.cmd('MAIL FROM:<a@example.org>');
  await c.cmd(`RCPT TO:<rcpt${n}@localhost>`);
  await c.cmd('DATA');
  const reply = await c.cmd(`Subject: ${n}\r\n\r\nbody ${n}\r\n.`);
  const id = /queued as (\w+)/.exec(reply)?.[1];
  if (id) events.push(`250 ${id}`);
  c.send('QUIT\r\n');
  c.socket.end();
  return reply;
}

/** Every `250 ID` comes after `synced ID`. */
function assertOrder(events: readonly string[], ids: readonly string[]): void {
  for (const id of ids) {
    const synced = events.indexOf(`synced ${id}`);
    const answered = events.indexOf(`250 ${id}`);
    assert.ok(synced >= 0, `the fsync covering ${id} was recorded: ${events.join(', ')}`);
    assert.ok(answered > synced, `250 for ${id} after its fsync: ${events.join(', ')}`);
  }
}

test('journal: no 250 before the fdatasync that covers the message; one fdatasync covers several sessions', async () => {
  const t = await startTestSmtpd();
  const events: string[] = [];
  const g = gate();
  const journalDir = join(t.dir, 'queue', 'journal');
  let syncs = 0;
  const journal = new Journal(journalDir, {
    io: {
      fdatasync: async (fd) => {
        await g.wait();
        fdatasyncSync(fd);
        syncs++;
        // What this fdatasync covered: every message record in the journal at this moment.
        for (const e of readJournal(journalDir).entries) if (!events.includes(`synced ${e.id}`)) events.push(`synced ${e.id}`);
      },
    },
  });
  t.spool.useJournal(journal);
  try {
    const replies = [1, 2, 3].map((n) => send(t, n, events));
    // Hold the fsync while the three sessions finish their DATA: nobody may hear 250.
    for (let i = 0; i < 100 && t.spool.journal!.stats.syncs === 0 && g.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(events.filter((e) => e.startsWith('250')), [], 'no 250 while the fsync is held');
    g.open();
    const got = await Promise.all(replies);
    for (const r of got) assert.match(r, /^250 2\.0\.0 Ok: queued as \w+$/);
    assertOrder(events, t.queued);
    assert.equal(t.queued.length, 3);
    assert.ok(syncs <= 3, `group commit: ${syncs} fdatasyncs for 3 messages`);
  } finally {
    g.open();
    await journal.close();
    await t.stop();
  }
});

test('file spool: no 250 before the directory fsync after the rename of the message', async () => {
  const events: string[] = [];
  const g = gate();
  const renamed = new Set<string>();
  const t = await startTestSmtpd({}, {
    spool: {
      io: {
        sync: async (fd, what, path) => {
          if (what === 'directory') await g.wait();
          fsyncSync(fd);
          // A directory fsync covers the messages renamed into it before it started.
          if (what === 'directory') for (const id of renamed) if (!events.includes(`synced ${id}`)) events.push(`synced ${id}`);
          void path;
        },
      },
    },
  });
  const watch = setInterval(() => {
    for (const id of t.spool.list('incoming')) renamed.add(id);
  }, 5);
  try {
    const replies = [1, 2].map((n) => send(t, n, events));
    for (let i = 0; i < 200 && g.waiting === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(g.waiting > 0, 'a directory fsync is waiting');
    assert.deepEqual(events.filter((e) => e.startsWith('250')), [], 'no 250 while the directory fsync is held');
    g.open();
    for (const r of await Promise.all(replies)) assert.match(r, /^250 2\.0\.0 Ok: queued as \w+$/);
    assertOrder(events, t.queued);
  } finally {
    clearInterval(watch);
    g.open();
    await t.stop();
  }
});
