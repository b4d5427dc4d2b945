/**
 * requiretls-delivery — REQUIRETLS end to end through the real daemon
 * (RFC 8689, Postfix 3.11): messages submitted with `MAIL FROM:<...>
 * REQUIRETLS` inside TLS (and one with `TLS-Required: No`) go through the
 * queue manager and the SMTP client to loopback receivers:
 * - verified certificate and REQUIRETLS offered → sent, and the receiver saw
 *   `MAIL FROM:<...> REQUIRETLS`;
 * - REQUIRETLS not offered → bounced 5.7.30; certificate not verified →
 *   bounced 5.7.10; each notice redacted: the original's header only
 *   (text/rfc822-headers, no body), and the notice itself travels without
 *   REQUIRETLS;
 * - `TLS-Required: No` (without REQUIRETLS) → delivered opportunistically to
 *   the server with the wrong certificate;
 * - REQUIRETLS in plaintext is refused (555 5.5.4), as RFC 8689 §4 has it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const mx = (host: string): Array<[number, string]> => [[10, host]];

/** One message over STARTTLS; `requireTls` adds the MAIL FROM parameter. Returns the queue ID. */
async function submit(port: number, from: string, to: string, body: string, requireTls: boolean): Promise<string> {
  const c = await RawSmtp.open(port);
  try {
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('STARTTLS'), '220 2.0.0 Ready to start TLS');
    await c.startTls();
    assert.match(await c.cmd('EHLO client.example'), /REQUIRETLS/);
    assert.equal(await c.cmd(`MAIL FROM:<${from}>${requireTls ? ' REQUIRETLS' : ''}`), '250 2.1.0 Ok');
    assert.match(await c.cmd(`RCPT TO:<${to}>`), /^250 /);
    assert.match(await c.cmd('DATA'), /^354 /);
    const reply = await c.cmd(`${body}\r\n.`);
    const m = /queued as ([0-9A-Za-z]+)/.exec(reply);
    assert.ok(m, reply);
    return m[1]!;
  } finally {
    c.end();
  }
}

test('REQUIRETLS through the daemon: sent with REQUIRETLS; 5.7.30 and 5.7.10 bounced with redacted notices; TLS-Required: No delivered; plaintext REQUIRETLS refused', { timeout: 90_000 }, async () => {
  const t = tempDir('sealpost-reqtls-daemon-');
  const pki = makePki(t.dir, ['mx.ok.example', 'mx.noadv.example', 'localhost']);
  const good = { key: pki.server.key, cert: pki.server.cert };
  const rx = await startReceivers([
    { host: '127.0.0.2', name: 'mx.ok.example', tls: good, requireTls: true },
    { host: '127.0.0.3', name: 'mx.noadv.example', tls: good },
    { host: '127.0.0.4', name: 'mx.wrong.example', tls: { key: pki.wrongName.key, cert: pki.wrongName.cert }, requireTls: true },
    { host: '127.0.0.5', name: 'mx.sender.example' },
  ]);
  const [ok, noadv, wrong, notices] = rx as [typeof rx[0], typeof rx[0], typeof rx[0], typeof rx[0]];
  const lab = await qmgrLab({
    receiverPort: ok.port,
    zone: {
      'ok.example': { MX: mx('mx.ok.example') }, 'mx.ok.example': { A: ['127.0.0.2'] },
      'noadv.example': { MX: mx('mx.noadv.example') }, 'mx.noadv.example': { A: ['127.0.0.3'] },
      'wrong.example': { MX: mx('mx.wrong.example') }, 'mx.wrong.example': { A: ['127.0.0.4'] },
      'sender.example': { MX: mx('mx.sender.example') }, 'mx.sender.example': { A: ['127.0.0.5'] },
    },
    mainCf: [
      'smtpd_tls_security_level = may',
      `smtpd_tls_chain_files = ${pki.server.chain}`,
      'smtp_tls_security_level = may',
      `smtp_tls_CAfile = ${pki.caCert}`,
      'smtp_tls_policy_maps = inline:{ {ok.example = secure}, {noadv.example = secure}, {wrong.example = secure} }',
    ],
  });
  try {
    await lab.start();
    // RFC 8689 §4: no REQUIRETLS outside TLS.
    const plain = await RawSmtp.open(lab.port);
    await plain.reply();
    assert.doesNotMatch(await plain.cmd('EHLO client.example'), /REQUIRETLS/);
    assert.equal(await plain.cmd('MAIL FROM:<alice@sender.example> REQUIRETLS'), '555 5.5.4 Unsupported option: REQUIRETLS');
    plain.end();

    const secret = 'Subject: for your eyes only\r\n\r\nsecret body text\r\n';
    const sent = await submit(lab.port, 'alice@sender.example', 'a@ok.example', secret, true);
    const noOffer = await submit(lab.port, 'alice@sender.example', 'b@noadv.example', secret, true);
    const badCert = await submit(lab.port, 'alice@sender.example', 'c@wrong.example', secret, true);
    const optOut = await submit(lab.port, 'bob@sender.example', 'd@wrong.example', 'Subject: deliver anyway\r\nTLS-Required: No\r\n\r\nhello\r\n', false);

    const [s] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${sent}: to=<a@ok\\.example>, `));
    assert.match(s!, /, tls=secure\/requiretls, dsn=2\.0\.0, status=sent \(250 /);
    await ok.waitForMessages(1, 15_000);
    assert.equal(ok.messages[0]!.mailFrom, 'alice@sender.example');
    assert.match(ok.messages[0]!.mailParams, /(^| )REQUIRETLS( |$)/, 'the receiver saw MAIL FROM:<...> REQUIRETLS');
    assert.equal(ok.messages[0]!.tls, true);

    const [n] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${noOffer}: to=<b@noadv\\.example>, `));
    assert.match(n!, /, tls=secure\/!requiretls:none, dsn=5\.7\.30, status=bounced \(Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS\. The last attempted server was mx\.noadv\.example\[127\.0\.0\.3\]\)$/);
    const [b] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${badCert}: to=<c@wrong\\.example>, `));
    assert.match(b!, /, tls=!secure\/!requiretls:nocertmatch, dsn=5\.7\.10, status=bounced \(Sender requested REQUIRETLS, but no trusted server certificate was found\. The last attempted server was mx\.wrong\.example\[127\.0\.0\.4\]\)$/);
    const [o] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${optOut}: to=<d@wrong\\.example>, `));
    assert.match(o!, /, tls=may, dsn=2\.0\.0, status=sent /);
    assert.equal(noadv.messages.length, 0);
    assert.deepEqual(wrong.messages.map((m) => m.rcptTo[0]), ['d@wrong.example']);

    // Two non-delivery notices, both redacted (requiretls_redact_dsn = yes).
    await notices.waitForMessages(2, 20_000);
    assert.equal(notices.messages.length, 2);
    for (const m of notices.messages) {
      assert.equal(m.mailFrom, '');
      assert.deepEqual(m.rcptTo, ['alice@sender.example']);
      assert.doesNotMatch(m.mailParams, /REQUIRETLS/, 'the notice travels without REQUIRETLS');
      const text = m.data.toString('utf8');
      const head = text.slice(0, text.indexOf('\r\n\r\n'));
      assert.doesNotMatch(head, /^Require-TLS-ESMTP:/im, 'the notice itself does not ask for REQUIRETLS');
      assert.match(text, /Content-Type: text\/rfc822-headers/);
      assert.doesNotMatch(text, /message\/rfc822/);
      assert.match(text, /Subject: for your eyes only/);
      assert.doesNotMatch(text, /secret body text/, 'headers only');
    }
    const unfold = (m: typeof notices.messages[0]) => m.data.toString('utf8').replace(/\r\n[ \t]+/g, ' ');
    const diags = notices.messages.map((m) => /\r\nDiagnostic-Code: X-sealpost; ([^\r]+)/.exec(unfold(m))?.[1]).sort();
    assert.deepEqual(diags, [
      'Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS. The last attempted server was mx.noadv.example[127.0.0.3]',
      'Sender requested REQUIRETLS, but no trusted server certificate was found. The last attempted server was mx.wrong.example[127.0.0.4]',
    ]);
    assert.deepEqual(notices.messages.map((m) => /\r\nStatus: (\S+)/.exec(unfold(m))?.[1]).sort(), ['5.7.10', '5.7.30']);
    assert.deepEqual(notices.messages.map((m) => /\r\nRemote-MTA: ([^\r]+)/.exec(unfold(m))?.[1]).sort(), ['dns; mx.noadv.example', 'dns; mx.wrong.example']);
  } finally {
    await lab.cleanup();
    await Promise.all(rx.map((r) => r.close()));
    t.cleanup();
  }
});

