/**
 * policy.test.ts — the RFC 8461 §3.2 policy parser from text and bytes:
 * LF and CRLF, required fields, duplicates, max_age bounds, mx pattern
 * syntax, unknown keys, mode none, control characters, binary bodies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePolicyBody, parseStsPolicy, validMxPattern } from '../../../../src/delivery/mta-sts/policy.ts';

const GOOD = 'version: STSv1\nmode: enforce\nmx: mail.example.com\nmx: *.example.net\nmx: backupmx.example.com\nmax_age: 604800\n';

test('the RFC 8461 §3.2 example parses; LF and CRLF alike', () => {
  for (const text of [GOOD, GOOD.replace(/\n/g, '\r\n'), GOOD.trimEnd()]) {
    const p = parseStsPolicy(text);
    assert.ok(p.ok, JSON.stringify(p));
    assert.deepEqual({ ...p.policy }, {
      version: 'STSv1', mode: 'enforce', mx: ['mail.example.com', '*.example.net', 'backupmx.example.com'], maxAge: 604800,
      lines: ['version: STSv1', 'mode: enforce', 'mx: mail.example.com', 'mx: *.example.net', 'mx: backupmx.example.com', 'max_age: 604800'],
    });
  }
});

test('blanks after the colon and at the end of a line, unknown keys, order free, upper-case mx lowered', () => {
  const p = parseStsPolicy('mode:testing\nmax_age:   86400  \nfoo_bar.x: some value here\nversion: STSv1\nmx: MX.Example.COM\n\n');
  assert.ok(p.ok);
  assert.equal(p.policy.mode, 'testing');
  assert.equal(p.policy.maxAge, 86400);
  assert.deepEqual(p.policy.mx, ['mx.example.com']);
});

test('mode none needs no mx', () => {
  const p = parseStsPolicy('version: STSv1\nmode: none\nmax_age: 0\n');
  assert.ok(p.ok && p.policy.mode === 'none' && p.policy.mx.length === 0 && p.policy.maxAge === 0);
});

test('missing, unsupported, duplicated and out-of-range fields are errors naming the problem', () => {
  const cases: Array<[string, RegExp]> = [
    ['mode: enforce\nmx: a.example\nmax_age: 1\n', /no "version"/],
    ['version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n', /unsupported version "STSv2"/],
    ['version: stsv1\nmode: enforce\nmx: a.example\nmax_age: 1\n', /unsupported version/],
    ['version: STSv1\nmx: a.example\nmax_age: 1\n', /no "mode"/],
    ['version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 1\n', /bad mode "Enforce"/],
    ['version: STSv1\nmode: enforce\nmx: a.example\n', /no "max_age"/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n', /bad max_age "31557601"/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n', /bad max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 12345678901\n', /bad max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n', /bad max_age/],
    ['version: STSv1\nmode: enforce\nmax_age: 1\n', /no "mx" field in mode enforce/],
    ['version: STSv1\nmode: testing\nmode: enforce\nmx: a.example\nmax_age: 1\n', /line 3: "mode" given more than once/],
    ['version: STSv1\nversion: STSv1\nmode: testing\nmx: a.example\nmax_age: 1\n', /"version" given more than once/],
    ['version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\nmax_age: 2\n', /"max_age" given more than once/],
    ['Version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1\n', /no "version"/],
    ['version STSv1\n', /line 1: no "key:"/],
    [' version: STSv1\n', /line 1: bad key/],
    ['version: STSv1\nmode: enforce\nmx:\nmax_age: 1\n', /line 3: bad value for "mx"/],
    ['version: STSv1\rmode: enforce\n', /control character/],
    ['version: STSv1\nmode: enforce\u0000\n', /line 2: control character/],
    ['<html><body>not a policy</body></html>', /no "key:"|bad key/],
  ];
  for (const [text, want] of cases) {
    const p = parseStsPolicy(text);
    assert.equal(p.ok, false, text);
    assert.match(!p.ok ? p.error : '', want, text);
  }
});

test('mx patterns: one wildcard label at the left only, RFC 5321 Domain syntax', () => {
  for (const ok of ['mail.example.com', '*.example.net', 'xn--bcher-kva.example', 'a.b.c.d.example', 'localhost', 'mx-1.example']) {
    assert.equal(validMxPattern(ok), true, ok);
  }
  for (const bad of ['*.*.example.com', 'mail.*.example.com', '*example.com', '*', '*.', 'exa mple.com', '-mx.example.com', 'mx-.example.com', 'mail.example.com.', '.example.com', 'mail..example.com', '_mta.example.com', `${'a'.repeat(64)}.example`]) {
    assert.equal(validMxPattern(bad), false, bad);
  }
  const p = parseStsPolicy('version: STSv1\nmode: enforce\nmx: *.*.example.com\nmax_age: 1\n');
  assert.deepEqual(p, { ok: false, error: 'line 3: bad mx pattern "*.*.example.com"' });
});

test('unknown keys need well-formed lines too; UTF-8 values are fine', () => {
  assert.ok(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 5\ncomment: caf\u00e9 \u2713\n').ok);
  assert.equal(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 5\nbad key: x\n').ok, false);
  assert.equal(parseStsPolicy(`version: STSv1\nmode: none\nmax_age: 5\n${'k'.repeat(33)}: x\n`).ok, false);
});

test('bodies: UTF-8 text decodes; binary is refused with the offset', () => {
  assert.deepEqual(decodePolicyBody(Buffer.from(GOOD)), { ok: true, text: GOOD });
  assert.deepEqual(decodePolicyBody(Buffer.from([0x76, 0x65, 0x72, 0xff, 0x0a])), { ok: false, error: 'the policy is not UTF-8 text (bad byte at offset 3)' });
  assert.equal(decodePolicyBody(Buffer.from([0xc3])).ok, false);
  // Decodable but full of control characters: the parser refuses it.
  const nul = decodePolicyBody(Buffer.from([0x00, 0x01, 0x0a]));
  assert.ok(nul.ok);
  assert.equal(parseStsPolicy(nul.text).ok, false);
});
