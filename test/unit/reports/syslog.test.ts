import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkFacility, findSyslogSocket, openSyslogLog, severityOf } from '../../../src/reports/syslog.ts';
import { memoryMailLog } from '../../../src/reports/maillog.ts';
import { tempDir } from '../../harness/cli.ts';
import { startSyslogReceiver } from '../../harness/syslog-receiver.ts';

const STAMP = '[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d';

test('severities and facilities as Postfix uses them', () => {
  assert.equal(severityOf('connect from unknown[192.0.2.1]'), 6);
  assert.equal(severityOf('warning: x'), 4);
  assert.equal(severityOf('error: x'), 3);
  assert.equal(severityOf('fatal: x'), 2);
  assert.equal(severityOf('panic: x'), 2);
  assert.equal(checkFacility('MAIL'), 'mail');
  assert.equal(checkFacility('local7'), 'local7');
  assert.throws(() => checkFacility('mial'), /syslog_facility: unknown syslog facility: mial/);
});

test('RFC 3164 datagrams with syslog_name/service[pid], the facility and a severity per line', async () => {
  const t = tempDir();
  const rx = await startSyslogReceiver(join(t.dir, 'log'));
  try {
    assert.equal(findSyslogSocket(rx.path), rx.path);
    assert.equal(findSyslogSocket('', [join(t.dir, 'none'), rx.path]), rx.path);
    assert.equal(findSyslogSocket(join(t.dir, 'none')), undefined);
    const log = openSyslogLog({ socket: rx.path, facility: 'mail', syslogName: 'sealpost', pid: 4242, fallback: () => memoryMailLog() });
    log.write('smtpd', 'connect from localhost[127.0.0.1]');
    log.warn('smtp', 'no MX host for example.invalid');
    log.write('sealpost/submission/smtpd', 'fatal: something broke\nacross lines');
    log.close();
    // mail = 2: info 2*8+6 = 22, warning 20, crit 18.
    assert.match(await rx.waitFor(/smtpd\[4242\]: connect/), new RegExp(`^<22>${STAMP} sealpost/smtpd\\[4242\\]: connect from localhost\\[127\\.0\\.0\\.1\\]$`));
    assert.match(await rx.waitFor(/smtp\[4242\]: warning/), new RegExp(`^<20>${STAMP} sealpost/smtp\\[4242\\]: warning: no MX host for example\\.invalid$`));
    assert.match(await rx.waitFor(/fatal/), new RegExp(`^<18>${STAMP} sealpost/submission/smtpd\\[4242\\]: fatal: something broke across lines$`));
  } finally {
    await rx.close();
    t.cleanup();
  }
});

test('when the system logger goes away, lines go to the fallback with one warning: nothing is discarded', async () => {
  const t = tempDir();
  const rx = await startSyslogReceiver(join(t.dir, 'log'));
  const fallback = memoryMailLog();
  let fallbacks = 0;
  const log = openSyslogLog({ socket: rx.path, facility: 'local3', syslogName: 'sealpost', pid: 7, fallback: () => (fallbacks++, fallback) });
  try {
    log.write('qmgr', 'first');
    assert.match(await rx.waitFor(/first/), new RegExp(`^<158>${STAMP} sealpost/qmgr\\[7\\]: first$`)); // local3 = 19: 19*8+6
    await rx.close();
    for (let i = 0; i < 100 && fallback.lines.length === 0; i++) {
      log.write('qmgr', `after ${i}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(fallbacks, 1);
    assert.match(fallback.lines[0]!, /^sealpost\/master: warning: system logger unavailable \(.*\/log\): logger for sealpost\/qmgr stopped/);
    log.write('qmgr', 'later');
    assert.ok(fallback.lines.includes('sealpost/qmgr: later'));
    const afterIndexes = fallback.lines.filter((l) => /after \d+/.test(l)).map((l) => Number(/after (\d+)/.exec(l)![1]));
    const written = Math.max(...afterIndexes);
    // Every line written after the receiver went away is in the fallback (the one the logger failed on included).
    const sent = rx.lines.filter((l) => /after \d+/.test(l)).map((l) => Number(/after (\d+)/.exec(l)![1]));
    for (let i = 0; i <= written; i++) assert.ok(afterIndexes.includes(i) || sent.includes(i), `line "after ${i}" is lost`);
  } finally {
    log.close();
    t.cleanup();
  }
});
