import { test } from 'node:test';
import assert from 'node:assert/strict';
import { staticType, staticValue } from '../../../src/maps/static.ts';
import { failType } from '../../../src/maps/fail.ts';

test('static: value, braces strip whitespace, every key matches, no sequence', async () => {
  assert.equal(staticValue('foo'), 'foo');
  assert.equal(staticValue(' x'), ' x');
  assert.equal(staticValue('{ a b }'), 'a b');
  assert.equal(staticValue('{}'), '');
  const t = await staticType.open('{ relay:[mx] }', 'static:{ relay:[mx] }', {});
  assert.deepEqual(await t.lookup('anything'), { kind: 'found', value: 'relay:[mx]' });
  assert.equal(t.sequence, undefined);
});

test('static syntax errors in Postfix words', () => {
  assert.throws(() => staticValue('{ a b '), (e: Error) => e.message === `bad static:name syntax: missing '}' in "{ a b "`);
  assert.throws(() => staticValue('{ a b }x'), (e: Error) => e.message === `bad static:name syntax: syntax error after '}' in "{ a b }x"`);
});

test('fail: every lookup is an error, never not-found', async () => {
  const t = await failType.open('x', 'fail:x', {});
  const r = await t.lookup('k');
  assert.equal(r.kind, 'error');
  assert.equal(r.kind === 'error' && r.error.message, 'fail:x: Application error');
});
