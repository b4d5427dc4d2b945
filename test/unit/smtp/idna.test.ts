/**
 * idna.ts: Postfix's midna_domain conversions, checked against Postfix's own test
 * (util/midna_domain_test.in/.ref) and against ICU 72 run with Postfix's options
 * (test/golden/idna/icu72.tsv, made by icu-ref.c beside it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  addressToAscii,
  addressToUtf8,
  asciiForLookup,
  domainToAscii,
  domainToUtf8,
  translationWarning,
  validHostname,
  validUtf8Hostname,
} from '../../../src/smtp/idna.ts';

const value = (r: ReturnType<typeof domainToAscii>) => (r.ok ? r.value : `!${r.reason}`);

test("Postfix's midna_domain_test cases give Postfix's results and ICU's error names", () => {
  const cases: Array<[string, string, string]> = [
    ['Δημοσθένους.example.com', 'xn--ixanjetild1af0a.example.com', 'δημοσθένους.example.com'],
    ['Hello.example.com', 'hello.example.com', 'hello.example.com'],
    ['bad-.example.com', '!UIDNA_ERROR_TRAILING_HYPHEN', '!UIDNA_ERROR_TRAILING_HYPHEN'],
    ['-bad.example.com', '!UIDNA_ERROR_LEADING_HYPHEN', '!UIDNA_ERROR_LEADING_HYPHEN'],
    [`${'abcdef0123456789'.repeat(4)}.example.com`, '!UIDNA_ERROR_LABEL_TOO_LONG', '!UIDNA_ERROR_LABEL_TOO_LONG'],
    [`${'abcdef0123456789'.repeat(4).slice(0, 63)}.example.com`, `${'abcdef0123456789'.repeat(4).slice(0, 63)}.example.com`, `${'abcdef0123456789'.repeat(4).slice(0, 63)}.example.com`],
    [`${`${'abcdef0123456789'.repeat(4).slice(0, 62)}.`.repeat(4)}example.com`, '!UIDNA_ERROR_DOMAIN_NAME_TOO_LONG', '!UIDNA_ERROR_DOMAIN_NAME_TOO_LONG'],
    ['x。example.com', 'x.example.com', 'x.example.com'],
    ['x．example.com', 'x.example.com', 'x.example.com'],
    ['x｡example.com', 'x.example.com', 'x.example.com'],
    ['xn--mumble.example.com', 'xn--mumble.example.com', '㲹㲺㲵㲴.example.com'],
    ['xn--123456.example.com', '!UIDNA_ERROR_PUNYCODE', '!UIDNA_ERROR_PUNYCODE'],
  ];
  for (const [input, ascii, utf8] of cases) {
    assert.equal(value(domainToAscii(input)), ascii, `to ASCII: ${input}`);
    assert.equal(value(domainToUtf8(input)), utf8, `to UTF-8: ${input}`);
  }
});

test('the tricky inputs: ß (non-transitional), upper case, mixed scripts, trailing dot, A-labels real and fake', () => {
  assert.equal(value(domainToAscii('Straße.de')), 'xn--strae-oqa.de'); // IDNA2008: ß is kept, not "ss"
  assert.equal(value(domainToAscii('BÜCHER.Test')), 'xn--bcher-kva.test');
  assert.equal(value(domainToAscii('bücher.テスト')), 'xn--bcher-kva.xn--zckzah');
  assert.equal(value(domainToAscii('bücher.test.')), '!malformed ASCII label(s)'); // valid_hostname refuses the trailing dot
  assert.equal(value(domainToAscii('bücher..test')), '!UIDNA_ERROR_EMPTY_LABEL');
  assert.equal(value(domainToAscii('bü--cher.test')), '!UIDNA_ERROR_HYPHEN_3_4');
  assert.equal(value(domainToAscii('bücher.xn--bcher-kva.test')), 'xn--bcher-kva.xn--bcher-kva.test');
  assert.equal(value(domainToAscii('bücher.xn--zz.test')), '!UIDNA_ERROR_PUNYCODE');
  assert.equal(value(domainToAscii('bü cher.test')), '!malformed ASCII label(s)'); // no STD3 rules in UTS #46, valid_hostname catches it
  assert.equal(value(domainToAscii('bü_cher.test')), 'xn--b_cher-3ya.test'); // valid_hostname allows "_"
  assert.equal(value(domainToAscii('ü.123')), 'xn--tda.123'); // a numeric top label is fine when another is not
  assert.equal(value(domainToAscii('a\u200db.bücher.test')), 'xn--ab-m1t.xn--bcher-kva.test'); // no ContextJ check (ICU default)
  assert.equal(value(domainToAscii('abc.ابج.test')), 'abc.xn--mgbcm.test'); // no Bidi check (ICU default)
  assert.equal(value(domainToAscii('bü\ud800.test')), '!malformed UTF-8');
  assert.equal(value(domainToUtf8('xn--bcher-kva.test')), 'bücher.test');
  assert.equal(value(domainToUtf8('XN--BCHER-KVA.test')), 'bücher.test');
  assert.equal(value(domainToUtf8('xn--zz.test')), '!UIDNA_ERROR_PUNYCODE');
});

test('asciiForLookup converts only names that are not all ASCII, as every Postfix call site does', () => {
  assert.equal(asciiForLookup('Example.COM'), 'Example.COM');
  assert.equal(asciiForLookup('xn--123456.example.com'), 'xn--123456.example.com'); // ASCII: not looked at
  assert.equal(asciiForLookup('bücher.test'), 'xn--bcher-kva.test');
  assert.equal(asciiForLookup('bücher-.test'), undefined); // never a DNS query with raw bytes
});

test('valid_utf8_hostname: what the resolver and smtpd accept as a domain', () => {
  assert.equal(validUtf8Hostname(true, 'bücher.test'), true);
  assert.equal(validUtf8Hostname(false, 'bücher.test'), false); // smtputf8_enable = no
  assert.equal(validUtf8Hostname(true, 'bücher-.test'), false);
  assert.equal(validUtf8Hostname(true, 'example.com'), true);
  assert.equal(validUtf8Hostname(true, 'example.com.'), false);
  assert.equal(validUtf8Hostname(true, '1.2.3.4'), false); // numeric
  assert.equal(validUtf8Hostname(true, ''), false);
  assert.equal(validHostname('a-b.c_d.e1'), true);
  assert.equal(validHostname('-a.b'), false);
  assert.equal(validHostname('a-.b'), false);
  assert.equal(validHostname(`${'a'.repeat(64)}.b`), false);
});

test('addresses: the domain part converted, local part and literals untouched', () => {
  assert.deepEqual(addressToAscii('Üser@Bücher.test'), { ok: true, value: 'Üser@xn--bcher-kva.test' });
  assert.deepEqual(addressToAscii('user@[192.0.2.1]'), { ok: true, value: 'user@[192.0.2.1]' });
  assert.deepEqual(addressToAscii('user@Example.COM'), { ok: true, value: 'user@Example.COM' });
  assert.deepEqual(addressToAscii('postmaster'), { ok: true, value: 'postmaster' });
  assert.equal(addressToAscii('user@-bücher.test').ok, false);
  assert.deepEqual(addressToUtf8('user@xn--bcher-kva.test'), { ok: true, value: 'user@bücher.test' });
});

test("midna's warning text", () => {
  assert.equal(
    translationWarning('bücher-.test', 'ASCII', 'UIDNA_ERROR_TRAILING_HYPHEN'),
    'midna_domain_to_ascii_create: Problem translating domain "bücher-.test" to ASCII form: UIDNA_ERROR_TRAILING_HYPHEN',
  );
});

test('ICU 72 with Postfix options agrees on 303 names (rows marked unicode-16 follow the newer Unicode tables)', () => {
  const rows = readFileSync(join(import.meta.dirname, '../../golden/idna/icu72.tsv'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  assert.ok(rows.length > 300);
  let compared = 0;
  for (const row of rows) {
    const [input, ascii, utf8, note] = row.split('\t') as [string, string, string, string];
    const name = input.replace(/\\t/g, '\t').replace(/\\\\/g, '\\');
    const a = domainToAscii(name);
    if (note === 'unicode-16') continue;
    compared++;
    assert.equal(a.ok ? a.value : '!', ascii, `to ASCII: ${JSON.stringify(name)}`);
    const u = domainToUtf8(name);
    if (utf8 === '!') assert.equal(u.ok, false, `to UTF-8 must fail: ${JSON.stringify(name)}`);
    else if (a.ok) assert.equal(u.ok ? u.value : '!', utf8, `to UTF-8: ${JSON.stringify(name)}`);
  }
  assert.ok(compared > 250);
});
