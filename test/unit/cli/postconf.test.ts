/**
 * sealpost postconf in-process: golden .in/.ref pairs (refs written by Postfix 3.7's
 * postconf), editing, master.cf display, and error reporting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatLine } from '../../../src/cli/postconf.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';

const GOLDEN = new URL('../../golden/postconf/', import.meta.url).pathname;

function withFiles(files: Record<string, string>, fn: (dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return fn(dir).finally(cleanup);
}

for (const file of readdirSync(GOLDEN).filter((f) => f.endsWith('.in'))) {
  const base = file.slice(0, -3);
  test(`golden ${base}: -nx and -nf`, async () => {
    await withFiles({ 'main.cf': readFileSync(join(GOLDEN, file), 'utf8') }, async (dir) => {
      const nx = await sealpost(['postconf', '-c', dir, '-nx']);
      assert.equal(nx.stdout.replaceAll(dir, 'CONFIG_DIR'), readFileSync(join(GOLDEN, `${base}.ref`), 'utf8'));
      const nf = await sealpost(['postconf', '-c', dir, '-nf']);
      assert.equal(nf.stdout.replaceAll(dir, 'CONFIG_DIR'), readFileSync(join(GOLDEN, `${base}.nf.ref`), 'utf8'));
      assert.equal(nx.stderr, '');
    });
  });
}

test('formatLine collapses whitespace and folds before column 80', () => {
  assert.equal(formatLine('a   b\tc', false), 'a b c\n');
  const long = `name = ${Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ')}`;
  const folded = formatLine(long, true);
  assert.ok(folded.split('\n').every((l) => l.length <= 80));
  assert.match(folded, /\n {4}word/);
});

test('name, -h, -x, unknown parameter warning, MAIL_CONFIG', async () => {
  await withFiles({ 'main.cf': 'myhostname = mx.example.com\nsmtp_helo_name = $myhostname\n' }, async (dir) => {
    const r = await sealpost(['postconf', '-c', dir, 'smtp_helo_name', 'nosuch']);
    assert.equal(r.stdout, 'smtp_helo_name = $myhostname\n');
    assert.equal(r.stderr, 'sealpost/postconf: warning: nosuch: unknown parameter\n');
    assert.equal(r.code, 0);
    const h = await sealpost(['postconf', '-hx', 'smtp_helo_name'], { env: { MAIL_CONFIG: dir } });
    assert.equal(h.stdout, 'mx.example.com\n');
  });
});

test('without main.cf: sealpost defaults (compatibility level 3.11, TLS may)', async () => {
  await withFiles({}, async (dir) => {
    const r = await sealpost(['postconf', '-c', dir, '-x', 'compatibility_level', 'smtp_tls_security_level', 'smtpd_forbid_unauth_pipelining', 'syslog_name']);
    assert.equal(r.stdout, 'compatibility_level = 3.11\nsmtp_tls_security_level = may\nsmtpd_forbid_unauth_pipelining = yes\nsyslog_name = sealpost\n');
    const d = await sealpost(['postconf', '-c', dir, '-d', 'smtp_tls_security_level']);
    assert.equal(d.stdout, 'smtp_tls_security_level = ${{$compatibility_level} <level {3.11} ? {} : {may}}\n');
  });
});

test('-e creates main.cf when missing, edits in place; -X and -# edit too', async () => {
  await withFiles({}, async (dir) => {
    assert.equal((await sealpost(['postconf', '-c', dir, '-e', 'relayhost = [r.example]:587', 'myhostname=h'])).code, 0);
    assert.equal(readFileSync(join(dir, 'main.cf'), 'utf8'), 'relayhost = [r.example]:587\nmyhostname = h\n');
    await sealpost(['postconf', '-c', dir, '-#', 'relayhost']);
    assert.equal(readFileSync(join(dir, 'main.cf'), 'utf8'), '#relayhost = [r.example]:587\nmyhostname = h\n');
    await sealpost(['postconf', '-c', dir, '-X', 'myhostname']);
    assert.equal(readFileSync(join(dir, 'main.cf'), 'utf8'), '#relayhost = [r.example]:587\n');
    const bad = await sealpost(['postconf', '-c', dir, '-e', 'novalue']);
    assert.equal(bad.code, 64);
    assert.equal(bad.stderr, `sealpost/postconf: fatal: missing '=' after attribute name: "novalue"\n`);
  });
});

test('-e repairs a main.cf that does not load (a $name loop)', async () => {
  await withFiles({ 'main.cf': 'myorigin = $myorigin\n' }, async (dir) => {
    assert.notEqual((await sealpost(['postconf', '-c', dir, '-n'])).code, 0);
    assert.equal((await sealpost(['postconf', '-c', dir, '-e', 'myorigin = $myhostname'])).code, 0);
    const r = await sealpost(['postconf', '-c', dir, '-n']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^myorigin = \$myhostname$/m);
  });
});

test('-M prints the embedded master.cf when the directory has none', async () => {
  await withFiles({ 'main.cf': '' }, async (dir) => {
    const r = await sealpost(['postconf', '-c', dir, '-M']);
    assert.equal(
      r.stdout,
      [
        'smtp       inet  n       -       y       -       -       smtpd',
        'smtp       unix  -       -       y       -       -       smtp',
        'relay      unix  -       -       y       -       -       smtp -o syslog_name=sealpost/$service_name',
        'error      unix  -       -       y       -       -       error',
        'retry      unix  -       -       y       -       -       error',
        'discard    unix  -       -       y       -       -       discard',
        '',
      ].join('\n'),
    );
  });
});

test('errors are one fatal line with file and line, never a stack trace', async () => {
  await withFiles({ 'main.cf': 'relayhost = ok\nmyorigin = $myorigin\n' }, async (dir) => {
    const r = await sealpost(['postconf', '-c', dir, '-n']);
    assert.equal(r.code, 78);
    assert.equal(r.stderr, `sealpost/postconf: fatal: ${dir}/main.cf, line 2: bad value for parameter "myorigin": unreasonable macro call nesting: "myorigin"\n`);
  });
  await withFiles({ 'main.cf': '', 'master.cf': 'smtp inet n - y - - smtpd\nbroken inet n\n' }, async (dir) => {
    const r = await sealpost(['postconf', '-c', dir, '-M']);
    assert.equal(r.stderr, `sealpost/postconf: fatal: ${dir}/master.cf, line 2: bad field count\n`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
  const missing = await sealpost(['postconf', '-c', '/nonexistent/dir', '-n']);
  assert.equal(missing.stderr.split('\n').length, 2);
  assert.match(missing.stderr, /^sealpost\/postconf: fatal: configuration directory \/nonexistent\/dir does not exist/);
});
