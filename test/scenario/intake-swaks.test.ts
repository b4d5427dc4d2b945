/**
 * The listener driven by swaks (a real, independent SMTP client): plain,
 * pipelining, STARTTLS, AUTH PLAIN/LOGIN over TLS, submission (TLS + AUTH
 * required), submissions (wrapper mode); and DSN parameters with the raw
 * client (swaks cannot send them). Each test checks the spool and the log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import type { TestPki } from '../harness/pki.ts';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';
import { hashPassword } from '../../src/intake/smtpd/sasl.ts';

let pki: TestPki;
let pkiDir: { dir: string; cleanup: () => void };
let passwd: string;

before(async () => {
  pkiDir = tempDir('sealpost-pki-');
  pki = makePki(pkiDir.dir);
  passwd = join(pkiDir.dir, 'sasl_passwd');
  writeFileSync(passwd, `alice:${await hashPassword('s3cret')}\n`);
});
after(() => pkiDir.cleanup());

/** Run swaks asynchronously (the server runs in this process). */
function swaks(port: number, args: readonly string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('swaks', ['--server', '127.0.0.1', '--port', String(port), '--helo', 'client.example', '-f', 'alice@example.org', ...args], { timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

const TLS = () => ({ smtpd_tls_security_level: 'may', smtpd_tls_chain_files: pki.server.chain });

test('swaks plain: queued, Received without TLS, log lines', async () => {
  const t = await startTestSmtpd();
  try {
    const r = await swaks(t.port, ['-t', 'bob@localhost', '--h-Subject', 'plain']);
    assert.equal(r.code, 0, r.out);
    const [m] = await t.messages();
    assert.match(m!.content.toString(), /with ESMTP id /);
    assert.equal(m!.envelope.client?.protocol, 'ESMTP');
    assert.ok(t.log.lines.some((l) => l.includes('disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5')));
  } finally {
    await t.stop();
  }
});

test('swaks --pipeline with several recipients', async () => {
  const t = await startTestSmtpd();
  try {
    const r = await swaks(t.port, ['-t', 'bob@localhost,carol@localhost,BOB@localhost', '--pipeline']);
    assert.equal(r.code, 0, r.out);
    const [m] = await t.messages();
    // Duplicates (case-insensitive) are dropped; with several recipients Received has no "for".
    assert.deepEqual(m!.envelope.recipients.map((x) => x.address), ['bob@localhost', 'carol@localhost']);
    assert.match(m!.content.toString(), /with ESMTP id [0-9A-F]+;\r\n\t\w{3}, /);
  } finally {
    await t.stop();
  }
});

test('swaks STARTTLS: ESMTPS, TLS comment in Received with smtpd_tls_received_header, TLS log line', async () => {
  const t = await startTestSmtpd({ ...TLS(), smtpd_tls_received_header: 'yes' });
  try {
    const r = await swaks(t.port, ['-t', 'bob@localhost', '--tls']);
    assert.equal(r.code, 0, r.out);
    const [m] = await t.messages();
    const text = m!.content.toString();
    assert.match(text, /^Received: from client\.example \(unknown \[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.3 with cipher \S+ \(\d+\/\d+ bits\)\)\r\n\t\(No client certificate requested\)\r\n\tby mx\.test\.example \(sealpost\) with ESMTPS id /);
    assert.ok(t.log.lines.some((l) => l.includes('Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.3 with cipher')));
  } finally {
    await t.stop();
  }
});

test('swaks AUTH PLAIN and LOGIN over TLS: ESMTPSA, sasl_username logged, relaying permitted', async () => {
  const t = await startTestSmtpd({ ...TLS(), mynetworks: '192.0.2.0/24', smtpd_sasl_auth_enable: 'yes', smtpd_tls_auth_only: 'yes', sealpost_sasl_password_file: passwd });
  try {
    for (const mech of ['PLAIN', 'LOGIN']) {
      const r = await swaks(t.port, ['-t', 'bob@remote.example', '--tls', '--auth', mech, '--auth-user', 'alice', '--auth-password', 's3cret']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /235 2\.7\.0 Authentication successful/);
    }
    const msgs = await t.messages();
    assert.equal(msgs.length, 2);
    for (const m of msgs) {
      assert.match(m.content.toString(), /with ESMTPSA id /);
      assert.equal(m.envelope.client?.saslUser, 'alice');
    }
    assert.ok(t.log.lines.some((l) => /: client=unknown\[127\.0\.0\.1\], sasl_method=PLAIN, sasl_username=alice$/.test(l)));
    assert.ok(t.log.lines.some((l) => /: client=unknown\[127\.0\.0\.1\], sasl_method=LOGIN, sasl_username=alice$/.test(l)));
    const bad = await swaks(t.port, ['-t', 'bob@remote.example', '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 'wrong']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /535 5\.7\.8 Error: authentication failed: authentication failure/);
    assert.ok(t.log.lines.some((l) => l.includes('warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: authentication failure, sasl_username=alice')));
  } finally {
    await t.stop();
  }
});

test('AUTH is not offered in plaintext with smtpd_tls_auth_only = yes', async () => {
  const t = await startTestSmtpd({ ...TLS(), smtpd_sasl_auth_enable: 'yes', smtpd_tls_auth_only: 'yes', sealpost_sasl_password_file: passwd });
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    assert.doesNotMatch(await c.cmd('EHLO client.example'), /AUTH/);
    assert.equal(await c.cmd('AUTH PLAIN AGFsaWNlAHMzY3JldA=='), '504 5.5.4 Encryption required for requested authentication mechanism');
  } finally {
    await t.stop();
  }
});

test('submission (encrypt + auth required): 530 before STARTTLS; relaying only after AUTH', async () => {
  const sub = {
    smtpd_tls_security_level: 'encrypt',
    smtpd_tls_chain_files: pki.server.chain,
    smtpd_sasl_auth_enable: 'yes',
    smtpd_relay_restrictions: 'permit_sasl_authenticated, reject',
    sealpost_sasl_password_file: passwd,
  };
  const t = await startTestSmtpd(sub);
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    const ehlo = await c.cmd('EHLO client.example');
    assert.match(ehlo, /STARTTLS/);
    assert.doesNotMatch(ehlo, /AUTH/);
    assert.equal(await c.cmd('MAIL FROM:<alice@example.org>'), '530 5.7.0 Must issue a STARTTLS command first');
    c.end();
    const noauth = await swaks(t.port, ['-t', 'bob@remote.example', '--tls']);
    assert.notEqual(noauth.code, 0);
    assert.match(noauth.out, /554 5\.7\.1 <bob@remote\.example>: Recipient address rejected: Access denied/);
    const ok = await swaks(t.port, ['-t', 'bob@remote.example', '--tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 's3cret']);
    assert.equal(ok.code, 0, ok.out);
    assert.equal((await t.messages()).length, 1);
  } finally {
    await t.stop();
  }
});

test('submissions (smtpd_tls_wrappermode = yes): TLS from the first byte', async () => {
  const t = await startTestSmtpd({ smtpd_tls_wrappermode: 'yes', smtpd_tls_chain_files: pki.server.chain, smtpd_sasl_auth_enable: 'yes', sealpost_sasl_password_file: passwd });
  try {
    const r = await swaks(t.port, ['-t', 'bob@remote.example', '--tls-on-connect', '--auth', 'LOGIN', '--auth-user', 'alice', '--auth-password', 's3cret']);
    assert.equal(r.code, 0, r.out);
    const [m] = await t.messages();
    assert.match(m!.content.toString(), /with ESMTPSA id /);
    const c = await RawSmtp.open(t.port, { tls: true });
    assert.equal(await c.reply(), '220 mx.test.example ESMTP sealpost');
    const ehlo = await c.cmd('EHLO x.example');
    assert.doesNotMatch(ehlo, /STARTTLS/);
    assert.match(ehlo, /REQUIRETLS/);
    c.end();
  } finally {
    await t.stop();
  }
});

test('DSN, SMTPUTF8, BODY and REQUIRETLS parameters are recorded in the envelope; TLS-Required: No noted', async () => {
  const t = await startTestSmtpd(TLS());
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> REQUIRETLS'), '555 5.5.4 Unsupported option: REQUIRETLS');
    assert.equal(await c.cmd('STARTTLS'), '220 2.0.0 Ready to start TLS');
    await c.startTls();
    await c.cmd('EHLO client.example');
    assert.equal(await c.cmd('MAIL FROM:<a@example.org> RET=HDRS ENVID=abc+2Bdef BODY=8BITMIME SMTPUTF8 REQUIRETLS'), '250 2.1.0 Ok');
    assert.equal(await c.cmd('RCPT TO:<b@localhost> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b+40example.com'), '250 2.1.5 Ok');
    assert.equal(await c.cmd('RCPT TO:<c@localhost> NOTIFY=NEVER'), '250 2.1.5 Ok');
    await c.cmd('DATA');
    assert.match(await c.cmd('TLS-Required: No\r\nSubject: dsn\r\n\r\nx\r\n.'), /^250 /);
    const [m] = await t.messages();
    const e = m!.envelope;
    assert.equal(e.ret, 'HDRS');
    assert.equal(e.envid, 'abc+def');
    assert.equal(e.eightBitMime, true);
    assert.equal(e.smtputf8, true);
    assert.equal(e.requireTls, true);
    assert.equal(e.tlsRequiredNo, true);
    assert.deepEqual(e.recipients[0]!.notify, ['SUCCESS', 'FAILURE']);
    assert.equal(e.recipients[0]!.orcpt, 'rfc822;b@example.com');
    assert.deepEqual(e.recipients[1]!.notify, ['NEVER']);
  } finally {
    await t.stop();
  }
});
