/**
 * daemon-restart — issue 9 item 5: SIGKILL the master, then `sealpost start`
 * at once, 20 times in a row. Every start succeeds (the master lock died with
 * its holder: no "already running" from a dead master that nobody has reaped
 * yet) and no accepted message is lost: each message that got its 250 before
 * a kill reaches the receiver in the end.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readPidFile } from '../../src/daemon/pidfile.ts';
import { startReceiver } from '../harness/smtp-receiver.ts';
import { makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

const ROUNDS = 20;

test('SIGKILL then start at once, 20 times: every start works, every accepted message is delivered', async () => {
  const receiver = await startReceiver();
  const inst = await makeInstance();
  try {
    inst.writeMainCf([`maillog_file = ${join(inst.dir, 'maillog')}`, `relayhost = [${receiver.host}]:${receiver.port}`, 'smtp_tls_security_level = none'].join('\n'));
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const accepted: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const started = await inst.cli(['start']);
      assert.equal(started.code, 0, `round ${round}: ${started.stderr}`);
      const pid = readPidFile(inst.queueDir)!;
      const { client } = await SmtpClient.connect(inst.port);
      const token = `round-${round}`;
      const reply = await client.send('sender@example.org', [`${token}@remote.test`], `Subject: ${token}\r\n\r\nbody\r\n`);
      client.close();
      assert.match(reply, /^250 /, `round ${round}`);
      accepted.push(token);
      process.kill(pid, 'SIGKILL');
    }
    assert.equal((await inst.cli(['start'])).code, 0);
    await receiver.waitForMessages(ROUNDS, 30_000).catch(() => undefined);
    const got = new Set(receiver.messages.map((m) => m.rcptTo[0]!.replace(/@.*/, '')));
    assert.deepEqual(accepted.filter((t) => !got.has(t)), [], 'accepted and never delivered');
    const status = await inst.cli(['status']);
    assert.equal(status.code, 0);
    const stop = await inst.cli(['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await inst.cli(['status'])).code, 1, 'status agrees with stop');
  } finally {
    await inst.cli(['abort']).catch(() => undefined);
    await receiver.close();
    inst.cleanup();
  }
});
