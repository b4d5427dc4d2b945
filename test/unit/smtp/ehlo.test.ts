import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatEhloReply, offers, parseEhlo, parseEhloReply } from '../../../src/smtp/ehlo.ts';
import { ReplyParser, SmtpReply } from '../../../src/smtp/reply.ts';

const POSTFIX_EHLO =
  '250-mail.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n' +
  '250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n';

function parseWire(wire: string) {
  const items = new ReplyParser().push(Buffer.from(wire));
  assert.equal(items.length, 1);
  assert.ok(items[0] instanceof SmtpReply);
  return parseEhloReply(items[0]);
}

test("Postfix's own EHLO response", () => {
  const c = parseWire(POSTFIX_EHLO);
  assert.equal(c.domain, 'mail.example.com');
  assert.equal(c.greeting, 'mail.example.com');
  assert.equal(c.pipelining, true);
  assert.equal(c.size, true);
  assert.equal(c.sizeLimit, 10240000);
  assert.equal(c.startTls, true);
  assert.equal(c.enhancedStatusCodes, true);
  assert.equal(c.eightBitMime, true);
  assert.equal(c.dsn, true);
  assert.equal(c.smtpUtf8, true);
  assert.equal(c.chunking, true);
  assert.equal(c.binaryMime, false);
  assert.equal(c.requireTls, false);
  assert.deepEqual(c.auth, []);
  assert.deepEqual(c.unknown, ['VRFY', 'ETRN']);
  assert.deepEqual(c.warnings, []);
});

test('keywords are case-insensitive; greeting text after the domain', () => {
  const c = parseEhlo(['MX.Example.NET Hello client [192.0.2.1]', 'pipelining', 'StartTLS', 'size', 'RequireTLS', 'binarymime', 'chunking']);
  assert.equal(c.domain, 'MX.Example.NET');
  assert.equal(c.greeting, 'MX.Example.NET Hello client [192.0.2.1]');
  assert.equal(c.pipelining, true);
  assert.equal(c.startTls, true);
  assert.equal(c.size, true);
  assert.equal(c.sizeLimit, 0); // RFC 1870: SIZE alone = no fixed limit
  assert.equal(c.requireTls, true);
  assert.equal(c.binaryMime, true);
  assert.equal(offers(c, 'starttls'), true);
  assert.equal(offers(c, 'DSN'), false);
});

test('AUTH in both the standard and the old AUTH= form, merged without duplicates', () => {
  const c = parseEhlo(['mx', 'AUTH PLAIN LOGIN', 'AUTH=LOGIN PLAIN CRAM-MD5']);
  assert.deepEqual(c.auth, ['PLAIN', 'LOGIN', 'CRAM-MD5']);
  assert.deepEqual(c.keywords.get('AUTH'), ['PLAIN', 'LOGIN', 'LOGIN', 'PLAIN', 'CRAM-MD5']);
  const old = parseEhlo(['mx', 'AUTH=plain']);
  assert.deepEqual(old.auth, ['PLAIN']);
  assert.deepEqual(old.unknown, []);
});

test('bad SIZE values are warned about; SIZE still counts as offered', () => {
  const c = parseEhlo(['mx', 'SIZE abc']);
  assert.equal(c.size, true);
  assert.equal(c.sizeLimit, undefined);
  assert.deepEqual(c.warnings, ['bad EHLO SIZE limit "abc"']);
  const big = parseEhlo(['mx', 'SIZE 99999999999999999999']);
  assert.equal(big.sizeLimit, undefined);
  assert.equal(big.warnings.length, 1);
});

test('unknown keywords are kept with their parameters; blank and odd lines do not crash', () => {
  const c = parseEhlo(['mx', 'X-EXPS GSSAPI NTLM', '', '   ', 'XCLIENT NAME ADDR', 'DELIVERBY 300', '\tMTRK  ']);
  assert.deepEqual(c.unknown, ['X-EXPS', 'XCLIENT', 'DELIVERBY', 'MTRK']);
  assert.deepEqual(c.keywords.get('X-EXPS'), ['GSSAPI', 'NTLM']);
  assert.deepEqual(c.keywords.get('MTRK'), []);
  const empty = parseEhlo([]);
  assert.equal(empty.domain, '');
  assert.equal(empty.pipelining, false);
});

test('server side: EHLO response format round-trips through the parser', () => {
  const wire = formatEhloReply('mail.example.com', [
    'PIPELINING', 'SIZE 10240000', 'VRFY', 'ETRN', 'STARTTLS', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING',
  ]);
  assert.equal(wire, POSTFIX_EHLO);
  assert.equal(formatEhloReply('mx', []), '250 mx\r\n');
  const c = parseWire(formatEhloReply('mx Hello there', ['AUTH PLAIN LOGIN', 'REQUIRETLS']));
  assert.deepEqual(c.auth, ['PLAIN', 'LOGIN']);
  assert.equal(c.requireTls, true);
});

test("golden: smtp-sink's EHLO reply, with its trailing empty keyword line", async () => {
  const { readFileSync } = await import('node:fs');
  const wire = readFileSync(new URL('../../golden/smtp/smtp-sink-session.in', import.meta.url), 'latin1');
  const ehlo = wire.split('\r\n').filter((l) => l.startsWith('250')).slice(0, 9).join('\r\n') + '\r\n';
  const c = parseWire(ehlo);
  assert.equal(c.domain, 'smtp-sink');
  assert.equal(c.pipelining, true);
  assert.equal(c.eightBitMime, true);
  assert.equal(c.enhancedStatusCodes, true);
  assert.equal(c.dsn, true);
  assert.equal(c.startTls, false);
  assert.deepEqual(c.auth, ['PLAIN', 'LOGIN']);
  assert.deepEqual(c.unknown, ['XCLIENT', 'XFORWARD']);
  assert.deepEqual(c.keywords.get('XFORWARD'), ['NAME', 'ADDR', 'PROTO', 'HELO']);
});
