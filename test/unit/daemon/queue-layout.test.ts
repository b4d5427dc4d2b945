import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayout, queueLayout } from '../../../src/daemon/queue-layout.ts';
import { ALL_QUEUES, SIDE_DIRS } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';

// IDs that need no account: the layout only chowns (the tests run as root).
const plan = { owner: { name: 'owner', uid: 4001, gid: 4001 }, setgidGroup: { name: 'drop', gid: 4002 } };

function mode(path: string): string {
  const st = statSync(path);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
}

test('the rules cover every spool directory, parents first; relative or root paths are refused', () => {
  const rules = queueLayout('/q', '/d');
  const paths = rules.map((r) => r.path);
  for (const d of [...ALL_QUEUES, ...SIDE_DIRS, 'pid', 'private']) assert.ok(paths.includes(`/q/${d}`), d);
  assert.ok(paths.indexOf('/q/public') < paths.indexOf('/q/public/flush'));
  assert.equal(paths[0], '/q');
  assert.throws(() => queueLayout('q', '/d'), /queue_directory = q: use an absolute path/);
  assert.throws(() => queueLayout('/q', '/'), /data_directory = \/: use an absolute path of a directory of its own/);
});

test('created with Postfix\'s owners and modes; a root-owned old queue is repaired with its files', () => {
  assert.equal(process.geteuid?.(), 0, 'the test suite runs as root');
  const t = tempDir();
  try {
    const q = join(t.dir, 'q');
    const first = applyLayout(queueLayout(q, join(t.dir, 'lib', 'data')), plan, { everyFile: false });
    assert.ok(first.created.includes(join(q, 'maildrop')));
    assert.equal(mode(q), '0:0 755');
    assert.equal(mode(join(q, 'pid')), '0:0 755');
    assert.equal(mode(join(q, 'maildrop')), '4001:4002 1730');
    assert.equal(mode(join(q, 'public')), '4001:4002 2710');
    assert.equal(mode(join(q, 'incoming')), '4001:0 700');
    assert.equal(mode(join(t.dir, 'lib', 'data')), '4001:0 700');
    assert.equal(mode(join(t.dir, 'lib')), '0:0 755', 'a missing parent is an ordinary directory');

    // A queue left by a root-run daemon: the directory and its files go to the owner.
    chownSync(join(q, 'deferred'), 0, 0);
    writeFileSync(join(q, 'deferred', 'ABC'), 'x', { mode: 0o600 });
    writeFileSync(join(q, 'incoming', 'DEF'), 'x', { mode: 0o600 });
    symlinkSync('/etc/passwd', join(q, 'deferred', 'link'));
    const again = applyLayout(queueLayout(q, join(t.dir, 'lib', 'data')), plan, { everyFile: false });
    assert.deepEqual(again.created, []);
    assert.deepEqual(again.fixed, [`${join(q, 'deferred')}: owner 0:0 -> 4001:0`]);
    assert.equal(again.filesFixed, 1, 'only inside the directory that was wrong; the symbolic link is not followed');
    assert.equal(statSync(join(q, 'deferred', 'ABC')).uid, 4001);
    assert.equal(statSync(join(q, 'incoming', 'DEF')).uid, 0);
    assert.equal(statSync('/etc/passwd').uid, 0);
    // set-permissions: every file; an old root-only maildrop file becomes readable for pickup.
    writeFileSync(join(q, 'maildrop', 'GHI'), 'x', { mode: 0o600 });
    const all = applyLayout(queueLayout(q, join(t.dir, 'lib', 'data')), plan, { everyFile: true });
    assert.equal(all.filesFixed, 2);
    assert.equal(statSync(join(q, 'incoming', 'DEF')).uid, 4001);
    assert.equal(mode(join(q, 'maildrop', 'GHI')), '0:0 444');
  } finally {
    t.cleanup();
  }
});

test('a file where a directory belongs, or a symbolic link, is refused with the fix', () => {
  const t = tempDir();
  try {
    const q = join(t.dir, 'q');
    mkdirSync(q);
    writeFileSync(join(q, 'maildrop'), '');
    assert.throws(() => applyLayout(queueLayout(q, join(t.dir, 'd')), plan, { everyFile: false }), /maildrop exists and is not a directory: move it away and run: sealpost set-permissions/);
    const q2 = join(t.dir, 'q2');
    symlinkSync(t.dir, q2);
    assert.throws(() => applyLayout(queueLayout(q2, join(t.dir, 'd')), plan, { everyFile: false }), /q2 is a symbolic link/);
  } finally {
    t.cleanup();
  }
});

test('the TLS-RPT store ($data_directory/tlsrpt) belongs to mail_owner, and so do its files at every start', () => {
  const t = tempDir();
  try {
    const q = join(t.dir, 'q');
    const data = join(t.dir, 'data');
    applyLayout(queueLayout(q, data), plan, { everyFile: false });
    assert.equal(mode(join(data, 'tlsrpt')), '4001:0 700');
    // `sealpost tlsrpt send --now` as root while the daemon was down wrote root's files.
    mkdirSync(join(data, 'tlsrpt', 'outbox'));
    writeFileSync(join(data, 'tlsrpt', 'outbox', 'r1.json'), '{}', { mode: 0o600 });
    writeFileSync(join(data, 'tlsrpt', 'lock'), '1\n', { mode: 0o600 });
    const again = applyLayout(queueLayout(q, data), plan, { everyFile: false });
    assert.deepEqual(again.fixed, []);
    assert.equal(again.filesFixed, 3);
    for (const f of ['outbox', join('outbox', 'r1.json'), 'lock']) assert.equal(statSync(join(data, 'tlsrpt', f)).uid, 4001, f);
  } finally {
    t.cleanup();
  }
});
