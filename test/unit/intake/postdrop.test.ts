/**
 * The setgid helpers as built by `sealpost set-permissions` (native/*.c),
 * run as nobody: postdrop names the file as queue-id.ts does (short and long
 * IDs from the file's inode), keeps the submitter as owner with mode 0444,
 * enforces message_size_limit, reads main.cf with comments and continuation
 * lines, and refuses $name values; postqueue reports a daemon that is down.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAccounts } from '../../../src/cli/set-permissions.ts';
import { parseQueueId } from '../../../src/queue/queue-id.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';

function asNobody(cmd: string, args: readonly string[], input = ''): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...args], { input, encoding: 'utf8', env: {} });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function setup(mainCf: (q: string) => string) {
  assert.equal(process.geteuid?.(), 0, 'set-permissions runs as root');
  ensureAccounts('sealpost', 'sealdrop', '/var/spool/sealpost');
  const t = tempDir();
  chmodSync(t.dir, 0o755);
  const etc = join(t.dir, 'etc');
  const q = join(t.dir, 'q');
  mkdirSync(etc);
  writeFileSync(join(etc, 'main.cf'), `${mainCf(q)}\ndata_directory = ${join(t.dir, 'data')}\ndaemon_directory = ${join(t.dir, 'libexec')}\n`);
  const r = await sealpost(['set-permissions', '-c', etc]);
  assert.equal(r.code, 0, r.stderr);
  return { t, etc, q, postdrop: join(t.dir, 'libexec', 'postdrop'), postqueue: join(t.dir, 'libexec', 'postqueue') };
}

test('postdrop: long queue IDs from the inode, submitter-owned 0444 files, the size limit, main.cf syntax', async () => {
  const s = await setup((q) => ['# a comment', 'enable_long_queue_ids =', '   yes', `queue_directory = ${q}`, 'message_size_limit = 1000'].join('\n'));
  try {
    const ok = asNobody(s.postdrop, ['-c', s.etc], 'queue file bytes');
    assert.equal(ok.code, 0, ok.stderr);
    const id = ok.stdout.trim();
    assert.deepEqual(readdirSync(join(s.q, 'maildrop')), [id]);
    const st = statSync(join(s.q, 'maildrop', id));
    const parsed = parseQueueId(id);
    assert.equal(parsed?.form, 'long', id);
    assert.equal(parsed?.inode, BigInt(st.ino));
    assert.equal(st.uid, 65534);
    assert.equal(st.mode & 0o777, 0o444);
    assert.equal(readFileSync(join(s.q, 'maildrop', id), 'utf8'), 'queue file bytes');
    // The limit: message_size_limit plus 1 MiB for the envelope.
    const big = asNobody(s.postdrop, ['-c', s.etc], 'x'.repeat(1000 + 1024 * 1024 + 1));
    assert.equal(big.code, 65);
    assert.equal(big.stderr, 'postdrop: fatal: Message file too big\n');
    assert.equal(readdirSync(join(s.q, 'maildrop')).length, 1, 'nothing left behind');
    // Nobody may list or read maildrop/ without the helper.
    assert.notEqual(asNobody('ls', [join(s.q, 'maildrop')]).code, 0);
  } finally {
    s.t.cleanup();
  }
});

test('postdrop: short IDs by default; a $name queue_directory is refused with the fix; postqueue with the daemon down', async () => {
  const s = await setup((q) => `queue_directory = ${q}`);
  try {
    const ok = asNobody(s.postdrop, ['-c', s.etc, '-N', 'sendmail'], 'x');
    assert.equal(ok.code, 0, ok.stderr);
    const parsed = parseQueueId(ok.stdout.trim());
    assert.equal(parsed?.form, 'short');
    assert.equal(parsed?.inode, BigInt(statSync(join(s.q, 'maildrop', ok.stdout.trim())).ino));
    const down = asNobody(s.postqueue, ['-c', s.etc, '-p']);
    assert.equal(down.code, 69);
    assert.equal(down.stderr, 'postqueue: fatal: Queue report unavailable - mail system is down (Connect to the sealpost showq service: No such file or directory)\n');
    const usage = asNobody(s.postqueue, ['-c', s.etc]);
    assert.equal(usage.code, 64);
    writeFileSync(join(s.etc, 'main.cf'), `spool = ${s.q}\nqueue_directory = $spool\n`);
    const dollar = asNobody(s.postdrop, ['-c', s.etc], 'x');
    assert.equal(dollar.code, 75);
    assert.equal(dollar.stderr, `postdrop: fatal: ${s.etc}/main.cf: queue_directory = $spool: write the value without $name expansion for the setgid helpers\n`);
  } finally {
    s.t.cleanup();
  }
});
