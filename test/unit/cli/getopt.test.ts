import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getopt } from '../../../src/cli/getopt.ts';
import { UsageError } from '../../../src/lib/errors.ts';

test('clustered flags, attached and separate arguments, POSIX stop at first operand', () => {
  const o = getopt(['-fq', 'Key', '-cdir', '-N', 'hash:/x', '-s'], 'c:fNq:s', 'usage');
  assert.deepEqual(o.list, [['f', undefined], ['q', 'Key'], ['c', 'dir'], ['N', undefined]]);
  assert.deepEqual(o.rest, ['hash:/x', '-s']);
  assert.equal(o.value('q'), 'Key');
  assert.equal(o.has('s'), false);
});

test('repeated options are kept in order; -- ends options', () => {
  const o = getopt(['-v', '-v', '-o', 'a=1', '-o', 'b=2', '--', '-x'], 'vo:', 'usage');
  assert.equal(o.count('v'), 2);
  assert.deepEqual(o.values('o'), ['a=1', 'b=2']);
  assert.deepEqual(o.rest, ['-x']);
});

test('unknown option and missing argument are usage errors', () => {
  assert.throws(() => getopt(['-z'], 'q:', 'usage: x'), (e: unknown) => e instanceof UsageError && e.before === "invalid option -- 'z'" && e.message === 'usage: x');
  assert.throws(() => getopt(['-q'], 'q:', 'usage: x'), (e: unknown) => e instanceof UsageError && e.before === "option requires an argument -- 'q'");
});
