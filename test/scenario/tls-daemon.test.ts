/**
 * tls-daemon — TLS policy behaviour that only shows across several messages
 * or a reload, through the running daemon:
 * - a destination throttled by a TLS failure: later mail for it waits with
 *   `delivery temporarily suspended: TLS is required, but was not offered by
 *   host ...` (qmgr_deliver.c) without a new connection, and `mailq` shows it;
 * - `sealpost reload` picks up an edited policy table for the next attempt;
 * - a server that requires STARTTLS (530 to MAIL without it): at `may` the
 *   client's STARTTLS satisfies it; at `none` the 530 bounces the mail as
 *   Postfix does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { startDnsServer } from '../harness/dns-server.ts';
import { makePki } from '../harness/pki.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'one.test': { MX: [[10, 'mx.one.test']] as Array<[number, string]> },
  'mx.one.test': { A: ['127.0.0.2'] },
};

test('a destination throttled by a TLS failure: its other mail waits as "delivery temporarily suspended", without connecting', async () => {
  const [mx] = await startReceivers([{ name: 'mx.one.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['smtp_tls_security_level = encrypt', 'minimal_backoff_time = 60s', 'maximal_backoff_time = 120s', 'queue_run_delay = 60s'] });
  try {
    await lab.start();
    const first = await lab.submit('alice@sender.test', ['bob@one.test']);
    await lab.waitLog(new RegExp(`^sealpost/smtp: ${first}: to=<bob@one\\.test>, .*dsn=4\\.7\\.4, status=deferred \\(TLS is required, but was not offered by host mx\\.one\\.test\\[127\\.0\\.0\\.2\\]\\)$`));
    // qmgr(8): each failure adds 1/window to the failed cohorts; at failed_cohort_limit (1) the
    // destination is dead. Send one message at a time until the queue manager stops connecting.
    let second = '';
    let suspended = '';
    for (let i = 0; i < 8 && suspended === ''; i++) {
      const before = mx!.connections;
      const id = await lab.submit('alice@sender.test', [`u${i}@one.test`]);
      const [line] = await lab.waitLog(new RegExp(`: ${id}: to=<u${i}@one\\.test>, .*status=deferred`));
      if (/delivery temporarily suspended/.test(line!)) {
        suspended = line!;
        second = id;
        assert.equal(mx!.connections, before, 'no new connection to a dead destination');
      }
    }
    assert.match(suspended, /relay=none, .*dsn=4\.7\.4, status=deferred \(delivery temporarily suspended: TLS is required, but was not offered by host mx\.one\.test\[127\.0\.0\.2\]\)$/);
    assert.equal(mx!.messages.length, 0);
    for (let i = 0; i < 100 && !lab.spool.list('deferred').includes(second); i++) await new Promise((r) => setTimeout(r, 25));
    const q = await lab.cli(['mailq']);
    assert.match(q.stdout, /\(delivery temporarily suspended: TLS is required, but was not offered by host mx\.one\.test\[127\.0\.0\.2\]\)/);
    assert.match(q.stdout, /\(TLS is required, but was not offered by host mx\.one\.test\[127\.0\.0\.2\]\)/);
  } finally {
    await lab.cleanup();
    await mx!.close();
  }
});

test('sealpost reload applies an edited policy table to the next attempt', { timeout: 60_000 }, async () => {
  const [mx] = await startReceivers([{ name: 'mx.one.test' }]);
  const dns = await startDnsServer(zone);
  const inst = await makeInstance();
  try {
    const policy = join(inst.configDir, 'tls_policy');
    writeFileSync(policy, 'one.test encrypt\n');
    inst.writeMainCf(
      [
        `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
        `smtp_tcp_port = ${mx!.port}`,
        `smtp_tls_policy_maps = texthash:${policy}`,
        'smtp_tls_security_level = may',
        'minimal_backoff_time = 60s',
        'queue_run_delay = 60s',
      ].join('\n'),
    );
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const d = await inst.startFg();
    const { client } = await SmtpClient.connect(inst.port);
    assert.match(await client.send('alice@sender.test', ['bob@one.test'], 'Subject: reload\r\n\r\nhi\r\n'), /^250 /);
    client.close();
    await d.waitFor(/to=<bob@one\.test>, .*status=deferred \(TLS is required, but was not offered by host mx\.one\.test\[127\.0\.0\.2\]\)/);
    writeFileSync(policy, 'one.test may\n');
    const r = await inst.cli(['reload']);
    assert.equal(r.code, 0, r.stderr);
    await d.waitFor(/reload -- version/);
    const f = await inst.cli(['postqueue', '-f']);
    assert.equal(f.code, 0, f.stderr);
    await d.waitFor(/to=<bob@one\.test>, .*tls=may:none, dsn=2\.0\.0, status=sent/, 15_000);
    assert.equal(mx!.messages.length, 1);
    d.kill('SIGTERM');
    await d.exited;
  } finally {
    inst.cleanup();
    await dns.close();
    await mx!.close();
  }
});

test('a server that requires STARTTLS: may satisfies it; none gets its 530 and bounces, as Postfix', async () => {
  const tmp = tempDir();
  mkdirSync(join(tmp.dir, 'pki'));
  const pki = makePki(join(tmp.dir, 'pki'), ['mx.one.test']);
  const [mx] = await startReceivers([{ name: 'mx.one.test', tls: { key: pki.server.key, cert: pki.server.cert }, requireStarttls: true }]);
  const lab = await qmgrLab({
    zone: { ...zone, 'none.test': { MX: [[10, 'mx.one.test']] } },
    receiverPort: mx!.port,
    mainCf: ['smtp_tls_security_level = may', 'smtp_tls_policy_maps = inline:{ {none.test = none} }'],
  });
  try {
    await lab.start();
    const a = await lab.submit('alice@sender.test', ['bob@one.test']);
    const b = await lab.submit('alice@sender.test', ['carol@none.test']);
    const [sent] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${a}: to=<bob@one\\.test>, `));
    assert.match(sent!, /tls=may, dsn=2\.0\.0, status=sent/);
    const [bounced] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${b}: to=<carol@none\\.test>, `));
    assert.match(bounced!, /tls=none, dsn=5\.7\.0, status=bounced \(host mx\.one\.test\[127\.0\.0\.2\] said: 530 5\.7\.0 .*\(in reply to MAIL FROM command\)\)$/);
    assert.equal(mx!.messages.length, 1);
    assert.equal(mx!.messages[0]!.tls, true);
  } finally {
    await lab.cleanup();
    await mx!.close();
    tmp.cleanup();
  }
});

test('obsolete smtp_enforce_tls = yes (with smtp_tls_security_level empty) still enforces TLS, with a deprecation warning', async () => {
  const [mx] = await startReceivers([{ name: 'mx.one.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['smtp_tls_security_level =', 'smtp_enforce_tls = yes', 'minimal_backoff_time = 60s', 'queue_run_delay = 60s'] });
  try {
    await lab.start();
    assert.ok(lab.lines(/warning: .*support for parameter "smtp_enforce_tls" will be removed; instead, specify "smtp_tls_security_level = encrypt"/).length >= 1, lab.log());
    const id = await lab.submit('alice@sender.test', ['bob@one.test']);
    const [line] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<bob@one\\.test>, `));
    assert.match(line!, /dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered by host mx\.one\.test\[127\.0\.0\.2\]\)$/);
    assert.equal(mx!.messages.length, 0, 'never in the clear');
  } finally {
    await lab.cleanup();
    await mx!.close();
  }
});
