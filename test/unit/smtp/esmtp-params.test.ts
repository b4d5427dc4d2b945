import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  envelopeNeedsSmtpUtf8,
  formatMailFrom,
  formatRcptTo,
  parseMailFrom,
  parseNotify,
  parseRcptTo,
  tokenizeCommand,
  xtextDecode,
  xtextDecodeBytes,
  xtextEncode,
} from '../../../src/smtp/esmtp-params.ts';
import type { EsmtpParseOptions, EsmtpResult, MailFromCommand, RcptToCommand } from '../../../src/smtp/esmtp-params.ts';

function ok<T>(r: EsmtpResult<T>): T {
  assert.ok(r.ok, r.ok ? '' : `unexpected error ${r.error.reply}`);
  return r.value;
}

function reply<T>(r: EsmtpResult<T>): string {
  assert.ok(!r.ok, 'expected an error');
  return r.error.reply;
}

const mail = (line: string, o?: EsmtpParseOptions): EsmtpResult<MailFromCommand> => parseMailFrom(line, o);
const rcpt = (line: string, o?: EsmtpParseOptions): EsmtpResult<RcptToCommand> => parseRcptTo(line, o);

test('tokenizer follows smtpd_token(): quotes, brackets, escapes, FROM:/TO: split', () => {
  const v = (l: string) => tokenizeCommand(l).map((t) => t.value);
  assert.deepEqual(v('MAIL FROM:<a@b> SIZE=10'), ['MAIL', 'FROM:', '<a@b>', 'SIZE=10']);
  assert.deepEqual(v('MAIL FROM: <a@b>'), ['MAIL', 'FROM:', '<a@b>']);
  assert.deepEqual(v('mail from:<"a b"@c>  \t BODY=8BITMIME '), ['mail', 'from:', '<"a b"@c>', 'BODY=8BITMIME']);
  assert.deepEqual(v('RCPT TO:<a\\ b@c>'), ['RCPT', 'TO:', '<a\\ b@c>']);
  assert.deepEqual(v('RCPT TO:<"a>b"@c>'), ['RCPT', 'TO:', '<"a>b"@c>']);
  assert.deepEqual(v('XFOO a:b'), ['XFOO', 'a:b']);
  const bad = tokenizeCommand('MAIL FROM:<a@b');
  assert.equal(bad[2]?.error, true);
  assert.equal(tokenizeCommand('MAIL FROM:<"a@b>')[2]?.error, true);
  assert.deepEqual(v(''), []);
});

test('MAIL FROM: plain, null sender, space after the colon', () => {
  const m = ok(mail('MAIL FROM:<User@Example.COM>'));
  assert.equal(m.address.address, 'User@Example.COM');
  assert.equal(m.rawAddress, '<User@Example.COM>');
  assert.equal(m.params.smtputf8, false);
  assert.equal(ok(mail('MAIL FROM:<>')).address.isNull, true);
  assert.equal(ok(mail('mail from: <a@b.example>')).address.address, 'a@b.example');
  // Postfix's tokenizer splits at "FROM:", so the space is accepted in strict mode too.
  assert.equal(ok(mail('MAIL FROM: <a@b.example>', { strictRfc821Envelopes: true })).address.address, 'a@b.example');
});

test('strict_rfc821_envelopes: brackets required; default accepts a bare address', () => {
  assert.equal(ok(mail('MAIL FROM:a@b.example')).address.address, 'a@b.example');
  assert.equal(reply(mail('MAIL FROM:a@b.example', { strictRfc821Envelopes: true })), '501 5.1.7 Bad sender address syntax');
  assert.equal(reply(rcpt('RCPT TO:a@b.example', { strictRfc821Envelopes: true })), '501 5.1.3 Bad recipient address syntax');
  assert.equal(ok(rcpt('RCPT TO:a@b.example')).address.address, 'a@b.example');
});

test('MAIL syntax errors carry smtpd texts', () => {
  assert.equal(reply(mail('MAIL')), '501 5.5.4 Syntax: MAIL FROM:<address>');
  assert.equal(reply(mail('MAIL FROM:')), '501 5.5.4 Syntax: MAIL FROM:<address>');
  assert.equal(reply(mail('MAIL TO:<a@b>')), '501 5.5.4 Syntax: MAIL FROM:<address>');
  assert.equal(reply(mail('MAIL FROM <a@b>')), '501 5.5.4 Syntax: MAIL FROM:<address>');
  assert.equal(reply(mail('MAIL FROM:<a@b')), '501 5.1.7 Bad sender address syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b>junk')), '501 5.1.7 Bad sender address syntax');
  assert.equal(reply(mail('MAIL FROM:<"a@b>')), '501 5.1.7 Bad sender address syntax');
});

test('SIZE and BODY', () => {
  const m = ok(mail('MAIL FROM:<a@b> SIZE=12345 BODY=8bitmime'));
  assert.equal(m.params.size, 12345);
  assert.equal(m.params.body, '8BITMIME');
  assert.equal(ok(mail('MAIL FROM:<a@b> BODY=7BIT')).params.body, '7BIT');
  assert.equal(reply(mail('MAIL FROM:<a@b> SIZE=12a')), '501 5.5.4 Bad message size syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> SIZE=')), '501 5.5.4 Bad message size syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> SIZE=-1')), '501 5.5.4 Bad message size syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> SIZE=99999999999999999999')), '552 5.3.4 Message size exceeds file system imposed limit');
  // Postfix: a repeated SIZE or BODY silently overrides.
  assert.equal(ok(mail('MAIL FROM:<a@b> SIZE=1 SIZE=2')).params.size, 2);
  assert.equal(reply(mail('MAIL FROM:<a@b> BODY=BINARYMIME')), '555 5.5.4 Unsupported option: BODY=BINARYMIME');
  assert.equal(ok(mail('MAIL FROM:<a@b> BODY=BINARYMIME', { binaryMime: true })).params.body, 'BINARYMIME');
  assert.equal(reply(mail('MAIL FROM:<a@b> BODY=QUOTED')), '555 5.5.4 Unsupported option: BODY=QUOTED');
});

test('RET and ENVID (RFC 3461), once each', () => {
  const m = ok(mail('MAIL FROM:<a@b> RET=hdrs ENVID=QQ314159+2Bx'));
  assert.equal(m.params.ret, 'HDRS');
  assert.equal(m.params.envid, 'QQ314159+x');
  assert.equal(reply(mail('MAIL FROM:<a@b> RET=FULL RET=HDRS')), '501 5.5.4 Bad RET parameter syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> RET=ALL')), '501 5.5.4 Bad RET parameter syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> ENVID=a ENVID=b')), '501 5.5.4 Bad ENVID parameter syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> ENVID=a+4')), '501 5.5.4 Bad ENVID parameter syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> ENVID=a+0A')), '501 5.5.4 Bad ENVID parameter syntax'); // not printable
  assert.equal(reply(mail('MAIL FROM:<a@b> ENVID=')), '501 5.5.4 Bad ENVID parameter syntax');
  assert.equal(reply(mail('MAIL FROM:<a@b> RET=FULL', { dsn: false })), '501 5.7.1 DSN support is disabled');
  assert.equal(reply(mail('MAIL FROM:<a@b> ENVID=x', { dsn: false })), '501 5.7.1 DSN support is disabled');
});

test('SMTPUTF8, REQUIRETLS, AUTH', () => {
  const m = ok(mail('MAIL FROM:<j\u00f6ran@ex\u00e4mple.de> SMTPUTF8'));
  assert.equal(m.params.smtputf8, true);
  assert.equal(reply(mail('MAIL FROM:<j\u00f6ran@ex\u00e4mple.de>')), '553 5.6.7 Must declare SMTPUTF8 to send unicode address');
  assert.equal(reply(mail('MAIL FROM:<a@b> SMTPUTF8=yes')), '555 5.5.4 Unsupported option: SMTPUTF8=yes');
  assert.equal(reply(mail('MAIL FROM:<a@b> SMTPUTF8', { smtputf8: false })), '555 5.5.4 Unsupported option: SMTPUTF8');
  assert.equal(reply(mail('MAIL FROM:<a@b> REQUIRETLS')), '555 5.5.4 Unsupported option: REQUIRETLS');
  assert.equal(ok(mail('MAIL FROM:<a@b> requiretls', { requireTls: true })).params.requireTls, true);
  assert.equal(reply(mail('MAIL FROM:<a@b> REQUIRETLS=1', { requireTls: true })), '555 5.5.4 Unsupported option: REQUIRETLS=1');
  assert.equal(reply(mail('MAIL FROM:<a@b> AUTH=<>')), '555 5.5.4 Unsupported option: AUTH=<>');
  assert.equal(ok(mail('MAIL FROM:<a@b> AUTH=<>', { auth: true })).params.auth, '<>');
  assert.equal(ok(mail('MAIL FROM:<a@b> AUTH=e+3Dmc2@example.com', { auth: true })).params.auth, 'e=mc2@example.com');
  assert.equal(reply(mail('MAIL FROM:<a@b> AUTH=<> AUTH=x', { auth: true })), '503 5.5.4 Error: multiple AUTH= options');
});

test('unknown parameters: 555 Unsupported option, first problem wins', () => {
  assert.equal(reply(mail('MAIL FROM:<a@b> FOO=bar')), '555 5.5.4 Unsupported option: FOO=bar');
  assert.equal(reply(mail('MAIL FROM:<a@b> NOTIFY=NEVER')), '555 5.5.4 Unsupported option: NOTIFY=NEVER');
  assert.equal(reply(mail('MAIL FROM:<a@b> XYZ SIZE=abc')), '555 5.5.4 Unsupported option: XYZ');
  assert.equal(reply(mail('MAIL FROM:<a@b> SIZE=abc XYZ')), '501 5.5.4 Bad message size syntax');
});

test('RCPT TO: address, null refused, postmaster without domain', () => {
  const r = ok(rcpt('RCPT TO:<b@c.example>'));
  assert.equal(r.address.address, 'b@c.example');
  assert.deepEqual(r.params, {});
  assert.equal(ok(rcpt('RCPT TO:<Postmaster>')).address.address, 'Postmaster');
  assert.equal(reply(rcpt('RCPT TO:<>')), '501 5.1.3 Bad recipient address syntax');
  assert.equal(reply(rcpt('RCPT')), '501 5.5.4 Syntax: RCPT TO:<address>');
  assert.equal(reply(rcpt('RCPT FROM:<a@b>')), '501 5.5.4 Syntax: RCPT TO:<address>');
  assert.equal(reply(rcpt('RCPT TO:<a@b')), '501 5.1.3 Bad recipient address syntax');
  assert.equal(reply(rcpt('RCPT TO:<\u00fc@b>')), '553 5.6.7 Must declare SMTPUTF8 to send unicode address');
  assert.equal(ok(rcpt('RCPT TO:<\u00fc@b>', { smtputf8Declared: true })).address.needsSmtpUtf8, true);
});

test('NOTIFY: NEVER alone, or SUCCESS/FAILURE/DELAY; once', () => {
  assert.deepEqual(ok(rcpt('RCPT TO:<a@b> NOTIFY=NEVER')).params.notify, ['NEVER']);
  assert.deepEqual(ok(rcpt('RCPT TO:<a@b> NOTIFY=delay,Success')).params.notify, ['SUCCESS', 'DELAY']);
  assert.deepEqual(ok(rcpt('RCPT TO:<a@b> NOTIFY=FAILURE')).params.notify, ['FAILURE']);
  const bad = '501 5.5.4 Error: Bad NOTIFY parameter syntax';
  assert.equal(reply(rcpt('RCPT TO:<a@b> NOTIFY=NEVER,SUCCESS')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> NOTIFY=')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> NOTIFY=SOMETIMES')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> NOTIFY=SUCCESS NOTIFY=FAILURE')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> NOTIFY=SUCCESS', { dsn: false })), '501 5.7.1 DSN support is disabled');
  assert.deepEqual(parseNotify('SUCCESS,,FAILURE'), ['SUCCESS', 'FAILURE']);
});

test('ORCPT: type;xtext, decoded, once', () => {
  const r = ok(rcpt('RCPT TO:<a@b> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Pepper+2Bx@example.com'));
  assert.deepEqual(r.params.orcpt, { type: 'rfc822', address: 'Pepper+x@example.com' });
  const bad = '501 5.5.4 Error: Bad ORCPT parameter syntax';
  assert.equal(reply(rcpt('RCPT TO:<a@b> ORCPT=rfc822')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> ORCPT=;a@b')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> ORCPT=rfc822;a+ZZ')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> ORCPT=rfc822;a@b ORCPT=rfc822;c@d')), bad);
  assert.equal(reply(rcpt('RCPT TO:<a@b> ORCPT=rfc822;a@b', { dsn: false })), '501 5.7.1 DSN support is disabled');
  assert.equal(reply(rcpt('RCPT TO:<a@b> SIZE=10')), '555 5.5.4 Unsupported option: SIZE=10');
});

test('xtext: encode +XX outside 33..126 and for + and =; decode any hex case like Postfix', () => {
  assert.equal(xtextEncode('a+b=c d'), 'a+2Bb+3Dc+20d');
  assert.equal(xtextEncode('\u00e9'), '+C3+A9');
  assert.equal(xtextEncode('\r\n\x00~!'), '+0D+0A+00~!');
  assert.equal(xtextDecode('a+2Bb+3dc+20d'), 'a+b=c d');
  assert.equal(xtextDecode('+C3+A9'), '\u00e9');
  assert.equal(xtextDecode(''), '');
  assert.equal(xtextDecode('a+'), undefined);
  assert.equal(xtextDecode('a+4'), undefined);
  assert.equal(xtextDecode('a+G0'), undefined);
  assert.equal(xtextDecode('a=b'), 'a=b'); // Postfix tolerates a raw "="
  assert.equal(xtextDecode('a=b', { strict: true }), undefined);
  assert.equal(xtextDecode('a+2b', { strict: true }), undefined);
  assert.equal(xtextDecode('a b', { strict: true }), undefined);
  assert.deepEqual(xtextDecodeBytes('+FF+00'), Buffer.from([0xff, 0x00]));
  for (const s of ['', 'plain', 'a+b=c', '\u00fcber@ex\u00e4mple', '\x01\x7f~ ']) {
    assert.equal(xtextDecode(xtextEncode(s), { strict: true }), s);
  }
});

test('client side: MAIL FROM and RCPT TO formatting', () => {
  assert.equal(formatMailFrom(''), 'MAIL FROM:<>');
  assert.equal(
    formatMailFrom('a b@example.com', { size: 1234, body: '8BITMIME', smtputf8: true, requireTls: true, ret: 'HDRS', envid: 'id=1', auth: '<>' }),
    'MAIL FROM:<"a b"@example.com> SIZE=1234 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=HDRS ENVID=id+3D1 AUTH=<>',
  );
  assert.equal(formatMailFrom('x@y', { auth: 'u+1@y' }), 'MAIL FROM:<x@y> AUTH=u+2B1@y');
  assert.equal(formatRcptTo('user@example.com'), 'RCPT TO:<user@example.com>');
  assert.equal(
    formatRcptTo('user@example.com', { notify: ['DELAY', 'SUCCESS'], orcpt: { type: 'rfc822', address: 'User+tag@Example.com' } }),
    'RCPT TO:<user@example.com> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;User+2Btag@Example.com',
  );
  assert.throws(() => formatRcptTo('a@b\r\nRCPT TO:<evil@x>'), RangeError);
  assert.throws(() => formatMailFrom('a\n@b'), RangeError);
  assert.throws(() => formatRcptTo(''), RangeError);
  assert.throws(() => formatRcptTo('a@b', { notify: ['NEVER', 'SUCCESS'] }), RangeError);
  assert.throws(() => formatRcptTo('a@b', { orcpt: { type: 'rfc;822', address: 'a' } }), RangeError);
  assert.throws(() => formatMailFrom('a@b', { size: -1 }), RangeError);
});

test('formatted commands parse back to the same envelope', () => {
  const line = formatMailFrom('"odd"\\x@example.com', { size: 42, ret: 'FULL', envid: 'Q+1 2', smtputf8: true });
  const m = ok(parseMailFrom(line));
  assert.equal(m.address.address, '"odd"\\x@example.com');
  assert.equal(m.params.size, 42);
  assert.equal(m.params.ret, 'FULL');
  assert.equal(m.params.envid, 'Q+1 2');
  const r = ok(parseRcptTo(formatRcptTo('a@b', { notify: ['NEVER'], orcpt: { type: 'utf-8', address: 'x=y' } })));
  assert.deepEqual(r.params.notify, ['NEVER']);
  assert.deepEqual(r.params.orcpt, { type: 'utf-8', address: 'x=y' });
  assert.equal(envelopeNeedsSmtpUtf8('a@b', ['c@d']), false);
  assert.equal(envelopeNeedsSmtpUtf8('a@b', ['c@d\u00e9']), true);
});

test('source routes and quoted local parts through the command parser', () => {
  const m = ok(mail('MAIL FROM:<@relay.example,@hop.example:user@origin.example>', { strictRfc821Envelopes: true }));
  assert.equal(m.address.address, 'user@origin.example');
  assert.equal(m.address.hadSourceRoute, true);
  assert.deepEqual(m.address.sourceRoute, ['relay.example', 'hop.example']);
  const r = ok(rcpt('RCPT\tTO:<"user@other"@relay.example>\tNOTIFY=NEVER'));
  assert.equal(r.address.quotedAt, true);
  assert.equal(r.address.address, 'user@other@relay.example');
  assert.deepEqual(r.params.notify, ['NEVER']);
  assert.equal(reply(mail('MAIL FROM:<@relay.example>')), '501 5.1.7 Bad sender address syntax');
});
