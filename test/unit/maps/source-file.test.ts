import { test } from 'node:test';
import assert from 'node:assert/strict';
import { foldKey, logicalLines, parseSource, problemMessage } from '../../../src/maps/source-file.ts';

test('logical lines: comments, blank lines, continuation with its leading whitespace', () => {
  const text = '# c\nfoo bar\n  continued\n\n   \n  # indented comment\n# col-0 comment\n\tmore\nnext v\n';
  assert.deepEqual(logicalLines(text), [
    { text: 'foo bar  continued\tmore', line: 2 },
    { text: 'next v', line: 9 },
  ]);
});

test('a leading-whitespace logical line is reported with at most 30 characters', () => {
  const items = parseSource('  this line is much longer than thirty characters\nk v\n');
  assert.equal(items[0]!.kind, 'leading-whitespace');
  assert.equal(
    problemMessage('src', items[0] as never),
    'src: logical line must not start with whitespace: "  this line is much longer tha..."',
  );
  assert.deepEqual(items[1], { kind: 'entry', key: 'k', value: 'v', line: 2 });
});

test('key ends at first unquoted whitespace; quotes are kept; value trimmed', () => {
  const items = parseSource('"a b" quoted val\n"a\\"c" esc\n"x\\\\y" bs\nBaz\tv1  \t v2  \r\n"q"x val\n');
  assert.deepEqual(
    items.map((i) => (i.kind === 'entry' ? [i.key, i.value] : i.kind)),
    [
      ['"a b"', 'quoted val'],
      ['"a\\"c"', 'esc'],
      ['"x\\\\y"', 'bs'],
      ['Baz', 'v1  \t v2'],
      ['"q"x', 'val'],
    ],
  );
});

test('problems: missing value, unbalanced quote, alias format (kept), with first-line numbers', () => {
  const items = parseSource('a 1\nnovalue\n# c\n"abc\n  def\nk:  v\nK4 v4\r\nk5\r\n');
  const msgs = items.filter((i) => i.kind !== 'entry').map((p) => problemMessage('s', p as never));
  assert.deepEqual(msgs, [
    's, line 2: expected format: key whitespace value',
    `s, line 4: unbalanced '"' in '"abc  def' -- ignoring this line`,
    's, line 6: record is in "key: value" format; is this an alias file?',
    's, line 8: expected format: key whitespace value',
  ]);
  const entries = items.filter((i) => i.kind === 'entry').map((e) => (e.kind === 'entry' ? `${e.key}=${e.value}` : ''));
  assert.deepEqual(entries, ['a=1', 'k:=v', 'K4=v4']);
  assert.equal(
    problemMessage('s', { kind: 'no-value', line: 2, text: 'x' }, 'texthash'),
    's, line 2: expected format: key whitespace value -- ignoring this line',
  );
});

test('empty and whitespace-only sources have no items; a last line without newline counts', () => {
  assert.deepEqual(parseSource(''), []);
  assert.deepEqual(parseSource('  \n\t\n\n'), []);
  assert.deepEqual(parseSource('last noeol'), [{ kind: 'entry', key: 'last', value: 'noeol', line: 1 }]);
});

test('foldKey lowercases ASCII only (C locale)', () => {
  assert.equal(foldKey('MiXeD.Example.COM'), 'mixed.example.com');
  assert.equal(foldKey('ÄÖ-Ab'), 'ÄÖ-ab');
});
