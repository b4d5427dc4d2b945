/**
 * daemon-local-users — issue 9 item 3: an unprivileged user (nobody) runs
 * sendmail and mailq, with the daemon down and up, against a queue that is
 * not world-writable (maildrop/ 1730, public/ 2710, the rest 0700). Mail
 * submitted while the daemon is down is delivered after the start; mailq
 * prints the same bytes as root's direct listing; a configuration directory
 * the default main.cf does not list is refused with Postfix's messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { selfCommand } from '../../src/daemon/control.ts';
import { lookupUser, processCredentials, runsAs } from '../../src/daemon/privileges.ts';
import { startReceiver } from '../harness/smtp-receiver.ts';
import { makeInstance } from '../unit/daemon/fixtures/instance.ts';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `sealpost ARGS` as the user nobody (65534, no supplementary groups). */
function asNobody(args: readonly string[], stdin = ''): Promise<Run> {
  const { command, args: pre } = selfCommand();
  const p = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', command, ...pre, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  p.stdin.end(stdin);
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, stdout, stderr })));
}

test('sendmail and mailq as nobody, with the daemon down and up', async () => {
  assert.equal(process.geteuid?.(), 0, 'the test prepares the instance as root');
  const receiver = await startReceiver({ replies: { rcpt: (arg) => (arg.includes('later@') ? '450 4.2.0 try again later' : undefined) } });
  const inst = await makeInstance();
  try {
    inst.writeMainCf([`relayhost = [${receiver.host}]:${receiver.port}`, 'smtp_tls_security_level = none', 'minimal_backoff_time = 300s', 'queue_run_delay = 300s'].join('\n'));
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const setup = await inst.cli(['set-permissions']);
    assert.equal(setup.code, 0, setup.stderr);
    assert.match(setup.stdout, /installed .*\/libexec\/postdrop \(setgid sealdrop/);
    assert.equal(statSync(join(inst.queueDir, 'maildrop')).mode & 0o7777, 0o1730);
    assert.equal(statSync(join(inst.queueDir, 'incoming')).mode & 0o7777, 0o700);

    // Down: sendmail works (setgid postdrop), mailq says the mail system is down.
    const down = await asNobody(['sendmail', '-C', inst.configDir, '-f', 'nobody@example.org', 'first@remote.test'], 'Subject: while down\n\nhello\n');
    assert.equal(down.code, 0, down.stderr);
    const [dropped] = readdirSync(join(inst.queueDir, 'maildrop'));
    assert.equal(statSync(join(inst.queueDir, 'maildrop', dropped!)).uid, 65534, 'the maildrop file keeps its submitter');
    const q0 = await asNobody(['mailq', '-c', inst.configDir]);
    assert.equal(q0.code, 69);
    assert.equal(q0.stderr, 'mailq: fatal: Queue report unavailable - mail system is down (Connect to the sealpost showq service: No such file or directory)\n');
    assert.equal(q0.stdout, '');

    // Up: the message from before is picked up (uid=65534) and delivered, by a master whose every
    // thread (the delivery worker thread included: sealpost_delivery_workers = 1) runs as sealpost.
    const d = await inst.startFg();
    const owner = lookupUser('sealpost')!;
    assert.ok(runsAs(owner, processCredentials(d.pid)), 'every thread of the master runs as sealpost');
    await receiver.waitForMessages(1, 20_000);
    assert.deepEqual(receiver.messages[0]!.rcptTo, ['first@remote.test']);
    assert.match(d.log, /sealpost\/pickup\[\d+\]: [0-9A-F]+: uid=65534 from=<nobody@example\.org>/);

    // Up: another submission, and one that waits in the queue for mailq.
    assert.equal((await asNobody(['sendmail', '-C', inst.configDir, 'second@remote.test'], 'Subject: while up\n\nhello\n')).code, 0);
    assert.equal((await asNobody(['sendmail', '-C', inst.configDir, 'later@remote.test'], 'Subject: waits\n\nhello\n')).code, 0);
    await receiver.waitForMessages(2, 20_000);
    await d.waitFor(/to=<later@remote\.test>.*status=deferred/);
    for (const args of [['mailq'], ['postqueue', '-j']]) {
      const mine = await asNobody([...args, '-c', inst.configDir]);
      const root = await inst.cli(args);
      assert.equal(mine.code, 0, mine.stderr);
      assert.equal(root.code, 0, root.stderr);
      assert.match(root.stdout, /later@remote\.test/);
      assert.equal(mine.stdout, root.stdout, `${args.join(' ')}: nobody sees what root sees, byte for byte`);
    }

    // A configuration directory that the trusted main.cf does not list.
    const other = join(inst.dir, 'other-etc');
    mkdirSync(other);
    writeFileSync(join(other, 'main.cf'), `queue_directory = ${inst.queueDir}\ndaemon_directory = ${join(inst.dir, 'libexec')}\n`);
    const refused = await asNobody(['sendmail', '-C', other, 'third@remote.test'], 'Subject: other\n\nhello\n');
    assert.notEqual(refused.code, 0);
    assert.equal(
      refused.stderr,
      `sendmail: error: unauthorized configuration directory name: ${other}\nsendmail: fatal: specify "alternate_config_directories = ${other}" or "multi_instance_directories = ${other}" in ${inst.configDir}/main.cf\n`,
    );
    const listRefused = await asNobody(['mailq', '-c', other]);
    assert.match(listRefused.stderr, new RegExp(`^mailq: error: unauthorized configuration directory name: ${other}\n`));
    appendFileSync(join(inst.configDir, 'main.cf'), `alternate_config_directories = ${other}\n`);
    const allowed = await asNobody(['sendmail', '-C', other, 'third@remote.test'], 'Subject: other\n\nhello\n');
    assert.equal(allowed.code, 0, allowed.stderr);
    await receiver.waitForMessages(3, 20_000);
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);
  } finally {
    await receiver.close();
    inst.cleanup();
  }
});
