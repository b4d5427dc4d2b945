/**
 * daemon-syslog — issue 9 item 4 through the real daemon: with maillog_file
 * empty the log goes to the system logger (a receiver the test runs, named by
 * sealpost_syslog_socket) as RFC 3164 datagrams with syslog_facility; the
 * logger processes run as mail_owner; the SMTP client is named as Postfix
 * names it (localhost[127.0.0.1]). Without a system logger nothing is
 * discarded: a foreground daemon logs to standard error, a background one to
 * $data_directory/maillog, each with one warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lookupUser, processCredentials } from '../../src/daemon/privileges.ts';
import { startSyslogReceiver } from '../harness/syslog-receiver.ts';
import { Daemon, makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

const STAMP = '[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d';

function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .filter((n) => {
      try {
        const stat = readFileSync(`/proc/${n}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('maillog_file empty: datagrams to the system logger, loggers as mail_owner, clients named', async () => {
  const inst = await makeInstance();
  const rx = await startSyslogReceiver(join(inst.dir, 'dev-log'));
  let d: Daemon | undefined;
  try {
    inst.writeMainCf(['maillog_file =', `sealpost_syslog_socket = ${rx.path}`, 'syslog_facility = local5'].join('\n'));
    d = new Daemon(inst.configDir);
    // local5 = 21: info is 21*8+6 = 174.
    const started = await rx.waitFor(/daemon started/, 30_000);
    assert.match(started, new RegExp(`^<174>${STAMP} sealpost/master\\[${d.pid}\\]: daemon started -- version [\\d.]+, configuration ${inst.configDir}$`));
    const { client } = await SmtpClient.connect(inst.port);
    client.close();
    assert.match(await rx.waitFor(/connect from/), new RegExp(`^<174>${STAMP} sealpost/smtpd\\[${d.pid}\\]: connect from localhost\\[127\\.0\\.0\\.1\\]$`));
    const owner = lookupUser('sealpost')!;
    const loggers = childrenOf(d.pid).filter((p) => readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'logger');
    assert.ok(loggers.length >= 2, 'one logger per program tag (master, smtpd)');
    for (const p of loggers) for (const t of processCredentials(p)) assert.deepEqual([...new Set(t.uids)], [owner.uid], `logger ${p}`);
    assert.equal(d.log, '', 'nothing on standard output or error');
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    await rx.waitFor(/terminating on signal 15/);
  } finally {
    d?.kill();
    await rx.close();
    inst.cleanup();
  }
});

test('no system logger: a foreground daemon logs to standard error, a background one to $data_directory/maillog, never nowhere', async () => {
  const inst = await makeInstance();
  try {
    inst.writeMainCf(['maillog_file =', `sealpost_syslog_socket = ${join(inst.dir, 'no-such-socket')}`].join('\n'));
    const d = await inst.startFg();
    const warnings = d.log.match(/warning: no system logger socket/g) ?? [];
    assert.equal(warnings.length, 1);
    assert.match(d.log, new RegExp(`sealpost/master\\[${d.pid}\\]: warning: no system logger socket \\(${join(inst.dir, 'no-such-socket')}\\): logging to /dev/stderr; set maillog_file in `));
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);

    const start = await inst.cli(['start']);
    assert.equal(start.code, 0, start.stderr);
    const maillog = join(inst.dir, 'data', 'maillog');
    assert.match(start.stderr, new RegExp(`warning: no system logger socket: the log goes to ${maillog}; set maillog_file in `));
    assert.match(readFileSync(maillog, 'utf8'), /sealpost\/master\[\d+\]: daemon started -- version/);
    assert.equal((await inst.cli(['stop'])).code, 0);
    assert.match(readFileSync(maillog, 'utf8'), /terminating on signal 15/);
  } finally {
    await inst.cli(['abort']).catch(() => undefined);
    inst.cleanup();
  }
});
