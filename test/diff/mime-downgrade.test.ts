/**
 * MIME output conversion against Debian's Postfix: one 8-bit multipart message relayed by a
 * real Postfix to two receivers from the same queue file — one offers 8BITMIME (Postfix
 * sends the content as it is), one does not (Postfix converts it: MIME_OPT_DOWNGRADE).
 * sealpost's mime-convert.ts applied to the first must give the second byte for byte, and
 * every converted part must decode to the original bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downgradeMime } from '../../src/message/mime-convert.ts';
import { dotStuff } from '../../src/smtp/dot-stuff.ts';
import { startPostfixPeer } from '../harness/postfix-daemon.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { freePort } from '../unit/daemon/fixtures/instance.ts';

const PEER = '127.0.0.1';

/** An 8-bit message with the shapes the conversion rules distinguish. */
function message(): Buffer {
  const utf8 = 'Grüße aus Köln, café, naïve — “quotes” = equals\t';
  const long = `${'Ünïcödé '.repeat(40)}end`;
  return Buffer.from(
    [
      'From: alice@sender.test',
      'To: bob@eight.test, carol@seven.test',
      'Subject: 8-bit multipart',
      'Message-ID: <mime-diff@sender.test>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="outer-b"',
      'Content-Transfer-Encoding: 8bit',
      '',
      'This is a multi-part message with 8-bit prologue bytes: ü',
      '--outer-b',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      utf8,
      long,
      'trailing space ',
      '.leading dot line',
      'From the start of a line',
      '',
      '--outer-b',
      'Content-Type: multipart/alternative;',
      '\tboundary="inner-b"',
      '',
      '--inner-b',
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      `<p>${utf8}</p>`,
      '--inner-b',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'already =E9ncoded',
      '--inner-b--',
      '--outer-b',
      'Content-Type: message/rfc822',
      'Content-Transfer-Encoding: 8bit',
      '',
      'Subject: nested',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      `nested ${utf8}`,
      '--outer-b',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'undeclared 8-bit part: ö (Postfix leaves it alone)',
      '--outer-b--',
      'epilogue',
      '',
    ].join('\r\n'),
    'utf8',
  );
}

/** The body of the part whose headers contain `marker`, quoted-printable decoded when declared. */
function partBody(content: Buffer, marker: string): Buffer {
  const text = content.toString('latin1');
  const at = text.indexOf(marker);
  const start = text.indexOf('\r\n\r\n', at) + 4;
  const end = text.indexOf('\r\n--', start);
  const head = text.slice(text.lastIndexOf('\r\n--', at), start);
  const body = text.slice(start, end);
  if (!/Content-Transfer-Encoding: quoted-printable/i.test(head)) return Buffer.from(body, 'latin1');
  return Buffer.from(body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
}

test("8-bit multipart to a server without 8BITMIME: sealpost's conversion equals Debian Postfix's, and decodes to the original", { timeout: 60_000 }, async () => {
  const [eight, seven] = await startReceivers([
    { host: '127.0.0.2', eightBitMime: true },
    { host: '127.0.0.3', eightBitMime: false, smtputf8: false }, // SMTPUTF8 alone makes Postfix assume 8BITMIME (smtp_proto.c)
  ]);
  const port = await freePort();
  const peer = await startPostfixPeer(PEER, port, [
    `transport_maps = inline:{ eight.test=smtp:[127.0.0.2]:${eight!.port}, seven.test=smtp:[127.0.0.3]:${seven!.port} }`,
    'relay_domains = eight.test, seven.test',
    'smtp_tls_security_level = none',
    'mynetworks = 127.0.0.0/8',
  ]);
  try {
    const original = message();
    const c = await RawSmtp.open(port);
    await c.reply();
    await c.cmd('EHLO client.test');
    assert.match(await c.cmd('MAIL FROM:<alice@sender.test> BODY=8BITMIME'), /^250 /);
    assert.match(await c.cmd('RCPT TO:<bob@eight.test>'), /^250 /);
    assert.match(await c.cmd('RCPT TO:<carol@seven.test>'), /^250 /);
    assert.match(await c.cmd('DATA'), /^354 /);
    c.send(dotStuff(original));
    assert.match(await c.reply(), /^250 /);
    await c.cmd('QUIT');
    await peer.waitLog(/to=<bob@eight\.test>.*status=sent/);
    await peer.waitLog(/to=<carol@seven\.test>.*status=sent/);
    const as8 = eight!.messages[0]!;
    const as7 = seven!.messages[0]!;
    assert.match(as8.mailParams, /BODY=8BITMIME/);
    assert.doesNotMatch(as7.mailParams, /BODY=/);
    // Postfix's own conversion, byte for byte.
    assert.equal(downgradeMime(as8.data).toString('latin1'), as7.data.toString('latin1'));
    // Each declared-8bit part decodes to the original bytes.
    for (const marker of ['charset=utf-8\r\nContent-Transfer-Encoding', 'text/html', 'Subject: nested']) {
      assert.deepEqual(partBody(downgradeMime(as8.data), marker), partBody(original, marker), marker);
    }
    // Only what no header declares 8-bit keeps its 8-bit bytes, as Postfix leaves it.
    const latin1 = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
    const still8bit = downgradeMime(as8.data).toString('latin1').split('\r\n').filter((l) => /[\x80-\xff]/.test(l));
    assert.deepEqual(still8bit, [latin1('This is a multi-part message with 8-bit prologue bytes: ü'), latin1('undeclared 8-bit part: ö (Postfix leaves it alone)')]);
  } finally {
    peer.stop();
    await Promise.all([eight!.close(), seven!.close()]);
  }
});
