/**
 * requiretls-intake — REQUIRETLS on the way in, as Postfix 3.11 takes it:
 * refused in plaintext (RFC 8689 §4: the keyword exists only inside TLS, so
 * the parameter is unknown: 555 5.5.4), accepted after STARTTLS and kept in
 * the queue file (postcat shows it), `Require-TLS-ESMTP: yes` appended to
 * such mail, the header honoured as a request, and `sendmail -O
 * requiretls=yes` for local submission (through maildrop and pickup).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';
import { loadConfig } from '../../src/config/load.ts';
import { CleanupFilter } from '../../src/intake/cleanup.ts';
import { localCleanupSettings, pickupEnvelope, pickupReceived } from '../../src/intake/local-cleanup.ts';
import { openSpool } from '../../src/queue/spool.ts';

test('plaintext REQUIRETLS refused; inside TLS accepted, kept in the queue file, Require-TLS-ESMTP: yes appended, postcat shows it', { timeout: 30_000 }, async () => {
  const p = tempDir('sealpost-pki-');
  const pki = makePki(p.dir);
  const t = await startTestSmtpd(
    { smtpd_tls_security_level: 'may', smtpd_tls_chain_files: pki.server.chain },
    // postcat -c DIR finds the same queue.
    { setup: (dir) => writeFileSync(join(dir, 'main.cf'), `queue_directory = ${join(dir, 'queue')}\n`) },
  );
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> REQUIRETLS'), '555 5.5.4 Unsupported option: REQUIRETLS');
    // A header asking for REQUIRETLS counts even in plaintext (requiretls_esmtp_header = yes).
    assert.equal(await c.cmd('MAIL FROM:<h@example.org>'), '250 2.1.0 Ok');
    await c.cmd('RCPT TO:<b@localhost>');
    await c.cmd('DATA');
    assert.match(await c.cmd('Subject: by header\r\nrequire-tls-esmtp: YES\r\n\r\nx\r\n.'), /^250 /);
    assert.equal(await c.cmd('STARTTLS'), '220 2.0.0 Ready to start TLS');
    await c.startTls();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> REQUIRETLS'), '250 2.1.0 Ok');
    await c.cmd('RCPT TO:<b@localhost>');
    await c.cmd('DATA');
    assert.match(await c.cmd('Subject: secret\r\n\r\nx\r\n.'), /^250 /);
    c.end();
    const messages = await t.messages();
    const byHeader = messages.find((m) => m.envelope.sender === 'h@example.org')!;
    const esmtp = messages.find((m) => m.envelope.sender === 'a@example.org')!;
    assert.equal(byHeader.envelope.requireTls, true);
    assert.equal((byHeader.content.toString().match(/require-tls-esmtp/gi) ?? []).length, 1, 'no second header added');
    assert.equal(esmtp.envelope.requireTls, true);
    assert.match(esmtp.content.toString(), /\r\nSubject: secret\r\n(?:[^\r]*\r\n)*Require-TLS-ESMTP: yes\r\n\r\nx\r\n$/);
    const cat = await sealpost(['postcat', '-c', t.dir, '-q', esmtp.id]);
    assert.equal(cat.code, 0, cat.stderr);
    assert.match(cat.stdout, /^named_attribute: requiretls=yes$/m);
  } finally {
    await t.stop();
    p.cleanup();
  }
});

test('requiretls_esmtp_header = no: the header is neither honoured nor added', async () => {
  const t = await startTestSmtpd({ requiretls_esmtp_header: 'no' });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<h@example.org>');
    await c.cmd('RCPT TO:<b@localhost>');
    await c.cmd('DATA');
    assert.match(await c.cmd('Require-TLS-ESMTP: yes\r\n\r\nx\r\n.'), /^250 /);
    c.end();
    const [m] = await t.messages();
    assert.equal(m!.envelope.requireTls, false);
  } finally {
    await t.stop();
  }
});

test('sendmail -O requiretls=yes: REQUIRETLS in the maildrop envelope, Require-TLS-ESMTP: yes added at pickup; refused with requiretls_enable = no', async () => {
  const t = tempDir();
  try {
    const queue = join(t.dir, 'queue');
    writeFileSync(join(t.dir, 'main.cf'), `queue_directory = ${queue}\nmyhostname = mx.example.org\n`);
    const r = await sealpost(['sendmail', '-C', t.dir, '-O', 'RequireTLS=Yes', 'bob@example.com'], { stdin: 'Subject: local\n\nbody\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const spool = openSpool(queue);
    const [id] = spool.list('maildrop');
    const raw = await spool.readMessage('maildrop', id!);
    assert.equal(raw.envelope.requireTls, true);
    const config = loadConfig({ configDir: t.dir });
    const settings = localCleanupSettings(config);
    const env = pickupEnvelope(raw.envelope);
    const filter = new CleanupFilter(env, 'ABC', [pickupReceived(settings, 0, 'ABC', new Date(env.arrivalTime))], settings);
    const built = Buffer.concat([...filter.push(raw.content), ...filter.end()]);
    assert.match(built.toString(), /\r\nRequire-TLS-ESMTP: yes\r\n\r\nbody\r\n$/);
    assert.equal(filter.facts().requireTlsEsmtp, false, 'the header was added, not found');

    const bad = await sealpost(['sendmail', '-C', t.dir, '-O', 'requiretls=maybe', '-O', 'DeliveryMode=b', 'bob@example.com'], { stdin: 'x\n' });
    assert.equal(bad.stderr, "sendmail: warning: bad -O option: 'requiretls=maybe' -- ignored\n");
    writeFileSync(join(t.dir, 'main.cf'), `queue_directory = ${queue}\nmyhostname = mx.example.org\nrequiretls_enable = no\n`);
    const off = await sealpost(['sendmail', '-C', t.dir, '-O', 'requiretls=yes', 'bob@example.com'], { stdin: 'x\n' });
    assert.equal(off.code, 0);
    assert.equal(off.stderr, "sendmail: warning: Ignoring option '-O requiretls=yes, because the configuration is 'requiretls_enable = no'\n");
    const envs = await Promise.all(spool.list('maildrop').map((i) => spool.readMessage('maildrop', i)));
    assert.deepEqual(envs.map((m) => m.envelope.requireTls).sort(), [false, false, true]);
  } finally {
    t.cleanup();
  }
});
