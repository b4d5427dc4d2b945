/**
 * Unit tests for main-cf.ts: logical lines, comments, errors with file and line, and -e/-X/-# editing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { editMainCf, parseMainCf } from '../../../src/config/main-cf.ts';
import { ConfigError } from '../../../src/lib/errors.ts';

test('name = value, optional whitespace, continuation, comments inside a logical line', () => {
  const r = parseMainCf('# c\nrelayhost=[x]\nmydomain\t=\t y z \nmynetworks = a\n  # comment\n\n   b\nempty =\nrelayhost = b # not a comment\r\n', '/m');
  assert.deepEqual(
    r.entries.map((e) => [e.name, e.value, e.line, e.lines]),
    [
      ['relayhost', '[x]', 2, [2]],
      ['mydomain', 'y z', 3, [3]],
      ['mynetworks', 'a b', 4, [4, 7]],
      ['empty', '', 8, [8]],
      ['relayhost', 'b # not a comment', 9, [9]],
    ],
  );
  assert.deepEqual(r.warnings, []);
});

test('leading whitespace before the first entry is a warning with file and line', () => {
  const r = parseMainCf('  lead = x\nk = v\n', '/etc/sealpost/main.cf');
  assert.deepEqual(r.warnings, ['/etc/sealpost/main.cf, line 1: logical line must not start with whitespace: "  lead = x"']);
  assert.equal(r.entries.length, 1);
});

test('malformed lines are ConfigErrors naming file and line, in Postfix wording', () => {
  assert.throws(() => parseMainCf('a = b\nbad line\n', '/m'), (e: unknown) => e instanceof ConfigError && e.message === `/m, line 2: missing '=' after attribute name: "bad line"`);
  assert.throws(() => parseMainCf('=x\n', '/m'), (e: unknown) => e instanceof ConfigError && e.message === '/m, line 1: missing attribute name: "=x"' && e.line === 1);
});

test('editMainCf: replace every entry, keep comments, append new names, report duplicates', () => {
  const text = 'relayhost = a\n# x\n\n  c\nmydomain = q\nrelayhost = b\n';
  const r = editMainCf(text, [{ op: 'set', name: 'relayhost', value: 'z' }, { op: 'set', name: 'newp', value: '1' }], '/m');
  assert.equal(r.text, 'relayhost = z\n# x\n\nmydomain = q\nrelayhost = z\nnewp = 1\n');
  assert.deepEqual(r.duplicates, ['relayhost']);
});

test('editMainCf: remove and comment out whole logical lines', () => {
  const text = 'relayhost = [x]\n  :25\nmydomain=b\n';
  assert.equal(editMainCf(text, [{ op: 'remove', name: 'relayhost' }], '/m').text, 'mydomain=b\n');
  assert.equal(editMainCf(text, [{ op: 'comment', name: 'relayhost' }], '/m').text, '#relayhost = [x]\n#  :25\nmydomain=b\n');
  assert.equal(editMainCf('', [{ op: 'set', name: 'a', value: '1' }, { op: 'set', name: 'b', value: '2' }, { op: 'set', name: 'a', value: '3' }], '/m').text, 'b = 2\na = 3\n');
});
