/**
 * cli-unprivileged-errors — no command ends in a stack trace. Each command
 * runs as a real process, as the unprivileged user `nobody` (setpriv), against
 * (a) a queue directory it may not read, (b) a configuration directory it may
 * not read, (c) a configuration directory that does not exist. What it may
 * not do ends in one `fatal:` line naming the path (or the setting) and the
 * fix, with a non-zero exit; never `internal error`, never an `at ...` frame.
 *
 * Needs root (to become nobody) and util-linux's setpriv (Debian base).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sealpost, tempDir } from '../harness/cli.ts';

const BIN = fileURLToPath(new URL('../harness/sealpost-bin.ts', import.meta.url));
const NOBODY = 65534;

let dir: string;
let cleanup: () => void;

before(async () => {
  assert.equal(process.getuid?.(), 0, 'this test becomes nobody and needs root');
  const t = tempDir('sealpost-unpriv-');
  dir = t.dir;
  cleanup = t.cleanup;
  chmodSync(dir, 0o755);
  // (a) readable configuration, unreadable queue (root's, mode 0700 as sealpost makes it).
  const etc = join(dir, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'main.cf'), `queue_directory = ${dir}/q\ndata_directory = ${dir}/d\nmaillog_file = ${dir}/maillog\n`);
  writeFileSync(join(etc, 'master.cf'), '127.0.0.1:2525 inet n - n - - smtpd\n');
  writeFileSync(join(etc, 'table'), 'key value\n', { mode: 0o600 });
  const sent = await sealpost(['sendmail', 'bob@example.com'], { stdin: 'Subject: x\n\nbody\n', env: { PATH: process.env.PATH, MAIL_CONFIG: etc } });
  assert.equal(sent.code, 0, sent.stderr);
  chmodSync(join(dir, 'q'), 0o700);
  // (b) a configuration directory only root may read.
  const secret = join(dir, 'secret');
  mkdirSync(secret, { mode: 0o700 });
  writeFileSync(join(secret, 'main.cf'), `queue_directory = ${dir}/q\n`);
});

after(() => cleanup?.());

interface Result {
  readonly code: number | null;
  readonly stderr: string;
  readonly stdout: string;
}

function asNobody(args: readonly string[], configDir: string, stdin = ''): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(
      'setpriv',
      [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', import.meta.resolve('tsx'), BIN, ...args],
      { cwd: dir, env: { PATH: process.env.PATH, MAIL_CONFIG: configDir, HOME: '/nonexistent' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

/** The commands of the brief, each as `sealpost <args>`. */
function commands(etc: string): ReadonlyArray<{ args: string[]; stdin?: string }> {
  return [
    { args: ['mailq'] },
    { args: ['postqueue', '-p'] },
    { args: ['postqueue', '-j'] },
    { args: ['postqueue', '-f'] },
    { args: ['postsuper', '-d', 'ALL'] },
    { args: ['postcat', '-q', 'ABCDEF012'] },
    { args: ['postconf', '-n'] },
    { args: ['postmap', '-q', 'key', `texthash:${etc}/table`] },
    { args: ['postmap', `hash:${etc}/table`] },
    { args: ['sendmail', 'bob@example.com'], stdin: 'Subject: x\n\nbody\n' },
    { args: ['check'] },
    { args: ['start'] },
    { args: ['status'] },
    { args: ['stop'] },
    { args: ['tls', 'explain', '-n', 'bob@example.com'] },
    { args: ['tls-finger', '-z', 'example.com'] },
  ];
}

/** One clean failure: a non-zero exit, one fatal line (check reports one `error:` line per problem), no stack. */
function assertClean(name: string, r: Result, mayPass: boolean): void {
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.ok(!lines.some((l) => /^\s+at /.test(l)), `${name}: stack frames:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /internal error|sealpost bug|Error: E[A-Z]+:/, `${name}:\n${r.stderr}`);
  if (mayPass && r.code === 0) return;
  assert.notEqual(r.code, 0, `${name}: exit 0\n${r.stderr}`);
  const fatal = lines.filter((l) => /: (fatal|error): /.test(l));
  const failed = fatal.length > 0 || /not running/.test(r.stderr);
  assert.ok(failed, `${name}: no fatal line\n${r.stderr}`);
  // Postfix's own pair for a configuration directory the setgid helpers do not trust
  // (mail_conf.c): `error: unauthorized configuration directory name: DIR`, then
  // `fatal: specify "alternate_config_directories = DIR" ...` — one failure in two lines.
  const unauthorized = lines.some((l) => /: error: unauthorized configuration directory name: /.test(l));
  const allowed = unauthorized ? 2 : 1;
  if (!name.startsWith('check')) assert.ok(fatal.length <= allowed, `${name}: more than one fatal line\n${r.stderr}`);
}

test('an unreadable queue directory: one line per command, no stack trace', async () => {
  const etc = join(dir, 'etc');
  // Commands that never touch the queue may succeed.
  const noQueue = new Set(['postconf', 'tls', 'postmap']);
  const results = await Promise.all(commands(etc).map(async (c) => ({ c, r: await asNobody(c.args, etc, c.stdin) })));
  for (const { c, r } of results) {
    assertClean(c.args.join(' '), r, noQueue.has(c.args[0]!) && !c.args.includes(`hash:${etc}/table`) && !c.args.includes(`texthash:${etc}/table`));
  }
  const byName = new Map(results.map(({ c, r }) => [c.args.join(' '), r]));
  // At the source: the path and the fix are named.
  // An unprivileged mailq goes through the setgid postqueue helper (daemon down: `mail system is
  // down`); where `sealpost set-permissions` has not built the helper yet, the line says so.
  // Where the helper exists but the default main.cf does not list this directory in
  // alternate_config_directories (a machine where `sealpost set-permissions` ran), the helper
  // refuses the directory as Postfix's postqueue does.
  assert.match(byName.get('mailq')!.stderr, new RegExp(`fatal: (.*${dir}/q/\\w+.*(permission denied|mail system is down)|cannot run \\S+/postqueue: .*run \\(as root\\): sealpost set-permissions|specify "alternate_config_directories = ${etc}")`));
  assert.match(byName.get('postsuper -d ALL')!.stderr, /fatal: .*permission denied: run the command as root/);
  assert.match(byName.get('postcat -q ABCDEF012')!.stderr, new RegExp(`fatal: cannot access ${dir}/q/maildrop: permission denied`));
  assert.match(byName.get(`postmap -q key texthash:${etc}/table`)!.stderr, new RegExp(`${etc}/table`));
});

test('an unreadable configuration directory: one line naming main.cf, for every command', async () => {
  const secret = join(dir, 'secret');
  const results = await Promise.all(commands(secret).map(async (c) => ({ c, r: await asNobody(c.args, secret, c.stdin) })));
  for (const { c, r } of results) {
    assertClean(c.args.join(' '), r, false);
    if (c.args[0] !== 'tls-finger') assert.match(r.stderr, new RegExp(`${secret}/main\\.cf: permission denied|${secret}/table|${secret}`), `${c.args.join(' ')}: ${r.stderr}`);
  }
});

test('a configuration directory that does not exist: one line naming it, for every command', async () => {
  const missing = join(dir, 'no-such-dir');
  const results = await Promise.all(commands(missing).map(async (c) => ({ c, r: await asNobody(c.args, missing, c.stdin) })));
  for (const { c, r } of results) {
    assertClean(c.args.join(' '), r, false);
    if (c.args[0] !== 'tls-finger') assert.match(r.stderr, new RegExp(`${missing}`), `${c.args.join(' ')}: ${r.stderr}`);
  }
});
