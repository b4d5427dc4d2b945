/**
 * qmgr-retry — a 4xx, then success: the message waits in deferred/ with the
 * reason (mailq shows it), is retried after the backoff
 * (minimal_backoff_time = 1s here) and delivered; and `postqueue -f` retries
 * deferred mail at once although its retry time is far away.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitDeferred(lab: Awaited<ReturnType<typeof qmgrLab>>, id: string): Promise<void> {
  for (let i = 0; i < 400 && !lab.spool.list('deferred').includes(id); i++) await sleep(25);
  assert.ok(lab.spool.list('deferred').includes(id), `${id} not in deferred/:\n${lab.log()}`);
}

test('4xx then success on retry; mailq shows the delay reason meanwhile', async () => {
  const [mx] = await startReceivers([{ name: 'mx.one.test', replies: { rcpt: (_arg, s) => (s.seen === 1 ? '451 4.3.0 try again later' : undefined) } }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port });
  try {
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@one.test']);
    const [deferred] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<bob@one\\.test>, .*status=deferred`));
    assert.match(
      deferred!,
      new RegExp(`relay=mx\\.one\\.test\\[127\\.0\\.0\\.2\\]:${mx!.port}, delay=[\\d.]+, delays=[\\d./]+, (tls=[^,]+, )?dsn=4\\.3\\.0, status=deferred \\(host mx\\.one\\.test\\[127\\.0\\.0\\.2\\] said: 451 4\\.3\\.0 try again later \\(in reply to RCPT TO command\\)\\)$`),
    );
    await waitDeferred(lab, id);
    const q = await lab.cli(['mailq']);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, new RegExp(`^${id} +\\d+ \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d  alice@sender\\.test$`, 'm'));
    assert.match(q.stdout, /\(host mx\.one\.test\[127\.0\.0\.2\] said: 451 4\.3\.0 try again later \(in reply to RCPT TO command\)\)/);
    assert.match(q.stdout, /^ {41}bob@one\.test$/m);
    // The retry: queue_run_delay and the backoff are 1 s in this lab.
    await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<bob@one\\.test>, .*status=sent`), 1, 10_000);
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${id}: removed$`));
    assert.equal(lab.lines(new RegExp(`^sealpost/qmgr: ${id}: from=<alice@sender\\.test>, size=\\d+, nrcpt=1 \\(queue active\\)$`)).length, 2, 'activated twice');
    assert.equal(mx!.messages.length, 1);
    assert.equal((await lab.cli(['mailq'])).stdout, 'Mail queue is empty\n');
  } finally {
    await lab.cleanup();
    await mx!.close();
  }
});

test('postqueue -f retries deferred mail now, although its retry time is far away', async () => {
  const [mx] = await startReceivers([{ name: 'mx.one.test', replies: { rcpt: (_arg, s) => (s.seen === 1 ? '421 4.7.0 busy' : undefined) } }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['minimal_backoff_time = 300s', 'maximal_backoff_time = 600s', 'queue_run_delay = 300s'] });
  try {
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@one.test']);
    await waitDeferred(lab, id);
    assert.ok(lab.spool.list('deferred').includes(id));
    await sleep(300);
    assert.equal(mx!.messages.length, 0, 'no retry before the flush');
    const f = await lab.cli(['postqueue', '-f']);
    assert.equal(f.code, 0, f.stderr);
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${id}: removed$`), 1, 10_000);
    assert.equal(mx!.messages.length, 1);
  } finally {
    await lab.cleanup();
    await mx!.close();
  }
});
