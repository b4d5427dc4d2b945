/**
 * cli-postfix-forms — Postfix's command forms against the real daemon:
 * `sealpost -c DIR start|status|reload|stop` and the binary invoked as
 * `postfix` (`postfix -c DIR status|reload|stop`); a reload with
 * `smtp_tls_security_level = secur` is refused — by the CLI, and by the
 * daemon itself on a bare SIGHUP — and the running configuration keeps
 * answering (its banner), until a good configuration is reloaded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';
import { sealpost } from '../harness/cli.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function banner(port: number): Promise<string> {
  const s = await SmtpClient.connect(port);
  s.client.close();
  return s.greeting;
}

async function waitForLog(path: string, re: RegExp, from = 0): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (existsSync(path) && re.test(readFileSync(path, 'utf8').slice(from))) return;
    await sleep(50);
  }
  assert.fail(`${re} not in ${path}:\n${existsSync(path) ? readFileSync(path, 'utf8') : '(no log)'}`);
}

test('sealpost -c DIR start|status|reload|stop and postfix -c DIR ...; a reload with an unknown TLS level is refused', async () => {
  const inst = await makeInstance();
  const log = join(inst.dir, 'maillog');
  const env = { PATH: process.env.PATH };
  const sp = (args: string[]) => sealpost(args, { env });
  const pf = (args: string[]) => sealpost(args, { env, argv0: '/usr/local/sbin/postfix' });
  inst.writeMainCf(`maillog_file = ${log}\nsmtpd_banner = $myhostname ESMTP first`);
  try {
    assert.equal((await sp(['-c', inst.configDir, 'status'])).code, 1);
    const started = await sp(['-c', inst.configDir, 'start']);
    assert.equal(started.code, 0, started.stderr);
    const st = await pf(['-c', inst.configDir, 'status']);
    assert.equal(st.code, 0, st.stderr);
    const pid = Number(/PID: (\d+)/.exec(st.stderr)?.[1]);
    assert.ok(pid > 0, st.stderr);
    assert.equal(await banner(inst.port), '220 mx.example.org ESMTP first');

    // An unknown TLS level: the CLI refuses the reload and signals nothing.
    inst.writeMainCf(`maillog_file = ${log}\nsmtpd_banner = $myhostname ESMTP second\nsmtp_tls_security_level = secur`);
    const bad = await sp(['-c', inst.configDir, 'reload']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^sealpost\/reload: fatal: .*main\.cf, line \d+: invalid tls security level: "secur" for parameter "smtp_tls_security_level": specify one of none, may, encrypt/m);
    assert.doesNotMatch(bad.stderr, /refreshing/);
    assert.equal(await banner(inst.port), '220 mx.example.org ESMTP first');

    // The same file by SIGHUP: the daemon refuses it too and keeps the old configuration.
    const from = readFileSync(log, 'utf8').length;
    process.kill(pid, 'SIGHUP');
    await waitForLog(log, /invalid tls security level: "secur".* -- reload refused; the running configuration stays in effect/, from);
    assert.equal(await banner(inst.port), '220 mx.example.org ESMTP first');
    assert.equal((await pf(['-c', inst.configDir, 'status'])).code, 0);

    // A good configuration through the postfix name.
    inst.writeMainCf(`maillog_file = ${log}\nsmtpd_banner = $myhostname ESMTP second\nsmtp_tls_security_level = encrypt`);
    const good = await pf(['-c', inst.configDir, 'reload']);
    assert.equal(good.code, 0, good.stderr);
    assert.equal(good.stderr, 'sealpost/sealpost-script: refreshing the sealpost mail system\n');
    await waitForLog(log, /reload -- version/, from);
    assert.equal(await banner(inst.port), '220 mx.example.org ESMTP second');

    const stop = await pf(['-c', inst.configDir, 'stop']);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await sp(['-c', inst.configDir, 'status'])).code, 1);
    assert.equal((await pf(['-c', inst.configDir, 'stop'])).code, 1);
  } finally {
    if ((await sp(['-c', inst.configDir, 'status'])).code === 0) await sp(['-c', inst.configDir, 'abort']);
    inst.cleanup();
  }
});
