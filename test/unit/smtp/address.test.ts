import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  foldAddressDomain,
  foldDomain,
  formatPath,
  needsSmtpUtf8,
  parsePath,
  quoteAddress,
  quoteLocalPart,
} from '../../../src/smtp/address.ts';
import type { AddressResult, ParsePathOptions, ParsedAddress } from '../../../src/smtp/address.ts';

function ok(text: string, o?: ParsePathOptions): ParsedAddress {
  const r: AddressResult = parsePath(text, o);
  assert.ok(r.ok, r.ok ? '' : `${text}: ${r.reason}`);
  return r.value;
}

function bad(text: string, o?: ParsePathOptions): string {
  const r = parsePath(text, o);
  assert.ok(!r.ok, `${text} should not parse`);
  return r.reason;
}

test('plain mailbox', () => {
  const a = ok('<User.Name+tag@Example.COM>');
  assert.equal(a.isNull, false);
  assert.equal(a.localPart, 'User.Name+tag');
  assert.equal(a.domain, 'Example.COM');
  assert.equal(a.address, 'User.Name+tag@Example.COM');
  assert.equal(a.quoted, false);
  assert.equal(a.literal, undefined);
  assert.equal(a.rfc5321Syntax, true);
  assert.equal(a.hadSourceRoute, false);
  assert.equal(a.hasPercentHack || a.hasBangPath || a.quotedAt || a.needsSmtpUtf8, false);
  assert.deepEqual(a.lengths, { localPart: 13, domain: 11, path: 27 });
  assert.deepEqual(a.overLimits, []);
});

test('null sender and its refusal where not allowed', () => {
  const n = ok('<>');
  assert.equal(n.isNull, true);
  assert.equal(n.address, '');
  assert.equal(bad('<>', { allowNull: false }), 'empty address');
});

test('brackets: required in strict mode, optional otherwise, must balance', () => {
  assert.equal(ok('user@example.com').address, 'user@example.com');
  assert.equal(bad('user@example.com', { requireBrackets: true }), 'address not enclosed in <>');
  assert.equal(bad('<user@example.com'), 'missing closing >');
  assert.equal(bad('<user@example.com>x'), 'junk after >');
  assert.equal(bad('<a@b>>'), 'junk after >');
  assert.equal(bad('user@example.com>'), 'unbalanced <>');
  assert.equal(ok('user@example.com').lengths.path, 18);
});

test('quoted local parts are unquoted into the internal form', () => {
  const a = ok('<"a b"@example.com>');
  assert.equal(a.localPart, 'a b');
  assert.equal(a.address, 'a b@example.com');
  assert.equal(a.quoted, true);
  assert.equal(a.rfc5321Syntax, true);
  assert.equal(ok('<"a\\"b\\\\c"@x>').localPart, 'a"b\\c');
  assert.equal(ok('<"a>b"@x>').localPart, 'a>b');
  assert.equal(bad('<"ab@x>'), 'missing closing >');
  assert.equal(bad('"ab@x'), 'unterminated quoted string');
  assert.equal(bad('<"a"b@x>'), 'junk after quoted local part');
  assert.equal(bad('<"a"@>'), 'empty domain');
  assert.equal(ok('<"postmaster">').address, 'postmaster');
});

test('relay-control tricks are flagged', () => {
  const pct = ok('<user%other.example@relay.example>');
  assert.equal(pct.hasPercentHack, true);
  assert.equal(pct.rfc5321Syntax, true);
  const bang = ok('<other.example!user@relay.example>');
  assert.equal(bang.hasBangPath, true);
  const qat = ok('<"user@other.example"@relay.example>');
  assert.equal(qat.quotedAt, true);
  assert.equal(qat.address, 'user@other.example@relay.example');
  assert.equal(qat.domain, 'relay.example');
  const twoAt = ok('<user@other@relay.example>');
  assert.equal(twoAt.quotedAt, true);
  assert.equal(twoAt.domain, 'relay.example');
  assert.equal(twoAt.rfc5321Syntax, false);
});

test('source routes are stripped and reported (RFC 5321 §C)', () => {
  const a = ok('<@hosta.example,@hostb.example:user@hostc.example>');
  assert.equal(a.hadSourceRoute, true);
  assert.deepEqual(a.sourceRoute, ['hosta.example', 'hostb.example']);
  assert.equal(a.address, 'user@hostc.example');
  assert.equal(ok('<@a:u@c>').address, 'u@c');
  assert.equal(bad('<@a,b:u@c>'), 'malformed source route');
  assert.equal(bad('<@a,@:u@c>'), 'malformed source route');
  assert.equal(bad('<@a.example>'), 'source route without ":"');
  assert.equal(bad('<@a:>'), 'empty address after source route');
});

test('address literals', () => {
  const v4 = ok('<postmaster@[192.0.2.1]>');
  assert.equal(v4.literal, 'ipv4');
  assert.equal(v4.domain, '[192.0.2.1]');
  assert.equal(v4.rfc5321Syntax, true);
  assert.equal(ok('<u@[IPv6:2001:db8::1]>').literal, 'ipv6');
  assert.equal(ok('<u@[ipv6:::1]>').literal, 'ipv6');
  assert.equal(ok('<u@[x-tag:some-data]>').literal, 'general');
  const broken = ok('<u@[300.1.1.1]>');
  assert.equal(broken.literal, 'invalid');
  assert.equal(broken.rfc5321Syntax, false);
  assert.equal(ok('<u@[IPv6:nonsense]>').literal, 'invalid');
  assert.equal(ok('<u@[192.0.2.1>').literal, 'invalid');
});

test('RFC 5321 grammar check without refusing what Postfix accepts', () => {
  assert.equal(ok('<a..b@example.com>').rfc5321Syntax, false);
  assert.equal(ok('<.a@example.com>').rfc5321Syntax, false);
  assert.equal(ok('<a.@example.com>').rfc5321Syntax, false);
  assert.equal(ok('<a@-example.com>').rfc5321Syntax, false);
  assert.equal(ok('<a@example.com.>').rfc5321Syntax, false);
  assert.equal(ok('<a@exa_mple.com>').rfc5321Syntax, false);
  assert.equal(ok('<a(b)@example.com>').rfc5321Syntax, false);
  assert.equal(ok('<postmaster>').rfc5321Syntax, true);
  assert.equal(ok('<""@example.com>').rfc5321Syntax, false);
  assert.equal(bad('<a@>'), 'empty domain');
  assert.equal(bad('<a b@example.com>'), 'bad character in local part');
  assert.equal(bad('<a@exa mple.com>'), 'bad character in domain');
  assert.equal(bad('<"a"@b\\c>'), 'bad character in domain');
  assert.equal(bad('<a\x00@b>'), 'bad character in local part');
});

test('length limits of RFC 5321 §4.5.3.1 are exposed, not enforced', () => {
  const local = 'l'.repeat(65);
  const a = ok(`<${local}@example.com>`);
  assert.deepEqual(a.overLimits, ['local-part']);
  assert.deepEqual(ok(`<${'l'.repeat(64)}@example.com>`).overLimits, []);
  const label = 'd'.repeat(63);
  const domain = [label, label, label, label].join('.'); // 255 octets
  assert.deepEqual(ok(`<u@${domain}>`).overLimits, ['path']); // 1+1+255+2 = 259 > 256
  assert.deepEqual(ok(`<u@${domain}x>`).overLimits, ['domain', 'path']);
  assert.deepEqual(ok(`<${'l'.repeat(64)}@${'d'.repeat(189)}>`).overLimits, []); // path exactly 256
  assert.deepEqual(ok(`<${'l'.repeat(64)}@${'d'.repeat(190)}>`).overLimits, ['path']);
  // Octets, not characters.
  assert.equal(ok('<\u00e9@x>').lengths.localPart, 2);
});

test('non-ASCII needs SMTPUTF8', () => {
  const a = ok('<j\u00f6ran@ex\u00e4mple.de>');
  assert.equal(a.needsSmtpUtf8, true);
  assert.equal(a.rfc5321Syntax, true);
  assert.equal(needsSmtpUtf8('plain@example.com'), false);
  assert.equal(needsSmtpUtf8('\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a'), true);
});

test('quoteLocalPart quotes what is not a dot-string, as quote_821_local()', () => {
  assert.equal(quoteLocalPart('user.name'), 'user.name');
  assert.equal(quoteLocalPart("o'hara+x=y"), "o'hara+x=y");
  assert.equal(quoteLocalPart('j\u00f6ran'), 'j\u00f6ran');
  assert.equal(quoteLocalPart('a b'), '"a b"');
  assert.equal(quoteLocalPart('a..b'), '"a..b"');
  assert.equal(quoteLocalPart('.a'), '".a"');
  assert.equal(quoteLocalPart('a.'), '"a."');
  assert.equal(quoteLocalPart('a"b'), '"a\\"b"');
  assert.equal(quoteLocalPart('a\\b'), '"a\\\\b"');
  assert.equal(quoteLocalPart('user@other'), '"user@other"');
  assert.equal(quoteLocalPart('a,b'), '"a,b"');
  assert.equal(quoteLocalPart(''), '""');
  assert.equal(quoteAddress('user@other@relay.example'), '"user@other"@relay.example');
  assert.equal(quoteAddress('a b@x'), '"a b"@x');
  assert.equal(quoteAddress('postmaster'), 'postmaster');
  assert.equal(quoteAddress(''), '');
  assert.equal(formatPath(''), '<>');
  assert.equal(formatPath('a b@x'), '<"a b"@x>');
});

test('quote then parse gives back the internal form', () => {
  for (const addr of ['a b@x.example', 'a"b@x', 'a\\b@x', 'user@other@relay', 'plain@example.com', '.dot@x', 'Postmaster']) {
    assert.equal(ok(formatPath(addr)).address, addr, addr);
  }
});

test('domain folding', () => {
  assert.equal(foldDomain('MX.Example.COM'), 'mx.example.com');
  assert.equal(foldDomain('[IPv6:2001:DB8::1]'), '[ipv6:2001:db8::1]');
  assert.equal(foldDomain('\u00c4rger.Example'), '\u00c4rger.example');
  assert.equal(foldAddressDomain('User.Name@Example.COM'), 'User.Name@example.com');
  assert.equal(foldAddressDomain('"A@B"@C.D'.replace(/"/g, '')), 'A@B@c.d');
  assert.equal(foldAddressDomain('Postmaster'), 'Postmaster');
});

test('parsed values are frozen', () => {
  const a = ok('<a@b>');
  assert.ok(Object.isFrozen(a));
  assert.ok(Object.isFrozen(a.overLimits));
});
