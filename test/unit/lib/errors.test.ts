/**
 * errors.test.ts — describeError(): a UserError and a file-system error are
 * one line with their exit code (the path, what happened, the fix); anything
 * else is a bug report with its stack.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describeError, EX, fsUserError, UsageError, UserError } from '../../../src/lib/errors.ts';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('no error');
}

test('a UserError is its message and exit code', () => {
  assert.deepEqual(describeError(new UserError('x: bad', 3)), { message: 'x: bad', bug: false, exitCode: 3 });
  const u = new UsageError('usage: x', "invalid option -- 'z'");
  assert.deepEqual(describeError(u), { message: 'usage: x', bug: false, exitCode: EX.USAGE });
  assert.equal(u.before, "invalid option -- 'z'");
});

test('file-system errors: one line with the operation, the path, what happened and the fix', () => {
  const missing = describeError(thrown(() => readdirSync('/nonexistent/sealpost/maildrop')));
  assert.equal(missing.bug, false);
  assert.equal(missing.exitCode, EX.NOINPUT);
  assert.match(missing.message, /^cannot read directory \/nonexistent\/sealpost\/maildrop: no such file or directory: create it, or correct the setting/);
  const notDir = describeError(thrown(() => readFileSync('/etc/hostname/x')));
  assert.equal(notDir.exitCode, EX.OSFILE);
  assert.match(notDir.message, /^cannot open \/etc\/hostname\/x: a component of the path is not a directory: /);
  assert.ok(!missing.message.includes('\n') && !notDir.message.includes('\n'));
});

test('an error that crossed a worker thread as text is recognised by its libuv message', () => {
  const e = new Error("EACCES: permission denied, scandir '/var/spool/sealpost/maildrop'");
  const d = describeError(e);
  assert.equal(d.bug, false);
  assert.equal(d.exitCode, EX.NOPERM);
  assert.equal(
    d.message,
    'cannot read directory /var/spool/sealpost/maildrop: permission denied: run the command as root (or as the owner of /var/spool/sealpost/maildrop), or fix the permissions of /var/spool/sealpost/maildrop',
  );
  const space = describeError(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write', path: '/q/incoming/ABC' }));
  assert.equal(space.exitCode, EX.TEMPFAIL);
  assert.match(space.message, /^cannot write \/q\/incoming\/ABC: no space left on device: free space on the file system that holds \/q\/incoming\/ABC$/);
  const rename = describeError(Object.assign(new Error('EXDEV'), { code: 'EROFS', syscall: 'rename', path: '/a', dest: '/b' }));
  assert.match(rename.message, /^cannot rename \/a to \/b: read-only file system: /);
  assert.ok(fsUserError(e) instanceof UserError);
  assert.equal(fsUserError(new Error('plain')), undefined);
});

test('anything else is a bug, with its stack', () => {
  const d = describeError(new TypeError('oops'));
  assert.equal(d.bug, true);
  assert.equal(d.exitCode, EX.SOFTWARE);
  assert.match(d.message, /TypeError: oops\n\s+at /);
  assert.deepEqual(describeError('text'), { message: 'text', bug: true, exitCode: EX.SOFTWARE });
});
