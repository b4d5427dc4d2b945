/**
 * qmgr-admin — the queue tools against a running daemon: `postsuper -h`
 * holds a deferred message (mailq marks it `!`, queue runs leave it alone),
 * `postsuper -H` releases it, `postqueue -i ID` delivers it at once;
 * `postsuper -d` deletes another deferred message while the daemon keeps
 * running and keeps delivering.
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

test('postsuper -h/-H/-d and postqueue -i act on a running daemon', { timeout: 60_000 }, async () => {
  let accept = false;
  const [mx] = await startReceivers([{ name: 'mx.one.test', replies: { rcpt: () => (accept ? undefined : '451 4.3.0 not yet') } }]);
  // Retries are far away: only the tools move these messages.
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['minimal_backoff_time = 300s', 'maximal_backoff_time = 600s', 'queue_run_delay = 1s'] });
  try {
    await lab.start();
    const keep = await lab.submit('alice@sender.test', ['bob@one.test']);
    const drop = await lab.submit('alice@sender.test', ['carol@one.test']);
    for (const id of [keep, drop]) {
      await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: .*status=deferred`));
      for (let i = 0; i < 200 && !lab.spool.list('deferred').includes(id); i++) await sleep(25);
    }
    // Hold: mailq marks it, and it stays in hold/.
    const h = await lab.cli(['postsuper', '-h', keep]);
    assert.equal(h.code, 0, h.stderr);
    assert.ok(lab.spool.list('hold').includes(keep));
    assert.match((await lab.cli(['mailq'])).stdout, new RegExp(`^${keep}! `, 'm'));
    // Delete the other one under the running daemon.
    const d = await lab.cli(['postsuper', '-d', drop]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(lab.spool.locate(drop), undefined);
    accept = true;
    await sleep(1500); // a queue run passes: held mail is not delivered
    assert.equal(mx!.messages.length, 0);
    assert.ok(lab.spool.list('hold').includes(keep));
    // Release and deliver it now.
    const rel = await lab.cli(['postsuper', '-H', keep]);
    assert.equal(rel.code, 0, rel.stderr);
    const i = await lab.cli(['postqueue', '-i', keep]);
    assert.equal(i.code, 0, i.stderr);
    await lab.waitLog(new RegExp(`^sealpost/smtp: ${keep}: to=<bob@one\\.test>, .*status=sent`), 1, 10_000);
    await lab.waitLog(new RegExp(`^sealpost/qmgr: ${keep}: removed$`));
    assert.deepEqual(mx!.messages.map((m) => m.rcptTo[0]), ['bob@one.test']);
    // The daemon is alive and well: new mail still flows.
    const next = await lab.submit('alice@sender.test', ['dave@one.test']);
    await lab.waitLog(new RegExp(`^sealpost/smtp: ${next}: to=<dave@one\\.test>, .*status=sent`));
    assert.equal(lab.lines(/panic|fatal|TypeError|ENOENT/).length, 0, lab.log());
    assert.equal(lab.queued(), 0);
  } finally {
    await lab.cleanup();
    await mx!.close();
  }
});

test('postqueue -s SITE retries the deferred mail for that destination now, and only that', { timeout: 60_000 }, async () => {
  let accept = false;
  const [mx, two] = await startReceivers([
    { name: 'mx.one.test', replies: { rcpt: () => (accept ? undefined : '451 4.3.0 not yet') } },
    { name: 'mx.two.test', replies: { rcpt: () => (accept ? undefined : '451 4.3.0 not yet') } },
  ]);
  const lab = await qmgrLab({
    zone: { ...zone, 'two.test': { MX: [[10, 'mx.two.test']] }, 'mx.two.test': { A: ['127.0.0.3'] } },
    receiverPort: mx!.port,
    mainCf: ['minimal_backoff_time = 300s', 'maximal_backoff_time = 600s', 'queue_run_delay = 1s'],
  });
  try {
    await lab.start();
    const a = await lab.submit('alice@sender.test', ['bob@one.test']);
    const b = await lab.submit('alice@sender.test', ['carol@two.test']);
    for (const id of [a, b]) {
      await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: .*status=deferred`));
      for (let i = 0; i < 200 && !lab.spool.list('deferred').includes(id); i++) await sleep(25);
    }
    accept = true;
    const s = await lab.cli(['postqueue', '-s', 'one.test']);
    assert.equal(s.code, 0, s.stderr);
    await lab.waitLog(new RegExp(`^sealpost/smtp: ${a}: to=<bob@one\\.test>, .*status=sent`), 1, 10_000);
    await sleep(1500); // a queue run passes: the other site's mail keeps its retry time
    assert.equal(two!.messages.length, 0);
    assert.ok(lab.spool.list('deferred').includes(b));
  } finally {
    await lab.cleanup();
    await Promise.all([mx!.close(), two!.close()]);
  }
});
