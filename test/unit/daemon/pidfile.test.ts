import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquireMasterLock } from '../../../src/daemon/lock.ts';
import { daemonPid, readPidFile, removePidFile, writePidFile } from '../../../src/daemon/pidfile.ts';
import { tempDir } from '../../harness/cli.ts';

test('write replaces a stale file; remove removes only its own', () => {
  const t = tempDir();
  try {
    writePidFile(t.dir, 999999999);
    writePidFile(t.dir, process.pid);
    assert.equal(readFileSync(join(t.dir, 'pid', 'master.pid'), 'utf8'), `${process.pid}\n`);
    assert.equal(readPidFile(t.dir), process.pid);
    assert.equal(removePidFile(t.dir, process.pid + 1), false);
    assert.equal(removePidFile(t.dir, process.pid), true);
    assert.equal(existsSync(join(t.dir, 'pid', 'master.pid')), false);
    writeFileSync(join(t.dir, 'pid', 'master.pid'), 'garbage');
    assert.equal(readPidFile(t.dir), undefined);
  } finally {
    t.cleanup();
  }
});

test('daemonPid: a pid file alone (a dead or live PID) is not a running master; the lock is', async () => {
  const t = tempDir();
  try {
    writePidFile(t.dir, process.pid); // a live process, but it holds no lock
    assert.equal(await daemonPid(t.dir), undefined);
    const lock = await acquireMasterLock(t.dir);
    assert.equal(await daemonPid(t.dir), process.pid);
    await lock.release();
    assert.equal(await daemonPid(t.dir), undefined);
  } finally {
    t.cleanup();
  }
});
