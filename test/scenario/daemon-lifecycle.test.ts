/**
 * daemon-lifecycle — start-fg as a real process: status, SMTP on the
 * master.cf port, reload with a good and a broken configuration (CLI and a
 * direct SIGHUP), SIGTERM with an open session, stop and abort.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

test('start-fg, status, SMTP, reload good and broken, stop', async () => {
  const inst = await makeInstance('smtpd_banner = $myhostname ESMTP first');
  try {
    assert.equal((await inst.cli(['status'])).code, 1);
    const d = await inst.startFg();
    assert.match(d.log, /sealpost\/master\[\d+\]: daemon started -- version [\d.]+, configuration /);
    const st = await inst.cli(['status']);
    assert.equal(st.code, 0);
    assert.equal(st.stderr, `sealpost/sealpost-script: the sealpost mail system is running: PID: ${d.pid}\n`);

    const s1 = await SmtpClient.connect(inst.port);
    assert.equal(s1.greeting, '220 mx.example.org ESMTP first');
    assert.match(await s1.client.send('a@example.org', ['b@example.org'], 'Subject: t\n\nhello'), /^250 2\.0\.0 Ok: queued as [0-9A-F]+$/);

    // A good new configuration: logged, and new sessions see it while the open one keeps running.
    inst.writeMainCf('smtpd_banner = $myhostname ESMTP second');
    const r = await inst.cli(['reload']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, 'sealpost/sealpost-script: refreshing the sealpost mail system\n');
    await d.waitFor(/reload -- version [\d.]+, configuration /);
    const s2 = await SmtpClient.connect(inst.port);
    assert.equal(s2.greeting, '220 mx.example.org ESMTP second');
    assert.match(await s1.client.cmd('NOOP'), /^250/);
    s1.client.close();
    s2.client.close();

    // A broken configuration: the CLI refuses it, nothing is signalled, the old one stays.
    inst.writeMainCf('smtpd_banner = $myhostname ESMTP third\nsmtpd_timeout = banana');
    const logBefore = d.log.length;
    const bad = await inst.cli(['reload']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^sealpost\/reload: fatal: .*main\.cf, line 10: .*smtpd_timeout/m);
    assert.doesNotMatch(bad.stderr, /refreshing/);
    const s3 = await SmtpClient.connect(inst.port);
    assert.equal(s3.greeting, '220 mx.example.org ESMTP second');
    s3.client.close();

    // The same broken file by SIGHUP directly: logged as a warning, still the old configuration.
    process.kill(d.pid, 'SIGHUP');
    await d.waitFor(/warning: .*smtpd_timeout.* -- reload refused; the running configuration stays in effect/, 10_000, logBefore);
    const s4 = await SmtpClient.connect(inst.port);
    assert.equal(s4.greeting, '220 mx.example.org ESMTP second');
    s4.client.close();
    assert.equal((await inst.cli(['status'])).code, 0);

    inst.writeMainCf('');
    const stop = await inst.cli(['stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(stop.stderr, 'sealpost/sealpost-script: stopping the sealpost mail system\n');
    assert.equal(await d.exited, 0);
    assert.match(d.log, /terminating on signal 15/);
    assert.equal(existsSync(join(inst.queueDir, 'pid', 'master.pid')), false);
    const again = await inst.cli(['stop']);
    assert.equal(again.code, 1);
    assert.equal(again.stderr, 'sealpost/sealpost-script: fatal: the sealpost mail system is not running\n');
  } finally {
    inst.cleanup();
  }
});

test('reload adds, rebinds and removes listeners', async () => {
  const inst = await makeInstance();
  try {
    const d = await inst.startFg();
    const { freePort } = await import('../unit/daemon/fixtures/instance.ts');
    const p2 = await freePort();
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\n127.0.0.1:${p2} inet n - n - - smtpd -o smtpd_banner=submission-banner\n`);
    assert.equal((await inst.cli(['reload'])).code, 0);
    await d.waitFor(/reload -- version/);
    const a = await SmtpClient.connect(p2);
    assert.equal(a.greeting, '220 submission-banner');
    a.client.close();
    inst.writeMasterCf(`127.0.0.1:${p2} inet n - n - - smtpd\n`);
    const from = d.log.length;
    assert.equal((await inst.cli(['reload'])).code, 0);
    await d.waitFor(/reload -- version/, 10_000, from);
    const b = await SmtpClient.connect(p2);
    assert.match(b.greeting, /^220 mx\.example\.org ESMTP/);
    b.client.close();
    const gone = await SmtpClient.connect(inst.port).catch(() => undefined);
    assert.ok(gone === undefined || gone.greeting === '', 'the removed listener no longer answers');
    gone?.client.close();
  } finally {
    inst.cleanup();
  }
});

test('a second start-fg is refused while one runs; a broken config never starts', async () => {
  const inst = await makeInstance();
  try {
    const d = await inst.startFg();
    const second = await inst.cli(['start']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /sealpost\/sealpost-script: fatal: the sealpost mail system is already running/);
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);

    inst.writeMainCf('message_size_limit = lots');
    const bad = await inst.cli(['start']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /fatal: .*main\.cf, line 9: .*message_size_limit/);
    assert.equal((await inst.cli(['status'])).code, 1);

    // Started as root without its account: one line naming the fix.
    inst.writeMainCf('mail_owner = no-such-user-sealpost');
    const noAccount = await inst.cli(['start']);
    assert.equal(noAccount.code, 1);
    assert.equal(
      noAccount.stderr.split('\n').filter((l) => l.includes('fatal')).join('\n'),
      `sealpost/sealpost-script: fatal: file ${inst.configDir}/main.cf: parameter mail_owner: unknown user name value: no-such-user-sealpost; run: sealpost set-permissions`,
    );
    assert.equal((await inst.cli(['status'])).code, 1);

    // A table only root can read: the delivery threads could not open it after the drop.
    const table = join(inst.configDir, 'transport');
    writeFileSync(table, 'example.com smtp:[127.0.0.1]:2525\n', { mode: 0o600 });
    inst.writeMainCf(`transport_maps = texthash:${table}`);
    const rootOnly = await inst.cli(['start']);
    assert.equal(rootOnly.code, 1);
    assert.match(rootOnly.stderr, new RegExp(`fatal: transport_maps: open database ${table}: Permission denied; .*the mail system runs as sealpost: make it readable by that user`));
    assert.equal((await inst.cli(['status'])).code, 1);
  } finally {
    inst.cleanup();
  }
});

test('SIGTERM while a session is open: the open transaction completes, then the daemon exits', async () => {
  const inst = await makeInstance();
  try {
    const d = await inst.startFg();
    const { client } = await SmtpClient.connect(inst.port);
    await client.cmd('EHLO client.example');
    assert.match(await client.cmd('MAIL FROM:<a@example.org>'), /^250/);
    assert.match(await client.cmd('RCPT TO:<b@example.org>'), /^250/);
    assert.match(await client.cmd('DATA'), /^354/);
    d.kill('SIGTERM');
    await d.waitFor(/terminating on signal 15/);
    // New connections are refused at once.
    await assert.rejects(SmtpClient.connect(inst.port).then(({ client: c, greeting }) => {
      c.close();
      if (greeting === '') throw new Error('closed');
    }));
    assert.match(await client.cmd('Subject: late\r\n\r\nstill accepted\r\n.'), /^250 2\.0\.0 Ok: queued as/);
    client.close();
    assert.equal(await d.exited, 0);
    const q = await inst.cli(['mailq']);
    assert.match(q.stdout, /1 Request\./);
  } finally {
    inst.cleanup();
  }
});

test('start (background), flush, abort', async () => {
  const inst = await makeInstance();
  try {
    inst.writeMainCf(`maillog_file = ${join(inst.dir, 'maillog')}`);
    const s = await inst.cli(['start']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stderr, 'sealpost/sealpost-script: starting the sealpost mail system\n');
    const { client, greeting } = await SmtpClient.connect(inst.port);
    assert.match(greeting, /^220 /);
    client.close();
    assert.equal((await inst.cli(['flush'])).code, 0);
    const ab = await inst.cli(['abort']);
    assert.equal(ab.code, 0, ab.stderr);
    assert.equal(ab.stderr, 'sealpost/sealpost-script: aborting the sealpost mail system\n');
    assert.equal((await inst.cli(['status'])).code, 1);
    const { readFileSync } = await import('node:fs');
    assert.match(readFileSync(join(inst.dir, 'maillog'), 'utf8'), /daemon started/);
    const f = await inst.cli(['flush']);
    assert.equal(f.code, 69);
    assert.match(f.stderr, /mail system is down/);
  } finally {
    inst.cleanup();
  }
});
