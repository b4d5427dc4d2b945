/**
 * MIME output conversion through the running daemon, beside Debian's Postfix: the same 8-bit
 * multipart message (BODY=8BITMIME) is relayed by sealpost and by a throw-away Postfix 3.7
 * to a receiver that offers neither 8BITMIME nor SMTPUTF8. Both arrive with the same MAIL
 * FROM parameters (no BODY=, no SIZE=) and, below each MTA's own Received: field, the same
 * bytes; every declared-8bit part is valid quoted-printable that decodes to the original
 * bytes. With disable_mime_output_conversion = yes the content goes out as it is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startPostfixPeer } from '../harness/postfix-daemon.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { startReceivers, type Receiver } from '../harness/smtp-receiver.ts';
import { dotStuff } from '../../src/smtp/dot-stuff.ts';
import { freePort } from '../unit/daemon/fixtures/instance.ts';
import { qmgrLab } from './qmgr-lab.ts';

const TEXT = 'Grüße aus Köln — café, naïve, “quotes” = equals, tab\t';

function message(): Buffer {
  return Buffer.from([
    'From: alice@sender.test',
    'To: carol@seven.test',
    'Date: Fri, 04 Dec 2026 10:00:00 +0000',
    'Message-ID: <mime-daemon@sender.test>',
    'Subject: 8-bit multipart',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b1"',
    '',
    'prologue',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    TEXT,
    `${'Ünïcödé '.repeat(30)}end`,
    '.a line that starts with a dot',
    'trailing space ',
    '',
    '--b1',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    `<p>${TEXT}</p>`,
    '--b1--',
    '',
  ].join('\r\n'), 'utf8');
}

/** Submit over SMTP with BODY=8BITMIME. */
async function submit(port: number, rcpt: string, content: Buffer): Promise<void> {
  const c = await RawSmtp.open(port);
  await c.reply();
  await c.cmd('EHLO client.test');
  assert.match(await c.cmd('MAIL FROM:<alice@sender.test> BODY=8BITMIME'), /^250 /);
  assert.match(await c.cmd(`RCPT TO:<${rcpt}>`), /^250 /);
  assert.match(await c.cmd('DATA'), /^354 /);
  c.send(dotStuff(content));
  assert.match(await c.reply(), /^250 /);
  await c.cmd('QUIT');
}

/** The content below the leading Received: fields (each MTA writes its own). */
function belowReceived(data: Buffer): string {
  return data.toString('latin1').replace(/^(?:Received:[^\r]*\r\n(?:[ \t][^\r]*\r\n)*)+/, '');
}

/** The body of the part whose headers contain `marker`, quoted-printable decoded. */
function decodedPart(content: string, marker: string): Buffer {
  const at = content.indexOf(marker);
  const start = content.indexOf('\r\n\r\n', at) + 4;
  const end = content.indexOf('\r\n--', start);
  const head = content.slice(content.lastIndexOf('\r\n--', at), start);
  assert.match(head, /Content-Transfer-Encoding: quoted-printable/);
  const body = content.slice(start, end);
  for (const line of body.split('\r\n')) assert.ok(line.length <= 76 && !/[^\x20-\x7e\t]/.test(line), `not valid quoted-printable: ${JSON.stringify(line)}`);
  return Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
}

function originalPart(marker: string): Buffer {
  const text = message().toString('latin1');
  const at = text.indexOf(marker);
  const start = text.indexOf('\r\n\r\n', at) + 4;
  return Buffer.from(text.slice(start, text.indexOf('\r\n--', start)), 'latin1');
}

const zone = { 'seven.test': { MX: [[10, 'mx.seven.test']] as Array<[number, string]> }, 'mx.seven.test': { A: ['127.0.0.3'] } };

async function relayThroughSealpost(seven: Receiver, mainCf: string[] = []): Promise<void> {
  const lab = await qmgrLab({ zone, receiverPort: seven.port, mainCf });
  try {
    await lab.start();
    const port = Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);
    await submit(port, 'carol@seven.test', message());
    await lab.waitLog(/to=<carol@seven\.test>.*status=sent/);
  } finally {
    await lab.cleanup();
  }
}

test('8-bit multipart to a server without 8BITMIME: quoted-printable that decodes to the original, as Debian Postfix sends it', { timeout: 90_000 }, async () => {
  const [seven] = await startReceivers([{ host: '127.0.0.3', eightBitMime: false, smtputf8: false }]);
  const port = await freePort();
  const peer = await startPostfixPeer('127.0.0.1', port, [
    `transport_maps = inline:{ seven.test=smtp:[127.0.0.3]:${seven!.port} }`,
    'relay_domains = seven.test',
    'smtp_tls_security_level = none',
    'mynetworks = 127.0.0.0/8',
  ]);
  try {
    await submit(port, 'carol@seven.test', message());
    await peer.waitLog(/to=<carol@seven\.test>.*status=sent/);
    await relayThroughSealpost(seven!);
    await seven!.waitForMessages(2, 15_000);
    const [byPostfix, bySealpost] = [seven!.messages[0]!, seven!.messages[1]!];
    assert.equal(bySealpost.mailParams, byPostfix.mailParams);
    assert.doesNotMatch(bySealpost.mailParams, /BODY=|SIZE=/);
    assert.equal(belowReceived(bySealpost.data), belowReceived(byPostfix.data));
    const got = belowReceived(bySealpost.data);
    for (const marker of ['text/plain; charset=utf-8', 'text/html']) assert.deepEqual(decodedPart(got, marker), originalPart(marker), marker);
  } finally {
    peer.stop();
    await seven!.close();
  }
});

test('disable_mime_output_conversion = yes: the 8-bit content goes out as it is', { timeout: 60_000 }, async () => {
  const [seven] = await startReceivers([{ host: '127.0.0.3', eightBitMime: false, smtputf8: false }]);
  try {
    await relayThroughSealpost(seven!, ['disable_mime_output_conversion = yes']);
    await seven!.waitForMessages(1, 15_000);
    assert.ok(belowReceived(seven!.messages[0]!.data) === message().toString('latin1'));
  } finally {
    await seven!.close();
  }
});
