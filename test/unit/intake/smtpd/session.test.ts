/**
 * session.test.ts — one smtpd session driven over an injected socket pair
 * (server.ts serveSession; no listener): a whole transaction queued with its
 * log lines, a client reset in the middle of DATA (nothing queued, Postfix's
 * lost-connection line), and the EHLO reply built by smtp/ehlo.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../../../src/config/load.ts';
import { serveSession } from '../../../../src/intake/smtpd/server.ts';
import { createSpool } from '../../../../src/queue/spool.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { tempDir } from '../../../harness/cli.ts';
import { ScriptedPeer, socketPair } from '../../../harness/socket-pair.ts';

async function lab() {
  const t = tempDir('sealpost-smtpd-session-');
  writeFileSync(join(t.dir, 'main.cf'), '');
  const config = loadConfig({ configDir: t.dir, overrides: { myhostname: 'mx.test.example', smtpd_error_sleep_time: '0', smtpd_peername_lookup: 'no', queue_directory: join(t.dir, 'queue') } });
  const spool = await createSpool(join(t.dir, 'queue'), { fsync: false });
  const log = memoryMailLog();
  const queued: string[] = [];
  const [near, far] = await socketPair();
  const done = serveSession(near, { config, spool, log, serviceName: 'smtp', onQueued: (id) => queued.push(id) });
  return { client: new ScriptedPeer(far), spool, log, queued, done, cleanup: t.cleanup };
}

/** The next reply, all its lines. */
async function reply(c: ScriptedPeer): Promise<string[]> {
  const lines: string[] = [];
  for (;;) {
    const l = await c.line();
    if (l === undefined) return lines;
    lines.push(l);
    if (l[3] !== '-') return lines;
  }
}

test('a whole transaction over an injected socket: queued, logged, the EHLO reply as smtp/ehlo.ts formats it', async () => {
  const l = await lab();
  try {
    assert.match((await reply(l.client))[0]!, /^220 mx\.test\.example ESMTP/);
    l.client.send('EHLO client.example');
    const ehlo = await reply(l.client);
    assert.equal(ehlo[0], '250-mx.test.example');
    assert.equal(ehlo[1], '250-PIPELINING');
    assert.match(ehlo.at(-1)!, /^250 /);
    l.client.send('MAIL FROM:<a@example.org>');
    assert.match((await reply(l.client))[0]!, /^250 2\.1\.0/);
    l.client.send('RCPT TO:<postmaster>');
    assert.match((await reply(l.client))[0]!, /^250 2\.1\.5/);
    l.client.send('DATA');
    assert.match((await reply(l.client))[0]!, /^354 /);
    l.client.socket.write('Subject: t\r\n\r\nhello\r\n.\r\n');
    assert.match((await reply(l.client))[0]!, /^250 2\.0\.0 Ok: queued as [0-9A-F]+/);
    l.client.send('QUIT');
    assert.match((await reply(l.client))[0]!, /^221 /);
    await l.done;
    assert.equal(l.queued.length, 1);
    assert.deepEqual(l.spool.list('incoming'), l.queued);
    assert.ok(l.log.lines.some((x) => x.endsWith(`${l.queued[0]}: client=unknown[127.0.0.1]`)), l.log.lines.join('\n'));
    assert.ok(l.log.lines.some((x) => x.endsWith('disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5')), l.log.lines.join('\n'));
  } finally {
    l.client.socket.destroy();
    l.cleanup();
  }
});

test('a client reset in the middle of DATA: nothing queued, "lost connection after DATA (N bytes)"', async () => {
  const l = await lab();
  try {
    await reply(l.client);
    l.client.send('EHLO client.example');
    await reply(l.client);
    l.client.send('MAIL FROM:<a@example.org>');
    await reply(l.client);
    l.client.send('RCPT TO:<postmaster>');
    assert.match((await reply(l.client))[0]!, /^250 /);
    l.client.send('DATA');
    assert.match((await reply(l.client))[0]!, /^354 /);
    l.client.socket.write('Subject: t\r\n\r\npart of a body\r\n');
    await new Promise((r) => setTimeout(r, 50));
    l.client.reset();
    await l.done;
    assert.equal(l.queued.length, 0);
    assert.deepEqual(l.spool.list('incoming'), []);
    assert.ok(l.log.lines.some((x) => /lost connection after DATA \(\d+ bytes\) from unknown\[127\.0\.0\.1\]$/.test(x)), l.log.lines.join('\n'));
    assert.ok(l.log.lines.some((x) => /disconnect from unknown\[127\.0\.0\.1\] ehlo=1 mail=1 rcpt=1 data=0\/1 commands=3\/4$/.test(x)), l.log.lines.join('\n'));
  } finally {
    l.cleanup();
  }
});
