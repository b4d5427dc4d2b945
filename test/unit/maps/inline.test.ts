import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inlineType, parseInline, splitNameValue } from '../../../src/maps/inline.ts';

test('inline parsing: pairs, braces with spaces and commas, later duplicates replace', async () => {
  assert.deepEqual(parseInline('{ a=b, { c = d e, f } }'), [['a', 'b'], ['c', 'd e, f']]);
  assert.deepEqual(parseInline('{ a=b,,c=d }'), [['a', 'b'], ['c', 'd']]);
  const t = await inlineType.open('{b=1,A=2,a=4, {x=}}', 'inline:{...}', {});
  assert.deepEqual(await t.lookup('a'), { kind: 'found', value: '4' });
  assert.deepEqual(await t.lookup('X'), { kind: 'found', value: '' });
  assert.deepEqual(await t.lookup('zz'), { kind: 'notfound' });
  const seq = [];
  for await (const e of t.sequence!()) seq.push(e);
  assert.deepEqual(seq, [['b', '1'], ['a', '4'], ['x', '']]);
});

test('inline errors in Postfix words', () => {
  const need = (n: string) => `"inline:${n}"; need "inline:{name=value...}"`;
  const cases: Array<[string, string]> = [
    ['{}', `bad syntax: ${need('{}')}`],
    ['{a=b', `bad syntax: ${need('{a=b')}`],
    ['a=b', `bad syntax: ${need('a=b')}`],
    ['{a=b}}', `bad syntax: ${need('{a=b}}')}`],
    ['{ }', `empty table: ${need('{ }')}`],
    ['{ A = B , c }', `missing '=' after attribute name: ${need('{ A = B , c }')}`],
    ['{ {a=b}x }', `syntax error after '}' in "{a=b}x": ${need('{ {a=b}x }')}`],
    ['{ =x }', `missing attribute name: ${need('{ =x }')}`],
  ];
  for (const [name, msg] of cases) assert.throws(() => parseInline(name), (e: Error) => e.message === msg, name);
  assert.deepEqual(splitNameValue('  k =  v w  '), ['k', 'v w']);
});
