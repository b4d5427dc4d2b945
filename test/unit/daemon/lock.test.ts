import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { acquireMasterLock, AlreadyRunningError, lockFilePath, masterLockHeld, waitForRelease } from '../../../src/daemon/lock.ts';
import { tempDir } from '../../harness/cli.ts';

test('one holder per queue directory; released on release(); the nonce file is private', async () => {
  const t = tempDir();
  const other = tempDir();
  try {
    assert.equal(await masterLockHeld(t.dir), false);
    const lock = await acquireMasterLock(t.dir);
    assert.equal(await masterLockHeld(t.dir), true);
    await assert.rejects(acquireMasterLock(t.dir, 50), (e: unknown) => e instanceof AlreadyRunningError && e.message === 'the sealpost mail system is already running');
    // Another queue directory has a lock of its own.
    const second = await acquireMasterLock(other.dir);
    await second.release();
    assert.match(readFileSync(lockFilePath(t.dir), 'utf8'), /^[0-9a-f]{32}\n$/);
    assert.equal(statSync(lockFilePath(t.dir)).mode & 0o777, 0o600);
    await lock.release();
    assert.equal(await masterLockHeld(t.dir), false);
    const again = await acquireMasterLock(t.dir);
    await again.release();
  } finally {
    t.cleanup();
    other.cleanup();
  }
});

test('the lock dies with its holder, even while the dead holder is an unreaped zombie', async () => {
  const t = tempDir();
  // sh starts the holder in the background and becomes `sleep`, which never reaps it.
  const holderScript = join(import.meta.dirname, 'fixtures', 'lock-holder.ts');
  const tsx = import.meta.resolve('tsx');
  const sh = spawn('sh', ['-c', `"${process.execPath}" --import "${tsx}" "${holderScript}" "${t.dir}" & echo "pid $!"; exec sleep 60`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    sh.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    for (let i = 0; i < 300 && !/held/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /held/);
    const pid = Number(/pid (\d+)/.exec(out)![1]);
    assert.equal(await masterLockHeld(t.dir), true);
    process.kill(pid, 'SIGKILL');
    assert.equal(await waitForRelease(t.dir, 2000, 5), true, 'released once the holder died');
    for (let i = 0; i < 100 && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); i++) await new Promise((r) => setTimeout(r, 10));
    assert.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^State:\s+Z/m, 'the dead holder is still a zombie');
    const lock = await acquireMasterLock(t.dir);
    await lock.release();
  } finally {
    sh.kill('SIGKILL');
    t.cleanup();
  }
});
