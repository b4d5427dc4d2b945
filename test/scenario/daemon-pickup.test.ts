/**
 * daemon-pickup — sendmail while the daemon is down; start → pickup moves
 * the message to incoming/ with its envelope (DSN options) and pickup's
 * headers, and logs `QUEUEID: uid=N from=<sender>`. (The queue manager then
 * takes it on: this master.cf has no delivery service, so it waits in
 * deferred/ — wherever it is, it is in the queue.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSpool, type Spool } from '../../src/queue/spool.ts';
import { makeInstance } from '../unit/daemon/fixtures/instance.ts';

/** Queued IDs, wherever the queue manager has put them. */
function queued(spool: Spool): string[] {
  // Listed in the direction mail moves (incoming → active → deferred), so a moving file is seen at least once.
  return [...new Set([...spool.list('incoming'), ...spool.list('active'), ...spool.list('deferred')])].sort();
}

/** Read a message that the queue manager may be moving (incoming → active → deferred). */
async function readQueued(spool: Spool, id: string): ReturnType<Spool['readMessage']> {
  for (let i = 0; ; i++) {
    try {
      return await spool.readMessage(spool.locate(id)!, id);
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

test('sendmail while the daemon is down, then start: the message moves to incoming', async () => {
  const inst = await makeInstance();
  try {
    const sm = await inst.cli(['sendmail', '-t', '-f', 'alice@example.org', '-N', 'failure,delay', '-R', 'hdrs', '-V', 'ENV-42'], {
      stdin: 'To: bob@example.com\nBcc: carol@example.net\nSubject: picked up\n\nhello\n',
    });
    assert.equal(sm.code, 0, sm.stderr);
    const spool = openSpool(inst.queueDir);
    const dropped = spool.list('maildrop');
    assert.equal(dropped.length, 1);
    const d = await inst.startFg();
    const line = await d.waitFor(/sealpost\/pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=<alice@example\.org>/);
    const id = /: ([0-9A-F]+): uid=/.exec(line)![1]!;
    await d.waitFor(new RegExp(`sealpost/cleanup\\[\\d+\\]: ${id}: message-id=<\\d{14}\\.${id}@mx\\.example\\.org>`));
    // Pickup removes the maildrop file once the queue file is durable, just after cleanup's line.
    for (let i = 0; i < 100 && spool.list('maildrop').length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(spool.list('maildrop'), []);
    assert.deepEqual(queued(spool), [id]);
    const { envelope, content } = await readQueued(spool, id);
    assert.equal(envelope.sender, 'alice@example.org');
    assert.deepEqual(envelope.recipients.map((r) => r.address), ['bob@example.com', 'carol@example.net']);
    assert.deepEqual(envelope.recipients[0]!.notify, ['FAILURE', 'DELAY']);
    assert.equal(envelope.ret, 'HDRS');
    assert.equal(envelope.envid, 'ENV-42');
    const text = content.toString('utf8');
    assert.match(text, new RegExp(`^Received: by mx\\.example\\.org \\(sealpost, from userid \\d+\\)\\r\\n\\tid ${id}; `));
    assert.doesNotMatch(text, /Bcc|carol/);
    assert.match(text, /\r\nFrom: alice@example\.org\r\n/);
    assert.match(text, /\r\nDate: /);
    assert.match(text, /\r\n\r\nhello\r\n$/);

    // While running, a new submission is picked up (at once, by the directory watch: unit/daemon/pickup.test.ts).
    const from = d.log.length;
    assert.equal((await inst.cli(['sendmail', 'dave@example.com'], { stdin: 'Subject: two\n\nx\n' })).code, 0);
    await d.waitFor(/pickup\[\d+\]: [0-9A-F]+: uid=\d+ from=</, 10_000, from);
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    assert.equal(queued(spool).length, 2);
  } finally {
    inst.cleanup();
  }
});
