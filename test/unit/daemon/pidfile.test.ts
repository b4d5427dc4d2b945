import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { acquirePidFile, AlreadyRunningError, isAlive, readDaemonPid, releasePidFile } from '../../../src/daemon/pidfile.ts';
import { tempDir } from '../../harness/cli.ts';

test('acquire writes the pid; release removes only its own file', () => {
  const t = tempDir();
  try {
    acquirePidFile(t.dir, process.pid);
    assert.equal(readFileSync(join(t.dir, 'pid', 'master.pid'), 'utf8'), `${process.pid}\n`);
    assert.equal(readDaemonPid(t.dir), process.pid);
    assert.equal(releasePidFile(t.dir, process.pid + 1), false);
    assert.equal(releasePidFile(t.dir, process.pid), true);
    assert.equal(existsSync(join(t.dir, 'pid', 'master.pid')), false);
    assert.equal(readDaemonPid(t.dir), undefined);
  } finally {
    t.cleanup();
  }
});

test('a live holder refuses; a dead or garbage one is replaced', () => {
  const t = tempDir();
  try {
    mkdirSync(join(t.dir, 'pid'));
    writeFileSync(join(t.dir, 'pid', 'master.pid'), `${process.ppid}\n`);
    assert.throws(() => acquirePidFile(t.dir, process.pid), (e: unknown) => e instanceof AlreadyRunningError && e.message === 'the sealpost mail system is already running');
    writeFileSync(join(t.dir, 'pid', 'master.pid'), '999999999\n');
    assert.equal(isAlive(999999999), false);
    assert.equal(readDaemonPid(t.dir), undefined);
    acquirePidFile(t.dir, process.pid);
    assert.equal(readDaemonPid(t.dir), process.pid);
    writeFileSync(join(t.dir, 'pid', 'master.pid'), 'garbage');
    acquirePidFile(t.dir, process.pid);
    assert.equal(readDaemonPid(t.dir), process.pid);
  } finally {
    t.cleanup();
  }
});
