/**
 * Differential tests: `sealpost postconf` against Debian's /usr/sbin/postconf
 * (Postfix 3.7) on a corpus of tricky main.cf and master.cf files.
 *
 * stdout must be byte-identical. stderr is compared as a set of warning texts
 * after removing the program prefix and sealpost's extra `, line N` (Postfix
 * prints some warnings several times, and in hash-table order).
 * Deliberate differences (system-dependent values, compatibility_level, the
 * Postfix 3.8–3.11 defaults, sealpost_* names) are listed in EXCLUDED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { postfix, postfixTool, sealpost, tempDir } from '../harness/cli.ts';
import type { RunResult } from '../harness/cli.ts';
import { paramSpec, POSTFIX_3_8_TO_3_11, SEALPOST_DEFAULTS, SYSTEM_PARAMS } from '../../src/config/params.ts';

/** Names whose -d output differs on purpose (docs/parameters.md). */
const EXCLUDED = new Set<string>([...SYSTEM_PARAMS, 'compatibility_level', ...Object.keys(POSTFIX_3_8_TO_3_11), ...Object.keys(SEALPOST_DEFAULTS)]);

/** Postfix's msg_fatal() sleeps a second: run failing commands concurrently. */
function postconfAsync(args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(postfixTool('postconf'), args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' }, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

function normStderr(text: string): string[] {
  const lines = text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^(\/usr\/sbin\/postconf|sealpost\/postconf): /, '').replace(/, line \d+:/, ':'))
    // Postfix names both entries in its duplicate warning (it reads main.cf twice); unit-tested on our side.
    .filter((l) => !l.includes('overriding earlier entry'));
  return [...new Set(lines)].sort();
}

function withDir(mainCf: string | undefined, masterCf = ''): { dir: string; cleanup: () => void } {
  const t = tempDir('sealpost-postconf-diff-');
  if (mainCf !== undefined) writeFileSync(join(t.dir, 'main.cf'), mainCf);
  writeFileSync(join(t.dir, 'master.cf'), masterCf);
  return t;
}

/** Compare several postconf invocations on one main.cf; Postfix runs concurrently (its warnings are slow). */
async function compareMany(mainCf: string, argsList: ReadonlyArray<readonly string[]>, masterCf = ''): Promise<void> {
  const { dir, cleanup } = withDir(mainCf, masterCf);
  try {
    const wants = await Promise.all(argsList.map((args) => postconfAsync(['-c', dir, ...args])));
    for (const [i, args] of argsList.entries()) {
      const want = wants[i]!;
      const label = args.join(' ');
      const got = await sealpost(['postconf', '-c', dir, ...args]);
      assert.equal(got.stdout, want.stdout, `stdout of postconf ${label}\n--- main.cf ---\n${mainCf}`);
      assert.deepEqual(normStderr(got.stderr), normStderr(want.stderr), `stderr of postconf ${label}`);
      assert.equal(got.code, want.code, `exit status of postconf ${label}`);
    }
  } finally {
    cleanup();
  }
}

async function compare(mainCf: string, args: readonly string[], masterCf = ''): Promise<void> {
  await compareMany(mainCf, [args], masterCf);
}

const CORPUS: Readonly<Record<string, string>> = {
  basic: 'myhostname = mx.example.com\nmydomain = example.com\nrelayhost = [smtp.example.net]:587\ninet_interfaces = loopback-only\n',
  forms: [
    'e =',
    'v = val',
    'smtp_helo_name = ${e?yes}|${e:no}|${v?yes}|${v:no}|${v?{a b}:{c d}}|${e?{a b}:{c d}}|$v${v}$(v)|${ v }',
    'relayhost = ${v?{${v}x}}|${v?$v}|${v?x}y}|${v?{x}:y}|${e?{x}:y}|${v?x:y}|${v?}|${e:}',
    'myorigin = ${v?{a{b}c}}|{x}|$$v $$$v|${{$v} == {val} ? {eq} : {ne}}',
    'mydomain = ${{3.6} <level {3.11} ? {lt} : {ge}}|${{10} < {9} ? {lt} : {ge}}|${{$v}=={val}?{eq}:{ne}}',
    'smtp_bind_address = ${{1} != {1} ? {a} : {b}}|${{1.10} >=level {1.9} ? {a} : {b}}|${{a} < {1} ? {a} : {b}}',
    'smtp_bind_address6 = ${{1} <= {1} ? {a} : {b}}|${{1} == {1} ? {a}}|[${{1} == {1}}]|[${{1} == {2}}]|${{ 1} == {1} ? {a} : {b}}',
    'smtpd_banner = ${{b} > {a} ? {a} : {b}}|${{-1} < {2} ? {a} : {b}}|${{1}=={01}?{a}:{b}}|${{3.6.1} <level {3.6} ? {a} : {b}}',
    '',
  ].join('\n'),
  continuation: 'relayhost = a   \n\t\t   b  \n  \n     c\n# comment inside\n   d\nmydomain =\n  x.example\nmyorigin =\nmynetworks = 1.2.3.4 {a  b}\n  { c }\n\n  # indented comment\n',
  whitespace: 'relayhost=[x]\nmydomain\t=\t\ty z\nmyorigin = a     b\tc   \nsmtp_helo_name =    \n',
  crlf: 'relayhost = a\r\nmydomain = b\r\n',
  leading: '  leading = x\nrelayhost = y\n',
  dollars: 'relayhost = $$\nmyorigin = a$$b $${x}\nsmtp_helo_name = $$$$myhostname\n',
  overrides: 'smtp_tls_security_level = encrypt\nmaximal_queue_lifetime = 1d\ndelay_warning_time = 4h\nsmtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\nmessage_size_limit = 52428800\n',
  unknown: 'foo = bar\nbaz = $foo\nqux = $undefined_x\nrelayhost = $qux2\nqux2 = ok\n',
  undefinedRefs: 'myhostname = h.example\nrelayhost = $u6 $u6 ${{$u7} == {1} ? {a} : {b}}\nmyorigin = ${u1?x} ${u2:y} $(u3)\n',
  userChain: 'a1 = ${u1?x} $a2\na2 = two\nsmtp_helo_name = ${a1}\n',
  obsolete: 'smtp_use_tls = yes\nsmtp_enforce_tls = no\nsmtpd_use_tls = yes\nsmtp_tls_per_site = hash:/etc/postfix/tls_per_site\n',
  duplicates: 'relayhost = a\nrelayhost = b\nmydomain = x\n',
  tls: [
    'smtp_tls_policy_maps = hash:/etc/postfix/tls_policy, inline:{ {example.com = encrypt}, {partner.net = secure match=.partner.net} }',
    'smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt',
    'smtp_tls_session_cache_database = btree:${config_directory}/smtp_scache',
    'smtp_tls_loglevel = 1',
    '',
  ].join('\n'),
  longValue: `smtpd_recipient_restrictions = ${Array.from({ length: 30 }, (_, i) => `check_recipient_access hash:/etc/postfix/access_${i}`).join(', ')}\n`,
};

test('relational defaults at compatibility levels 0, 1, 2, 3.6', async () => {
  const names = ['append_dot_mydomain', 'smtpd_relay_restrictions', 'mynetworks_style', 'relay_domains', 'respectful_logging', 'smtp_tls_fingerprint_digest', 'smtputf8_enable', 'smtpd_relay_before_recipient_restrictions'];
  await Promise.all(
    ['0', '1', '2', '3.6'].map((level) => compareMany(`compatibility_level = ${level}\nmyhostname = h.example.com\n`, [['-x', ...names], ['-h', ...names]])),
  );
});

function namesIn(mainCf: string): string[] {
  return [...new Set(mainCf.split(/\r?\n/).map((l) => /^(\w+)\s*=/.exec(l)?.[1]).filter((n): n is string => n !== undefined))];
}

test('corpus: -n, -nx, -nh, -nf; named parameters with -h, -x, -d (every file concurrently)', async () => {
  await Promise.all(
    Object.values(CORPUS).map((mainCf) => {
      const asked = [...namesIn(mainCf), 'relayhost', 'smtp_tls_policy_maps', 'nosuch_param'];
      // -d does not read main.cf: ask only for built-in names (user-defined ones are a Postfix nuance we do not mirror).
      const defaults = asked.filter((n) => !EXCLUDED.has(n) && (paramSpec(n) !== undefined || n === 'nosuch_param'));
      return compareMany(mainCf, [['-n'], ['-n', '-x'], ['-n', '-h'], ['-n', '-f'], ['-n', '-x', '-f'], asked, ['-h', ...asked], ['-x', ...asked], ['-hx', ...asked], ['-d', ...defaults]]);
    }),
  );
});

test('-d and -df: every default we keep equal to Postfix 3.7 (excluded names removed)', async () => {
  for (const flags of [['-d'], ['-df']]) {
    const { dir, cleanup } = withDir('');
    try {
      const want = postfix('postconf', ['-c', dir, ...flags]);
      const got = await sealpost(['postconf', '-c', dir, ...flags]);
      const keep = (out: string): string[] => {
        // Folded output: group continuation lines with their parameter.
        const blocks = out.replace(/\n {4}/g, '\u0000').split('\n').filter((l) => l !== '');
        return blocks.filter((b) => !EXCLUDED.has(b.split(' ')[0]!) && !b.startsWith('sealpost_')).map((b) => b.replace(/\u0000/g, '\n    '));
      };
      assert.deepEqual(keep(got.stdout), keep(want.stdout), flags.join(' '));
      assert.ok(keep(want.stdout).length > 780, 'compared most of the registry');
    } finally {
      cleanup();
    }
  }
});

test('postconf with no options: every parameter with its effective value (excluded names removed)', async () => {
  const { dir, cleanup } = withDir('compatibility_level = 3.6\nfoo = $bar\nbar = 1\nrelayhost = [$bar.example]\n');
  try {
    const [want] = await Promise.all([postconfAsync(['-c', dir])]);
    const got = await sealpost(['postconf', '-c', dir]);
    const keep = (out: string): string[] => out.split('\n').filter((l) => l !== '' && !EXCLUDED.has(l.split(' ')[0]!) && !l.startsWith('sealpost_'));
    assert.deepEqual(keep(got.stdout), keep(want!.stdout));
    assert.ok(keep(got.stdout).includes('bar = 1'), 'user-defined parameter listed');
    assert.deepEqual(normStderr(got.stderr), normStderr(want!.stderr));
  } finally {
    cleanup();
  }
});

test('-dx for defaults that do not depend on system values', async () => {
  // Not the compatibility-level defaults: Postfix 3.7 expands them at level 0, sealpost at 3.11.
  const names = ['tlsproxy_client_policy_maps', 'smtpd_per_request_deadline', 'mydestination', 'smtp_fallback_relay', 'virtual_alias_domains', 'smtp_tls_key_file', 'postscreen_dnsbl_min_ttl'];
  await compare('', ['-dx', ...names]);
});

const MASTER_EXTRA = [
  'submission inet n       -       y       -       -       smtpd',
  '  -o syslog_name=postfix/submission',
  '  -o smtpd_tls_security_level=encrypt',
  '  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }',
  '127.0.0.1:10025 inet n - n - - smtpd',
  '  { -o a=b } -o x=y',
  '[::1]:2525 inet n - n - - smtpd -v -oq=r -vo z=w',
  '  { arg with space } more args "quoted"',
  'relay2 unix - - n - - smtp -o smtp_helo_name=$myhostname -o smtp_tls_security_level=${myvar?{$myvar}:{may}} -o syslog_name=postfix/$service_name',
  '',
].join('\n');

test('-M, -Mf, -Mx, filters: Debian master.cf plus odd entries', async () => {
  const master = readFileSync('/usr/share/postfix/master.cf.dist', 'utf8') + MASTER_EXTRA;
  await compareMany('myhostname = h.example\n', [['-M'], ['-Mf'], ['-Mx'], ['-Mfx'], ['-M', 'smtp'], ['-M', 'smtp/inet', 'relay', 'nosuch']], master);
});

test('-n with master.cf service-derived parameters (transport_destination_concurrency_limit)', async () => {
  const master = readFileSync('/usr/share/postfix/master.cf.dist', 'utf8');
  await Promise.all([
    compare('relay_destination_concurrency_limit = 5\nsmtp_destination_rate_delay = 1s\nbsmtp_time_limit = 100s\nnotaservice_destination_concurrency_limit = 3\n', ['-n'], master),
    compare('', ['-d', 'relay_destination_concurrency_limit', 'uucp_time_limit', 'smtp_recipient_limit'], master),
  ]);
});

const EDIT_BASE = '# top comment\nmyhostname = a.example\n    # indented comment\nrelayhost = [x]\n  :25\n\n# relayhost = old\nmydomain=b\nrelayhost = again\n# x\n\n  more\nmyorigin = $mydomain\n';

test('-e, -X, -# edit main.cf exactly as Postfix does', async () => {
  const cases: ReadonlyArray<readonly string[]> = [
    ['-e', 'relayhost = [y]:587', 'newparam=1', 'myorigin=$myhostname', 'mydomain =  c  '],
    // Postfix appends several new names in hash-table (random) order; sealpost uses request order. One new name per case.
    ['-e', 'a=1', 'a=2'],
    ['-e', 'b = x  y'],
    ['-X', 'relayhost', 'nosuch'],
    ['-X', 'myorigin', 'mydomain'],
    ['-#', 'relayhost', 'mydomain'],
  ];
  const dirs = cases.map(() => ({ a: withDir(EDIT_BASE), b: withDir(EDIT_BASE) }));
  try {
    const wants = await Promise.all(cases.map((args, i) => postconfAsync(['-c', dirs[i]!.a.dir, ...args])));
    for (const [i, args] of cases.entries()) {
      const { a, b } = dirs[i]!;
      const want = wants[i]!;
      const got = await sealpost(['postconf', '-c', b.dir, ...args]);
      assert.equal(readFileSync(join(b.dir, 'main.cf'), 'utf8'), readFileSync(join(a.dir, 'main.cf'), 'utf8'), args.join(' '));
      assert.deepEqual(normStderr(got.stderr).map((l) => l.replace(b.dir, 'DIR')), normStderr(want.stderr).map((l) => l.replace(a.dir, 'DIR')));
      assert.equal(got.code, want.code);
    }
  } finally {
    for (const d of dirs) {
      d.a.cleanup();
      d.b.cleanup();
    }
  }
});

test('-e of a value that contains $name keeps it unexpanded; the result reads back the same', async () => {
  const a = withDir('');
  const b = withDir('');
  try {
    for (const dir of [a.dir, b.dir]) copyFileSync('/dev/null', join(dir, 'master.cf'));
    postfix('postconf', ['-c', a.dir, '-e', 'smtp_helo_name=${myhostname?{$myhostname}:{x}}']);
    await sealpost(['postconf', '-c', b.dir, '-e', 'smtp_helo_name=${myhostname?{$myhostname}:{x}}']);
    assert.equal(readFileSync(join(b.dir, 'main.cf'), 'utf8'), readFileSync(join(a.dir, 'main.cf'), 'utf8'));
    assert.ok(existsSync(join(b.dir, 'main.cf')));
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

const BROKEN: Readonly<Record<string, string>> = {
  missingEquals: 'myhostname = ok\nbad line here\n',
  missingName: '=x\n',
  spaceInName: 'my host = x\n',
  loop: 'relayhost = $smtp_helo_name\nsmtp_helo_name = $relayhost\n',
  selfLoop: 'myorigin = $myorigin\n',
  emptyName: 'relayhost = a$ b\n',
  badRelational: 'relayhost = ${{1} =~ {1} ? {a} : {b}}\n',
  badLevel: 'relayhost = ${{x} <level {3.6} ? {a} : {b}}\n',
};

test('broken main.cf: both fail; sealpost says it in one line with file (and line), no stack trace', async () => {
  const dirs = Object.entries(BROKEN).map(([name, text]) => ({ name, ...withDir(text) }));
  try {
    const wants = await Promise.all(dirs.map((d) => postconfAsync(['-c', d.dir, '-n'])));
    for (const [i, d] of dirs.entries()) {
      const got = await sealpost(['postconf', '-c', d.dir, '-n']);
      assert.notEqual(wants[i]!.code, 0, `postfix fails on ${d.name}`);
      assert.notEqual(got.code, 0, `sealpost fails on ${d.name}`);
      assert.equal(got.stdout, '');
      const fatal = got.stderr.split('\n').filter((l) => l.includes('fatal:'));
      assert.equal(fatal.length, 1, `${d.name}: ${got.stderr}`);
      assert.match(fatal[0]!, new RegExp(`^sealpost/postconf: fatal: ${d.dir}/main\\.cf, line \\d+: `), d.name);
      assert.doesNotMatch(got.stderr, /\n\s+at /);
    }
  } finally {
    for (const d of dirs) d.cleanup();
  }
});

test('syntax errors use Postfix wording', async () => {
  const { dir, cleanup } = withDir('myhostname = ok\nbad line here\n');
  try {
    const got = await sealpost(['postconf', '-c', dir, '-n']);
    assert.equal(got.stderr, `sealpost/postconf: fatal: ${dir}/main.cf, line 2: missing '=' after attribute name: "bad line here"\n`);
  } finally {
    cleanup();
  }
});

test('-m lists the table types; unknown option is a usage error', async () => {
  const got = await sealpost(['postconf', '-m']);
  assert.equal(got.stdout, 'btree\ncdb\ncidr\nfail\nhash\ninline\nlmdb\npcre\nregexp\nsocketmap\nstatic\ntexthash\n');
  const bad = await sealpost(['postconf', '-z']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /invalid option -- 'z'/);
});
