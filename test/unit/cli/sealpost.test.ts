/**
 * sealpost.test.ts — the command lines of the one binary: postfix(1)'s global
 * options before the command (-c as MAIL_CONFIG, absolute only; -v; -D), the
 * binary invoked as `postfix` (postfix-script's commands and usage line),
 * `--help` per command (exit 0) while the Postfix-named tools keep Postfix's
 * option parsing, `version`/-V/--version, and "did you mean".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { COMMANDS, editDistance, suggest } from '../../../src/cli/commands.ts';

const env = { PATH: process.env.PATH };

function setup() {
  const t = tempDir();
  const etc = join(t.dir, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'main.cf'), `queue_directory = ${t.dir}/q\ndata_directory = ${t.dir}/d\n`);
  writeFileSync(join(etc, 'master.cf'), '127.0.0.1:2525 inet n - n - - smtpd\n');
  return { ...t, etc };
}

test('-c before the command is the command\'s MAIL_CONFIG; the command\'s own -c still wins', async () => {
  const t = setup();
  try {
    const r = await sealpost(['-c', t.etc, 'postconf', '-h', 'queue_directory'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${t.dir}/q\n`);
    const own = await sealpost(['-c', '/nonexistent', 'postconf', '-c', t.etc, '-h', 'queue_directory'], { env });
    assert.equal(own.stdout, `${t.dir}/q\n`);
    const st = await sealpost([`-vc${t.etc}`, 'status'], { env });
    assert.equal(st.code, 1);
    assert.equal(st.stderr, 'sealpost/sealpost-script: the sealpost mail system is not running\n');
    const rel = await sealpost(['-c', 'etc', 'status'], { env });
    assert.equal(rel.code, 64);
    assert.equal(rel.stderr, 'sealpost: fatal: -c requires absolute pathname\n');
    const bad = await sealpost(['-x', 'status'], { env });
    assert.equal(bad.code, 64);
    assert.equal(bad.stderr, "sealpost: invalid option -- 'x'\nsealpost: fatal: usage: sealpost [-c config_dir] [-Dv] command [options]\n");
  } finally {
    t.cleanup();
  }
});

test('-v before check prints the summary, as check -v; -D is accepted', async () => {
  const t = setup();
  try {
    const r = await sealpost(['-D', '-v', '-c', t.etc, 'check'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^config directory: /);
    assert.match(r.stdout, /result: OK/);
  } finally {
    t.cleanup();
  }
});

test('the binary invoked as postfix: postfix-script\'s commands; the others refused with its usage line', async () => {
  const t = setup();
  try {
    const pf = (args: string[]) => sealpost(args, { env, argv0: '/usr/sbin/postfix' });
    const st = await pf(['-c', t.etc, 'status', 'ignored-extra']);
    assert.equal(st.code, 1);
    assert.equal(st.stderr, 'sealpost/sealpost-script: the sealpost mail system is not running\n');
    const usage = 'Usage: postfix start (or start-fg, stop, reload, abort, flush, check, status, set-permissions)';
    const unknown = await pf(['-c', t.etc, 'bogus']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, `sealpost/sealpost-script: fatal: unknown command: 'bogus'. ${usage}\n`);
    const typo = await pf(['-c', t.etc, 'stauts']);
    assert.equal(typo.stderr, `sealpost/sealpost-script: fatal: unknown command: 'stauts' (did you mean "status"?). ${usage}\n`);
    const missing = await pf(['-c', t.etc, 'upgrade-configuration']);
    assert.equal(missing.stderr, `sealpost/sealpost-script: fatal: "upgrade-configuration" is a Postfix command that sealpost does not have. ${usage}\n`);
    const none = await pf([]);
    assert.equal(none.stderr, `sealpost/sealpost-script: fatal: unknown command: ''. ${usage}\n`);
    const opt = await pf(['-z', 'status']);
    assert.equal(opt.code, 1);
    assert.equal(opt.stderr, "postfix: invalid option -- 'z'\npostfix: fatal: usage: postfix [-c config_dir] [-Dv] command\n");
    assert.equal((await pf(['-c', 'relative', 'status'])).stderr, 'postfix: fatal: -c requires absolute pathname\n');
    const chk = await pf(['-c', t.etc, 'check']);
    assert.equal(chk.code, 0, chk.stderr);
  } finally {
    t.cleanup();
  }
});

test('sealpost <command> --help prints the command\'s usage and exits 0, for every command', async () => {
  for (const name of Object.keys(COMMANDS)) {
    const r = await sealpost([name, '--help'], { env });
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: /, name);
    assert.equal(r.stderr, '');
    assert.equal((await sealpost(['help', name], { env })).stdout, r.stdout);
  }
  const list = await sealpost(['--help'], { env });
  assert.equal(list.code, 0);
  assert.match(list.stdout, /^usage: sealpost \[-c config_dir\] \[-Dv\] command/);
  assert.match(list.stdout, /\n {2}tls-finger {3}/);
  const none = await sealpost([], { env });
  assert.equal(none.code, 64);
  assert.match(none.stderr, /^usage: sealpost/);
});

test('a subcommand\'s --help (tls explain|report|proof|sts, tlsrpt send) prints its usage and exits 0', async () => {
  for (const sub of ['explain', 'report', 'proof', 'sts']) {
    for (const args of [['tls', sub, '--help'], ['tls', '-c', '/nonexistent', sub, '--help']]) {
      const r = await sealpost(args, { env });
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^usage: sealpost tls ${sub} `), args.join(' '));
      assert.equal(r.stderr, '');
    }
  }
  const rpt = await sealpost(['tlsrpt', 'send', '--help'], { env });
  assert.equal(rpt.code, 0, rpt.stderr);
  assert.match(rpt.stdout, /^usage: sealpost tlsrpt /);
  // Not a help request: a bad option is still a usage error.
  assert.equal((await sealpost(['tls', 'sts', '--bogus'], { env })).code, 64);
});

test('under a Postfix tool\'s name, --help is Postfix\'s usage error (Postfix\'s getopt sees -, -h, ...)', async () => {
  const r = await sealpost(['--help'], { env, argv0: 'postmap' });
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /invalid option -- '-'/);
  assert.match(r.stderr, /^sealpost\/postmap: invalid option -- '-'\nsealpost\/postmap: fatal: usage: \S*postmap \[-bfFhimnNoprsuUvw\]/);
  assert.equal(r.stdout, '');
});

test('version, -V, --version', async () => {
  for (const args of [['version'], ['-V'], ['--version']]) {
    const r = await sealpost(args, { env });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^sealpost \d+\.\d+\.\d+ \(\d{8}\)\nNode\.js v\d+/);
  }
});

test('did you mean: edit distance, transpositions, prefixes', async () => {
  assert.equal(editDistance('strat', 'start'), 1);
  assert.equal(editDistance('postmpa', 'postmap'), 1);
  assert.deepEqual(suggest('strat', Object.keys(COMMANDS)), ['start']);
  assert.deepEqual(suggest('mialq', Object.keys(COMMANDS)), ['mailq']);
  assert.deepEqual(suggest('tls-fing', Object.keys(COMMANDS)), ['tls-finger']);
  assert.deepEqual(suggest('xyzzy', Object.keys(COMMANDS)), []);
  const r = await sealpost(['postmpa', '-q', 'x'], { env });
  assert.equal(r.code, 64);
  assert.equal(r.stderr, 'sealpost: fatal: unknown command "postmpa" (did you mean "postmap"?); run "sealpost help" for the list\n');
  const far = await sealpost(['xyzzy'], { env });
  assert.equal(far.stderr, 'sealpost: fatal: unknown command "xyzzy"; run "sealpost help" for the list\n');
});

test('newaliases is sendmail -bi: nothing to build, exit 0', async () => {
  const t = setup();
  try {
    const r = await sealpost([], { env: { ...env, MAIL_CONFIG: t.etc }, argv0: 'newaliases' });
    assert.equal(r.code, 0, r.stderr);
    const bad = await sealpost(['x@y'], { env: { ...env, MAIL_CONFIG: t.etc }, argv0: 'newaliases' });
    assert.equal(bad.code, 75);
    assert.equal(bad.stderr, 'newaliases: fatal: alias initialization mode requires no recipient\n');
  } finally {
    t.cleanup();
  }
});
