/**
 * daemon-privileges — issue 9 item 2 through the real daemon, started as
 * root: after start every thread of the master runs as mail_owner (all of
 * /proc/PID/task/* /status Uid/Gid/Groups), every process of the mail system
 * that holds a TCP or UDP socket runs as mail_owner, and the mail still
 * flows: a root-only smtpd key and SASL password file (read as root at start,
 * re-read through the root helper on reload and at each AUTH), a message
 * relayed over TLS (the TLS session cache file in data_directory), a bounce
 * written and delivered, queue files owned by mail_owner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makePki } from '../harness/pki.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { startReceiver } from '../harness/smtp-receiver.ts';
import { processCredentials, lookupUser } from '../../src/daemon/privileges.ts';
import { MESSAGE_QUEUES } from '../../src/queue/spool.ts';
import { makeInstance, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

/** Inodes of this network namespace's TCP and UDP sockets. */
function inetSocketInodes(): Set<string> {
  const out = new Set<string>();
  for (const f of ['tcp', 'tcp6', 'udp', 'udp6']) {
    let text = '';
    try {
      text = readFileSync(`/proc/net/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode && inode !== '0') out.add(inode);
    }
  }
  return out;
}

/** `pid` and all its descendants. */
function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(p)]);
    } catch {
      // Gone meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

function socketInodesOf(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(m[1]!);
    } catch {
      // Closed meanwhile.
    }
  }
  return out;
}

async function tlsSession(port: number): Promise<{ c: RawSmtp; subject: string }> {
  const c = await RawSmtp.open(port);
  await c.reply();
  await c.cmd('EHLO client.example');
  assert.match(await c.cmd('STARTTLS'), /^220 /);
  const tls = await c.startTls();
  const subject = String(tls.getPeerCertificate().subject?.CN);
  await c.cmd('EHLO client.example');
  return { c, subject };
}

async function auth(port: number, user: string, password: string): Promise<string> {
  const { c } = await tlsSession(port);
  const reply = await c.cmd(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`);
  c.end();
  return reply;
}

test('as root: mail_owner after binding, no network socket with root, and mail still flows', async () => {
  assert.equal(process.geteuid?.(), 0, 'this test starts the daemon as root (the test suite runs as root)');
  const inst = await makeInstance();
  const secret = join(inst.dir, 'secret');
  mkdirSync(secret, { mode: 0o700 });
  const pki = makePki(secret);
  for (const f of readdirSync(secret)) chmodSync(join(secret, f), 0o600);
  const key = join(secret, 'smtpd.key');
  const cert = join(secret, 'smtpd.crt');
  copyFileSync(pki.server.key, key);
  copyFileSync(pki.server.cert, cert);
  // TLS 1.2: the session is cached at the handshake (a TLS 1.3 ticket comes whenever the server sends it).
  const receiver = await startReceiver({ tls: { key: pki.server.key, cert: pki.server.cert }, maxTlsVersion: 'TLSv1.2', replies: { rcpt: (arg) => (arg.includes('bounce-me') ? '550 5.1.1 no such user' : undefined) } });
  const owner = lookupUser('sealpost')!;
  try {
    inst.writeMainCf(
      [
        'smtpd_tls_security_level = may',
        `smtpd_tls_cert_file = ${cert}`,
        `smtpd_tls_key_file = ${key}`,
        'smtpd_sasl_auth_enable = yes',
        `sealpost_sasl_password_file = ${join(secret, 'sasl_passwd')}`,
        `relayhost = [${receiver.host}]:${receiver.port}`,
        'smtp_tls_security_level = may',
        'smtp_tls_session_cache_database = btree:$data_directory/smtp_scache',
      ].join('\n'),
    );
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const add = await inst.cli(['saslpasswd', 'add', 'alice'], { stdin: 'first-secret\n' });
    assert.equal(add.code, 0, add.stderr);
    chmodSync(join(secret, 'sasl_passwd'), 0o600);

    const d = await inst.startFg();
    // Every thread of the master: real, effective, saved and file-system IDs, and the group list.
    const tasks = processCredentials(d.pid);
    assert.ok(tasks.length > 1, 'the master has worker threads');
    for (const t of tasks) {
      assert.deepEqual([...new Set(t.uids)], [owner.uid], `thread ${t.tid} uid`);
      assert.deepEqual([...new Set(t.gids)], [owner.gid], `thread ${t.tid} gid`);
      assert.deepEqual(t.groups, [owner.gid], `thread ${t.tid} groups`);
    }

    // Mail: AUTH against the root-only password file, a relayed message over TLS, a bounce.
    assert.match(await auth(inst.port, 'alice', 'first-secret'), /^235 /);
    const { client } = await SmtpClient.connect(inst.port);
    assert.match(await client.send('sender@example.org', ['ok@remote.test'], 'Subject: one\r\n\r\nhello'), /^250 /);
    assert.match(await client.send('sender@example.org', ['bounce-me@remote.test'], 'Subject: two\r\n\r\nhello'), /^250 /);
    client.close();
    await receiver.waitForMessages(2, 20_000);
    assert.equal(receiver.messages[0]!.rcptTo[0], 'ok@remote.test');
    assert.ok(receiver.messages[0]!.tls, 'relayed over TLS');
    assert.equal(receiver.messages[1]!.mailFrom, '', 'the bounce, from the null sender');
    assert.deepEqual(receiver.messages[1]!.rcptTo, ['sender@example.org']);

    // While the daemon runs: who holds network sockets (the master, its threads, any child).
    const inet = inetSocketInodes();
    const tree = processTree(d.pid);
    let holders = 0;
    for (const pid of tree) {
      if (!socketInodesOf(pid).some((i) => inet.has(i))) continue;
      holders++;
      for (const t of processCredentials(pid)) assert.deepEqual([...new Set(t.uids)], [owner.uid], `process ${pid} holds a network socket`);
    }
    assert.ok(holders >= 1, 'the listener is held by the master');

    // A new password: AUTH reads the root-only file through the root helper.
    assert.equal((await inst.cli(['saslpasswd', 'add', 'bob'], { stdin: 'second-secret\n' })).code, 0);
    assert.match(await auth(inst.port, 'bob', 'second-secret'), /^235 /);
    assert.match(await auth(inst.port, 'bob', 'wrong'), /^535 /);

    // A renewed certificate (root-only key): reload loads it.
    const before = await tlsSession(inst.port);
    before.c.end();
    assert.equal(before.subject, 'localhost');
    copyFileSync(pki.wrongName.key, key);
    copyFileSync(pki.wrongName.cert, cert);
    const from = d.log.length;
    assert.equal((await inst.cli(['reload'])).code, 0);
    await d.waitFor(/reload -- version/, 10_000, from);
    const renewed = await tlsSession(inst.port);
    renewed.c.end();
    assert.equal(renewed.subject, 'wrong.invalid');
    assert.doesNotMatch(d.log, /warning: .*(EACCES|permission denied)/i);

    for (const q of MESSAGE_QUEUES) assert.deepEqual(readdirSync(join(inst.queueDir, q)), [], `${q}/ is empty: everything was delivered`);
    // What the daemon wrote belongs to mail_owner: the TLS session cache (saved a second after a new session).
    const scache = join(inst.dir, 'data', 'smtp_scache');
    for (let i = 0; i < 100 && !existsSync(scache); i++) await new Promise((r) => setTimeout(r, 100));
    d.kill('SIGTERM');
    assert.equal(await d.exited, 0);
    assert.ok(existsSync(scache), `the TLS session cache file was written:\n${d.log}`);
    assert.equal(statSync(scache).uid, owner.uid, 'the TLS session cache');
  } finally {
    await receiver.close();
    inst.cleanup();
  }
});
