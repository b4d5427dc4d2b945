/**
 * Mail loops stopped through the running daemon (issue 9, "Loops"), each within one hop —
 * the message never comes back in through our own smtpd, long before hopcount_limit:
 * - `someone@[127.0.0.1]` (the quick-start case that looped 1,639 times): an address
 *   literal of this machine is a local destination (resolve_local.c), and sealpost has no
 *   local delivery: the recipient bounces `5.1.1` naming the fix, and the sender gets it;
 * - a relayhost that is our own listener, on another port and on port 25:
 *   `mail for 127.0.0.1 loops back to myself` (smtp_addr.c), which for a relayhost is a
 *   configuration problem: deferred `4.3.5` with `warning: relayhost configuration problem`;
 * - a relayhost that reaches us through a TCP forwarder (an address we cannot recognise):
 *   the EHLO reply names our myhostname (`replied to HELO/EHLO with my own hostname`) and
 *   the session fails before MAIL FROM with `5.4.6 mail for [...] loops back to myself` —
 *   a bounce, as Postfix's smtp_site_fail() bounces a hard error at once (the 4.3.5
 *   relayhost rule covers only recipients no server decided); the notice loops the same
 *   way and, from the null sender, is not returned again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';

const zone = { 'sender.test': { MX: [[10, 'mx.sender.test']] as Array<[number, string]> }, 'mx.sender.test': { A: ['127.0.0.3'] } };

function listenPort(lab: QmgrLab): number {
  return Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);
}

/** Connections our smtpd accepted so far. */
function connects(lab: QmgrLab): number {
  return lab.lines(/^sealpost\/smtpd: connect from /).length;
}

test('someone@[127.0.0.1] is local: bounced 5.1.1 with the fix named, never relayed to ourselves', { timeout: 60_000 }, async () => {
  const [home] = await startReceivers([{ host: '127.0.0.3', name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: home!.port, mainCf: ['inet_interfaces = all'] });
  try {
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['someone@[127.0.0.1]']);
    const [line] = await lab.waitLog(new RegExp(`${id}: to=<someone@\\[127\\.0\\.0\\.1\\]>, relay=none, .*dsn=5\\.1\\.1, status=bounced \\(unknown user: "someone" \\(sealpost has no local delivery: route this domain with transport_maps, or take it out of mydestination\\)\\)`));
    assert.ok(line);
    await home!.waitForMessages(1, 15_000);
    assert.deepEqual(home!.messages[0]!.rcptTo, ['alice@sender.test']);
    assert.match(home!.messages[0]!.data.toString(), /Final-Recipient: rfc822; someone@\[127\.0\.0\.1\]/);
    assert.equal(connects(lab), 1);
  } finally {
    await lab.cleanup();
    await home!.close();
  }
});

async function relayLoop(relayhost: (lab: QmgrLab) => string, reason: RegExp, extraMaster = '', before?: (lab: QmgrLab) => Promise<void>): Promise<QmgrLab> {
  const [home] = await startReceivers([{ host: '127.0.0.3', name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: home!.port });
  await home!.close();
  try {
    await before?.(lab);
    if (extraMaster) writeFileSync(join(lab.configDir, 'master.cf'), `${readFileSync(join(lab.configDir, 'master.cf'), 'utf8')}${extraMaster}\n`);
    writeFileSync(join(lab.configDir, 'main.cf'), `${readFileSync(join(lab.configDir, 'main.cf'), 'utf8')}relayhost = ${relayhost(lab)}\n`);
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@far.test']);
    const [line] = await lab.waitLog(new RegExp(`${id}: to=<bob@far\\.test>, relay=.*, dsn=4\\.3\\.5, status=deferred \\(${reason.source}\\)`));
    assert.ok(line);
    assert.ok(lab.lines(/warning: relayhost configuration problem/).length >= 1, lab.log());
    // The reason reaches mailq once the message has left the active queue.
    let q = await lab.cli(['mailq']);
    for (let i = 0; i < 50 && !reason.test(q.stdout); i++) {
      await new Promise((r) => setTimeout(r, 100));
      q = await lab.cli(['mailq']);
    }
    assert.match(q.stdout, new RegExp(reason.source));
    // Nothing came back in: no second queue ID, nothing delivered.
    assert.equal(lab.lines(/^sealpost\/qmgr: \w+: from=/).length, 1, lab.log());
    assert.equal(lab.lines(/status=sent/).length, 0);
    return lab;
  } catch (err) {
    await lab.cleanup();
    throw err;
  }
}

test('a relayhost that is our own listener on another port: deferred 4.3.5, loops back to myself', { timeout: 60_000 }, async () => {
  const lab = await relayLoop((l) => `[127.0.0.1]:${listenPort(l)}`, /mail for 127\.0\.0\.1 loops back to myself/);
  try {
    assert.equal(connects(lab), 1);
  } finally {
    await lab.cleanup();
  }
});

/** A 127.x.y.z address whose port 25 is free (tests run as root). */
async function freePort25(): Promise<string> {
  for (let i = 0; i < 50; i++) {
    const host = `127.${25 + Math.floor(Math.random() * 200)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(25, host, () => s.close(() => resolve(true)));
    });
    if (ok) return host;
  }
  throw new Error('no 127.x.y.z address with a free port 25');
}

test('a relayhost that is our own listener on port 25: deferred 4.3.5, loops back to myself', { timeout: 60_000 }, async () => {
  const host = await freePort25();
  const lab = await relayLoop(() => `[${host}]:25`, new RegExp(`mail for ${host.replaceAll('.', '\\.')} loops back to myself`), `${host}:25 inet n - n - - smtpd`);
  try {
    assert.equal(connects(lab), 1);
  } finally {
    await lab.cleanup();
  }
});

/** A TCP forwarder on 127.0.0.4:PORT to 127.0.0.1:PORT (our own smtpd). */
async function forwarder(port: number): Promise<Server> {
  const server = createServer((inbound) => {
    const out = connect(port, '127.0.0.1');
    inbound.pipe(out).pipe(inbound);
    inbound.on('error', () => out.destroy());
    out.on('error', () => inbound.destroy());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.4', () => resolve()));
  return server;
}

test('a relayhost that reaches us through a forwarder: the EHLO reply names myhostname, 5.4.6 before MAIL FROM', { timeout: 60_000 }, async () => {
  const [home] = await startReceivers([{ host: '127.0.0.3', name: 'mx.sender.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: home!.port });
  await home!.close();
  let fwd: Server | undefined;
  try {
    const port = listenPort(lab);
    fwd = await forwarder(port);
    writeFileSync(join(lab.configDir, 'main.cf'), `${readFileSync(join(lab.configDir, 'main.cf'), 'utf8')}relayhost = [127.0.0.4]:${port}\n`);
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@far.test']);
    const reason = `mail for \\[127\\.0\\.0\\.4\\]:${port} loops back to myself`;
    await lab.waitLog(new RegExp(`${id}: to=<bob@far\\.test>, relay=127\\.0\\.0\\.4\\[127\\.0\\.0\\.4\\]:${port}, .*dsn=5\\.4\\.6, status=bounced \\(${reason}\\)`));
    await lab.waitLog(new RegExp(`to=<alice@sender\\.test>, .*dsn=5\\.4\\.6, status=bounced \\(${reason}\\)`));
    assert.ok(lab.lines(new RegExp(`warning: host 127\\.0\\.0\\.4\\[127\\.0\\.0\\.4\\]:${port} replied to HELO/EHLO with my own hostname mx\\.sealpost\\.test`)).length >= 1, lab.log());
    assert.ok(lab.lines(new RegExp(`warning: host 127\\.0\\.0\\.4\\[127\\.0\\.0\\.4\\]:${port} greeted me with my own hostname mx\\.sealpost\\.test`)).length >= 1, lab.log());
    // The looping sessions ended after EHLO: no MAIL FROM came back in, nothing was queued twice.
    assert.equal(lab.lines(/^sealpost\/smtpd: disconnect from .* mail=/).length, 1, lab.log());
    assert.equal(lab.lines(/^sealpost\/qmgr: \w+: from=<alice@sender\.test>/).length, 1, lab.log());
  } finally {
    await lab.cleanup();
    await new Promise((r) => fwd?.close(r));
  }
});
