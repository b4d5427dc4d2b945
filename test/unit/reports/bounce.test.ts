/**
 * bounce.test.ts — DSNs as bounce(8) writes them: golden files (fixed clock,
 * UTC), NOTIFY/RET filtering, never a bounce of a bounce, postmaster copies,
 * and a parse-back of the MIME structure.
 *
 * Golden files: test/golden/dsn/*.eml. To regenerate after a deliberate
 * change: UPDATE_GOLDEN=1 node --import tsx --test test/unit/reports/bounce.test.ts
 * (then read the diff).
 */
process.env.TZ = 'UTC';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postfix, tempDir } from '../../harness/cli.ts';
import { loadConfig } from '../../../src/config/load.ts';
import type { Config } from '../../../src/config/types.ts';
import type { QueueEnvelope } from '../../../src/queue/queue-file.ts';
import { buildBounce, lineWrap, postmasterCopy, toCrlf, wantsNotice, type BounceParams, type BounceRecipient } from '../../../src/reports/bounce.ts';

const GOLDEN = join(import.meta.dirname, '../../golden/dsn');

function config(extra = ''): Config {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), `myhostname = mail.example.org\nmydomain = example.org\n${extra}`);
    return loadConfig({ configDir: t.dir });
  } finally {
    t.cleanup();
  }
}

const ARRIVAL = Date.UTC(2026, 10, 28, 9, 15, 2);
const NOW = Date.UTC(2026, 10, 28, 9, 20, 45);

const MESSAGE = Buffer.from(
  'From: Alice <alice@example.org>\r\nTo: bob@example.net, carol@example.net\r\nSubject: quarterly numbers\r\nMessage-ID: <q3@example.org>\r\n\r\nHello Bob,\r\n\r\nthe numbers are attached.\r\n',
);

function envelope(over: Partial<QueueEnvelope> = {}): QueueEnvelope {
  return {
    version: 1,
    arrivalTime: ARRIVAL,
    sender: 'alice@example.org',
    recipients: [],
    smtputf8: false,
    eightBitMime: false,
    requireTls: false,
    tlsRequiredNo: false,
    forcedExpire: false,
    messageSize: MESSAGE.length,
    headerLength: 0,
    contentLength: MESSAGE.length,
    contentOffset: 0,
    fileLength: 0,
    ...over,
  };
}

const BOB: BounceRecipient = {
  index: 0,
  address: 'bob@example.net',
  origAddress: 'bob@example.net',
  orcpt: 'rfc822;bob@example.net',
  status: '5.1.1',
  action: 'failed',
  reason:
    'host mx.example.net[192.0.2.25] said: 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command)',
  remoteMta: 'mx.example.net',
  remoteReply: '550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown in virtual mailbox table',
};

const CAROL: BounceRecipient = {
  index: 1,
  address: 'carol@example.net',
  origAddress: 'team@example.org',
  status: '4.7.5',
  action: 'delayed',
  reason: 'Server certificate not verified',
};

function params(over: Partial<BounceParams> = {}): BounceParams {
  return { kind: 'failure', queueId: '4F1A2B3C4D', envelope: envelope(), content: MESSAGE, recipients: [BOB], config: config(), now: NOW, ...over };
}

function golden(name: string, actual: Buffer): void {
  const file = join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(file, actual);
  assert.ok(existsSync(file), `${file} is missing (UPDATE_GOLDEN=1 writes it)`);
  assert.equal(actual.toString('utf8'), readFileSync(file, 'utf8'), `differs from ${name}`);
}

test('golden: failure notice with the whole message (RET default FULL)', () => {
  const b = buildBounce(params({ envelope: envelope({ envid: 'QQ314159' }) }));
  assert.ok(b);
  assert.deepEqual([b.sender, b.recipient], ['', 'alice@example.org']);
  golden('failure-full.eml', b.content);
});

test('golden: delay notice (headers only, Will-Retry-Until)', () => {
  const cfg = config('delay_warning_time = 4h\n');
  const b = buildBounce(params({ kind: 'delay', recipients: [CAROL], config: cfg }));
  assert.ok(b);
  golden('delay.eml', b.content);
});

test('golden: postmaster copy of a failure (notify_classes = bounce)', () => {
  const p = params({ config: config('notify_classes = bounce, resource, software\n') });
  const c = postmasterCopy(p);
  assert.ok(c);
  assert.deepEqual([c.sender, c.recipient], ['double-bounce@mail.example.org', 'postmaster@mail.example.org']);
  golden('postmaster-copy.eml', c.content);
});

test('RET=HDRS and bounce_size_limit return the header only', () => {
  const hdrs = buildBounce(params({ envelope: envelope({ ret: 'HDRS' }) }))!.content.toString();
  assert.match(hdrs, /Content-Description: Undelivered Message Headers\r\nContent-Type: text\/rfc822-headers\r\n/);
  assert.doesNotMatch(hdrs, /the numbers are attached/);
  const big = buildBounce(params({ config: config('bounce_size_limit = 100\n') }))!.content.toString();
  assert.match(big, /text\/rfc822-headers/);
  const full = buildBounce(params())!.content.toString();
  assert.match(full, /Content-Type: message\/rfc822\r\n[^]*the numbers are attached/);
});

test('NOTIFY: FAILURE/absent listed, NEVER and DELAY-only not; none listed → no notice', () => {
  assert.equal(wantsNotice('failure', undefined), true);
  assert.equal(wantsNotice('failure', ['DELAY']), false);
  assert.equal(wantsNotice('failure', ['NEVER']), false);
  assert.equal(wantsNotice('delay', undefined), true);
  assert.equal(wantsNotice('delay', ['FAILURE']), false);
  assert.equal(wantsNotice('success', undefined), false);
  assert.equal(wantsNotice('success', ['SUCCESS', 'FAILURE']), true);
  assert.equal(buildBounce(params({ recipients: [{ ...BOB, notify: ['NEVER'] }] })), undefined);
  const two = buildBounce(params({ recipients: [BOB, { ...BOB, index: 2, address: 'dan@example.net', notify: ['DELAY'] }] }))!.content.toString();
  assert.match(two, /Final-Recipient: rfc822; bob@example.net/);
  assert.doesNotMatch(two, /dan@example.net/);
});

test('never a bounce of a bounce; a failed null-sender message goes to 2bounce_notice_recipient', () => {
  assert.equal(buildBounce(params({ envelope: envelope({ sender: '' }) })), undefined);
  assert.equal(buildBounce(params({ envelope: envelope({ sender: 'double-bounce@mail.example.org' }) })), undefined);
  assert.equal(postmasterCopy(params({ envelope: envelope({ sender: '' }) })), undefined); // default notify_classes
  const cfg = config('notify_classes = 2bounce\n2bounce_notice_recipient = hostmaster@example.org\n');
  const c = postmasterCopy(params({ envelope: envelope({ sender: '' }), config: cfg }));
  assert.ok(c);
  assert.equal(c.recipient, 'hostmaster@example.org');
  const text = c.content.toString();
  assert.match(text, /X-sealpost-Sender: rfc822; MAILER-DAEMON\r\n/); // X-$mail_name-Sender
  assert.match(text, /Return-Path: <MAILER-DAEMON>\r\n/);
  assert.match(text, /Content-Type: message\/rfc822/); // double bounce: whole message
});

test('success notice: only NOTIFY=SUCCESS recipients, action delivered', () => {
  const ok: BounceRecipient = { ...BOB, notify: ['SUCCESS'], status: '2.0.0', action: 'delivered', reason: '250 2.0.0 Ok', remoteReply: '250 2.0.0 Ok' };
  const s = buildBounce(params({ kind: 'success', recipients: [ok, BOB] }))!.content.toString();
  assert.match(s, /Subject: Successful Mail Delivery Report\r\n/);
  assert.match(s, /Action: delivered\r\n/);
  assert.equal(s.match(/Final-Recipient/g)!.length, 1);
  assert.match(s, /Content-Description: Message Headers\r\n/);
});

test('SMTPUTF8 message: global-delivery-status, utf-8 address type, message/global', () => {
  const u: BounceRecipient = { ...BOB, address: 'jörg@example.net', origAddress: 'jörg@example.net', orcpt: undefined };
  const s = buildBounce(params({ envelope: envelope({ smtputf8: true }), recipients: [u] }))!.content.toString('utf8');
  assert.match(s, /Content-Type: message\/global-delivery-status\r\nContent-Transfer-Encoding: 8bit\r\n/);
  assert.match(s, /Final-Recipient: utf-8; jörg@example.net\r\n/);
  assert.match(s, /Content-Type: message\/global\r\n/);
});

test('line_wrap: 79 columns, 4-space continuation, long words kept whole', () => {
  const lines = lineWrap(`<bob@example.net>: ${'word '.repeat(30)}end`, 79, 4);
  assert.ok(lines.length > 1);
  assert.ok(lines.every((l) => l.length <= 79), JSON.stringify(lines));
  assert.ok(lines.slice(1).every((l) => l.startsWith('    ') && !l.startsWith('     ')));
  assert.deepEqual(lineWrap(`a ${'x'.repeat(100)} b`, 79, 4), ['a', `    ${'x'.repeat(100)}`, '    b']);
  assert.deepEqual(lineWrap('short', 79, 4), ['short']);
});

test('toCrlf: bare LF becomes CRLF, CRLF and 8-bit bytes untouched', () => {
  assert.deepEqual(toCrlf(Buffer.from('a\nb\r\nc\xff\n', 'latin1')), Buffer.from('a\r\nb\r\nc\xff\r\n', 'latin1'));
});

/** A small MIME reader: header fields of a block and the parts of a multipart body. */
function parseBlock(text: string): { fields: Map<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text.replace(/\r\n$/, '') : text.slice(0, end);
  const fields = new Map<string, string>();
  let last = '';
  for (const line of head.split('\r\n')) {
    if (/^[ \t]/.test(line)) {
      fields.set(last, `${fields.get(last)} ${line.trim()}`);
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    assert.ok(m, `not a header field: ${JSON.stringify(line)}`);
    last = m[1]!.toLowerCase();
    fields.set(last, m[2]!);
  }
  return { fields, body: end < 0 ? '' : text.slice(end + 4) };
}

test('parse-back: CRLF only, well-formed headers, three parts, RFC 3464 fields', () => {
  const cfg = config('notify_classes = bounce\n');
  for (const msg of [buildBounce(params({ config: cfg, recipients: [BOB, { ...CAROL, action: 'failed', status: '5.4.7' }] }))!, postmasterCopy(params({ config: cfg, recipients: [BOB, CAROL] }))!]) {
    const raw = msg.content.toString('utf8');
    assert.doesNotMatch(raw, /[^\r]\n/, 'bare LF');
    assert.ok(raw.split('\r\n').every((l) => l.length <= 998));
    const top = parseBlock(raw);
    for (const f of ['from', 'subject', 'to', 'auto-submitted', 'mime-version', 'content-type', 'message-id', 'date']) assert.ok(top.fields.has(f), f);
    const boundary = /boundary="([^"]+)"/.exec(top.fields.get('content-type')!)![1]!;
    assert.match(top.fields.get('content-type')!, /^multipart\/report; report-type=delivery-status;/);
    const chunks = top.body.split(`\r\n--${boundary}`);
    assert.equal(chunks.at(-1), '--\r\n', 'closing boundary');
    const parts = chunks.slice(1, -1).map((c) => parseBlock(c.replace(/^\r\n/, '')));
    assert.deepEqual(
      parts.map((p) => p.fields.get('content-type')!.split(';')[0]),
      ['text/plain', 'message/delivery-status', msg.sender === '' ? 'message/rfc822' : 'text/rfc822-headers'],
    );
    const groups = parts[1]!.body.replace(/\r\n$/, '').split('\r\n\r\n').map((g) => parseBlock(`${g}\r\n\r\n`).fields);
    assert.equal(groups[0]!.get('reporting-mta'), 'dns; mail.example.org');
    assert.equal(groups.length, 3);
    for (const g of groups.slice(1)) for (const f of ['final-recipient', 'action', 'status', 'diagnostic-code']) assert.ok(g.has(f), f);
    assert.equal(groups[1]!.get('remote-mta'), 'dns; mx.example.net');
    assert.equal(groups[2]!.get('original-recipient'), 'rfc822; team@example.org');
    const returned = parseBlock(parts[2]!.body);
    assert.equal(returned.fields.get('return-path'), '<alice@example.org>');
    assert.equal(returned.fields.get('subject'), 'quarterly numbers');
  }
});

/** Part 1 of a notice: the text between its MIME header and the first recipient line. */
function boilerplate(content: Buffer): string {
  const text = content.toString('utf8').replaceAll('\r\n', '\n');
  const part = text.split('Content-Transfer-Encoding: 8bit\n\n')[1]!;
  return part.slice(0, part.indexOf('\n\n<')) + '\n';
}

test('differential: template texts equal real Postfix (postconf -b expanded_*_text)', () => {
  const t = tempDir();
  try {
    const cf = 'myhostname = mail.example.org\ndelay_warning_time = 4h\nmaximal_queue_lifetime = 3d\n';
    writeFileSync(join(t.dir, 'main.cf'), cf);
    const r = postfix('postconf', ['-c', t.dir, '-b']);
    assert.equal(r.code, 0, r.stderr);
    const expanded = (name: string) => {
      const m = new RegExp(`^${name} = <<EOF\\n([^]*?)\\nEOF$`, 'm').exec(r.stdout);
      assert.ok(m, `${name} in postconf -b output`);
      return m[1]! + '\n';
    };
    const cfg = loadConfig({ configDir: t.dir });
    const failure = buildBounce(params({ config: cfg }))!;
    assert.equal(boilerplate(failure.content), expanded('expanded_failure_text'));
    const delay = buildBounce(params({ kind: 'delay', recipients: [CAROL], config: cfg }))!;
    assert.equal(boilerplate(delay.content), expanded('expanded_delay_text'));
    const success = buildBounce(params({ kind: 'success', recipients: [{ ...BOB, notify: ['SUCCESS'], action: 'delivered' }], config: cfg }))!;
    assert.equal(boilerplate(success.content), expanded('expanded_success_text'));
    // Subject and Postmaster-Subject from the templates (postconf -t).
    const tpl = postfix('postconf', ['-c', t.dir, '-t']).stdout;
    const header = (template: string, name: string) => new RegExp(`^${template} = <<EOF\\n[^]*?^${name}: (.*)$`, 'm').exec(tpl)?.[1];
    const subjectOf = (b: Buffer) => /^Subject: (.*)\r$/m.exec(b.toString())?.[1];
    assert.equal(subjectOf(failure.content), header('failure_template', 'Subject'));
    assert.equal(subjectOf(delay.content), header('delay_template', 'Subject'));
    assert.equal(subjectOf(success.content), header('success_template', 'Subject'));
    const pmCfg = loadConfig({ configDir: t.dir, overrides: { notify_classes: 'bounce, delay' } });
    assert.equal(subjectOf(postmasterCopy(params({ config: pmCfg }))!.content), header('failure_template', 'Postmaster-Subject'));
    assert.equal(subjectOf(postmasterCopy(params({ kind: 'delay', recipients: [CAROL], config: pmCfg }))!.content), header('delay_template', 'Postmaster-Subject'));
  } finally {
    t.cleanup();
  }
});

test('golden: a REQUIRETLS message\'s notice is redacted (header only, no REQUIRETLS on the notice)', () => {
  const reqtls: BounceRecipient = {
    index: 0,
    address: 'bob@example.net',
    origAddress: 'bob@example.net',
    status: '5.7.30',
    action: 'failed',
    reason: 'Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS. The last attempted server was mx.example.net[192.0.2.25]:25',
  };
  const b = buildBounce(params({ recipients: [reqtls], envelope: envelope({ requireTls: true, ret: 'FULL', tlsRequiredNo: true }) }));
  assert.ok(b);
  assert.equal(b.requireTls, false, 'the notice travels without REQUIRETLS');
  assert.equal(b.tlsRequiredNo, undefined, 'REQUIRETLS wins over TLS-Required: No');
  golden('requiretls-redacted.eml', b.content);
  const text = b.content.toString();
  assert.doesNotMatch(text, /the numbers are attached/);
  assert.doesNotMatch(text, /TLS-Required/);
  // The postmaster copy and the double bounce are redacted too.
  const cfg = config('notify_classes = bounce, 2bounce\n');
  const dbl = postmasterCopy(params({ config: cfg, envelope: envelope({ sender: '', requireTls: true }) }))!;
  assert.match(dbl.content.toString(), /Content-Type: text\/rfc822-headers/);
});

test('requiretls_redact_dsn = no keeps RET and asks REQUIRETLS for the notice; TLS-Required: No is copied without REQUIRETLS', () => {
  const keep = buildBounce(params({ config: config('requiretls_redact_dsn = no\n'), envelope: envelope({ requireTls: true }) }))!;
  assert.equal(keep.requireTls, true);
  assert.match(keep.content.toString(), /the numbers are attached/);
  const off = buildBounce(params({ config: config('requiretls_enable = no\n'), envelope: envelope({ requireTls: true }) }))!;
  assert.equal(off.requireTls, false);
  assert.match(off.content.toString(), /the numbers are attached/);
  const trn = buildBounce(params({ envelope: envelope({ tlsRequiredNo: true }) }))!;
  assert.equal(trn.tlsRequiredNo, true);
  assert.match(trn.content.toString(), /\r\nTo: alice@example\.org\r\nTLS-Required: no\r\nAuto-Submitted: auto-replied\r\n/);
  const trnOff = buildBounce(params({ config: config('tls_required_enable = no\n'), envelope: envelope({ tlsRequiredNo: true }) }))!;
  assert.doesNotMatch(trnOff.content.toString(), /TLS-Required/);
});

test('notice envelope flags: SMTPUTF8 and REQUIRETLS as the original asked, 8BITMIME when the notice is 8bit (post_mail sendopts)', () => {
  // REQUIRETLS follows the original only when the notice is not redacted (requiretls_redact_dsn = no).
  const b = buildBounce(params({ config: config('requiretls_redact_dsn = no\n'), envelope: envelope({ smtputf8: true, requireTls: true }) }))!;
  assert.deepEqual([b.smtputf8, b.eightBitMime, b.requireTls], [true, true, true]);
  const redacted = buildBounce(params({ envelope: envelope({ smtputf8: true, requireTls: true }) }))!;
  assert.deepEqual([redacted.smtputf8, redacted.requireTls], [true, false]);
  const plain = buildBounce(params())!;
  assert.deepEqual([plain.smtputf8, plain.requireTls], [false, false]);
  assert.equal(plain.eightBitMime, true, 'smtputf8_enable = yes: the notice is Content-Transfer-Encoding: 8bit');
  const seven = buildBounce(params({ config: config('smtputf8_enable = no\n') }))!;
  assert.equal(seven.eightBitMime, false);
  assert.match(seven.content.toString(), /^Content-Transfer-Encoding: 7bit\r$/m);
  const copy = postmasterCopy(params({ envelope: envelope({ smtputf8: true }), config: config('notify_classes = bounce\n') }))!;
  assert.equal(copy.smtputf8, true);
});
