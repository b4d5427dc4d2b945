/**
 * delivery-pflogsumm — issue 4's evidence check: Debian's pflogsumm, run on
 * the log of a real sealpost daemon (`--syslog-name=sealpost`), reports the
 * right counts. Three messages come in by SMTP: one for a receiver that
 * accepts (smtp-sink), one for a receiver that rejects RCPT with 550
 * (`smtp-sink -f RCPT`), one for a receiver that answers RCPT with 4xx
 * (`smtp-sink -r RCPT`). The sender's domain routes to the
 * accepting sink, so the non-delivery notice is delivered too.
 *
 * Expected pflogsumm "Grand Totals": 3 received, 2 delivered (the message and
 * the bounce notice), 1 deferred, 1 bounced.
 *
 * Note: Postfix 3.11 adds `tls=...` between `delays=` and `dsn=` in delivery
 * lines (smtp_log_tls_feature_status, default yes); pflogsumm 1.1.5's
 * delivery regex does not allow that field, for Postfix's lines as for ours,
 * so this test sets `smtp_log_tls_feature_status = no` (documented in
 * docs/delivery.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function sink(host: string, port: number, extra: readonly string[]): Promise<ChildProcess> {
  const p = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, ...extra, `${host}:${port}`, '64'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return p;
    await sleep(50);
  }
  throw new Error(`smtp-sink on ${host}:${port} did not start`);
}

function totals(report: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of report.matchAll(/^\s+(\d+)\s+(received|delivered|deferred|bounced)\b/gm)) out[m[2]!] = Number(m[1]);
  return out;
}

test('pflogsumm reads sealpost\'s log: received, delivered, deferred and bounced counts', async () => {
  assert.ok(existsSync('/usr/sbin/pflogsumm'), '/usr/sbin/pflogsumm is missing: .ci/run installs the Debian package pflogsumm');
  const port = await freePort();
  const sinks = [await sink('127.0.0.2', port, []), await sink('127.0.0.3', port, ['-f', 'RCPT']), await sink('127.0.0.4', port, ['-r', 'RCPT'])];
  const inst = await makeInstance();
  try {
    const transport = join(inst.configDir, 'transport');
    writeFileSync(
      transport,
      [`ok.test smtp:[127.0.0.2]:${port}`, `bad.test smtp:[127.0.0.3]:${port}`, `soft.test smtp:[127.0.0.4]:${port}`, `example.org smtp:[127.0.0.2]:${port}`, ''].join('\n'),
    );
    inst.writeMainCf(
      [
        `transport_maps = texthash:${transport}`,
        'smtp_log_tls_feature_status = no',
        'smtp_tls_security_level = none',
        'minimal_backoff_time = 60s',
        'queue_run_delay = 60s',
      ].join('\n'),
    );
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const d = await inst.startFg();
    for (const rcpt of ['alice@ok.test', 'bob@bad.test', 'carol@soft.test']) {
      const { client } = await SmtpClient.connect(inst.port);
      const reply = await client.send('sender@example.org', [rcpt], `Subject: to ${rcpt}\r\n\r\nhello\r\n`);
      assert.match(reply, /^250 /);
      client.close();
    }
    const deadline = Date.now() + 20_000;
    for (;;) {
      const text = d.log;
      const done = (text.match(/status=(sent|bounced|deferred)/g) ?? []).length;
      if (done >= 4) break;
      if (Date.now() > deadline) throw new Error(`delivery did not finish:\n${text}`);
      await sleep(100);
    }
    d.kill('SIGTERM');
    await d.exited;
    // The daemon's log (maillog_file empty: start-fg writes it to stdout), as a file for pflogsumm.
    const log = join(inst.dir, 'maillog');
    writeFileSync(log, d.log);
    const r = spawnSync('/usr/sbin/pflogsumm', ['--syslog-name=sealpost', log], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(totals(r.stdout), { received: 3, delivered: 2, deferred: 1, bounced: 1 }, r.stdout);
  } finally {
    for (const s of sinks) s.kill('SIGKILL');
    inst.cleanup();
  }
});
