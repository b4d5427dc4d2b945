/**
 * Differential tests: sealpost postmap against Debian's /usr/sbin/postmap
 * (Postfix 3.7) on a corpus of tricky sources. hash: files differ in format
 * (ours vs Berkeley DB), so queries and the *set* of -s lines are compared;
 * cdb: files must be byte-identical and readable by both programs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { postfix, postfixTool, sealpost, tempDir } from '../harness/cli.ts';
import type { RunResult } from '../harness/cli.ts';

/**
 * Postfix's msg_fatal() sleeps one second before exiting: run the commands
 * that end in a fatal error concurrently, so the suite stays fast.
 */
function postfixAsync(args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(postfixTool('postmap'), args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' }, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
    child.stdin?.end();
  });
}

const CORPUS: Readonly<Record<string, string>> = {
  comments: '# comment\nfoo bar\n  # indented comment\n\n# another\nbaz qux # not a comment\n',
  continuation: 'foo bar\n  continued here\n# comment inside\n\tand more\nk2\n  v2 after\nnext one\n',
  quoted: '"a b" quoted val\n"a\\"c" esc\n"x\\\\y" bs\n"" empty\n"q"x val\n"unterminated v\n',
  mixedcase: 'Example.COM encrypt\nPARTNER.net secure match=MX.Partner.NET\nmIxEd VaLuE\n',
  duplicates: 'a 1\nA 2\na 3\nb 1\nb 1\n',
  novalue: 'keyonly\nk v\n   \nother\t\n',
  longvalue: `long ${'x'.repeat(50000)}\nlong2 ${'y z '.repeat(2000)}\n`,
  utf8: 'grüße wert\nКлюч значение\n日本 語\n',
  empty: '',
  whitespace: '  \n\t\n\n',
  crlf: 'a b\r\nC d e\r\n\r\nk2\r\n  more\r\n',
  leading: '  leading whitespace line that is long enough\nk v\n',
  alias: 'postmaster: root\nk v\n',
  noeol: 'first 1\nlast noeol',
};

const FLAG_SETS: ReadonlyArray<readonly string[]> = [[], ['-f'], ['-r'], ['-w']];

/** Keys to query: every key-ish token of the source, case variants, and misses. */
function queryKeys(src: string): string[] {
  const keys = new Set<string>(['missing', 'MISSING', '']);
  for (const line of src.split(/\r?\n/)) {
    const k = line.trim().split(/\s+/)[0];
    if (k) {
      keys.add(k);
      keys.add(k.toLowerCase());
      keys.add(k.toUpperCase());
    }
  }
  return [...keys].filter((k) => k !== '');
}

/**
 * Write a source file dated 10 s back: Postfix's postmap pauses when the
 * source was modified within the current second.
 */
function writeSource(path: string, text: string): void {
  writeFileSync(path, text);
  const t = new Date(Date.now() - 10_000);
  utimesSync(path, t, t);
}

const norm = (s: string) => s.replaceAll('sealpost/postmap:', 'postmap:');
const sortedLines = (s: string) => s.split('\n').filter((l) => l !== '').sort();

function setup() {
  const t = tempDir('sealpost-diff-');
  // Postfix re-reads a main.cf modified in the last second until it is older.
  writeSource(join(t.dir, 'main.cf'), '');
  const pf = (args: string[], stdin?: string) => postfix('postmap', ['-c', t.dir, ...args], { stdin });
  const pfMany = (list: string[][]) => Promise.all(list.map((args) => postfixAsync(['-c', t.dir, ...args])));
  const sp = (args: string[], stdin?: string) => sealpost(['postmap', '-c', t.dir, ...args], { stdin });
  return { ...t, pf, pfMany, sp };
}

test('hash: warnings, -q and -s agree with Postfix for every corpus file and flag set', async () => {
  const { dir, cleanup, pf, sp } = setup();
  try {
    for (const [name, src] of Object.entries(CORPUS)) {
      for (const flags of FLAG_SETS) {
        const label = `${name} ${flags.join(' ')}`;
        const pfSrc = join(dir, `${name}.pf`);
        const spSrc = join(dir, `${name}.sp`);
        writeSource(pfSrc, src);
        writeSource(spSrc, src);
        const a = pf([...flags, `hash:${pfSrc}`]);
        const b = await sp([...flags, `hash:${spSrc}`]);
        assert.equal(b.code, a.code, `${label}: build exit`);
        assert.equal(norm(b.stderr).replaceAll(spSrc, 'SRC'), a.stderr.replaceAll(pfSrc, 'SRC'), `${label}: build warnings`);
        const qflags = flags.includes('-f') ? ['-f'] : [];
        const keys = queryKeys(src).join('\n') + '\n';
        const qa = pf([...qflags, '-q', '-', `hash:${pfSrc}`], keys);
        const qb = await sp([...qflags, '-q', '-', `hash:${spSrc}`], keys);
        assert.equal(qb.stdout, qa.stdout, `${label}: -q - output`);
        assert.equal(qb.code, qa.code, `${label}: -q - exit`);
        const sa = pf(['-s', `hash:${pfSrc}`]);
        const sb = await sp(['-s', `hash:${spSrc}`]);
        assert.deepEqual(sortedLines(sb.stdout), sortedLines(sa.stdout), `${label}: -s set`);
        assert.equal(norm(sb.stderr).replaceAll(spSrc, 'SRC'), sa.stderr.replaceAll(pfSrc, 'SRC'), `${label}: -s warnings`);
      }
    }
  } finally {
    cleanup();
  }
});

test('single -q: value and exit status agree with Postfix, first table wins', async () => {
  const { dir, cleanup, pf, sp } = setup();
  try {
    const one = join(dir, 'one');
    const two = join(dir, 'two');
    writeSource(one, 'a 1\n');
    writeSource(two, 'a 2\nb 3\n');
    for (const f of [one, two]) {
      pf([`cdb:${f}`]);
    }
    for (const key of ['a', 'b', 'B', 'c']) {
      const a = pf(['-q', key, `cdb:${one}`, `cdb:${two}`]);
      const b = await sp(['-q', key, `cdb:${one}`, `cdb:${two}`]);
      assert.deepEqual([b.code, b.stdout, b.stderr], [a.code, a.stdout, a.stderr], key);
    }
  } finally {
    cleanup();
  }
});

test('cdb: byte-identical to Postfix for every corpus file and flag set (and -N), readable by both', async () => {
  const { dir, cleanup, pf, sp } = setup();
  try {
    for (const [name, src] of Object.entries(CORPUS)) {
      for (const flags of [...FLAG_SETS, ['-N'], ['-w', '-N']]) {
        const label = `${name} ${flags.join(' ')}`;
        const pfSrc = join(dir, `${name}.pf`);
        const spSrc = join(dir, `${name}.sp`);
        writeSource(pfSrc, src);
        writeSource(spSrc, src);
        const a = pf([...flags, `cdb:${pfSrc}`]);
        const b = await sp([...flags, `cdb:${spSrc}`]);
        assert.equal(b.code, a.code, `${label}: exit`);
        // dict_cdb names the table without ".cdb" in duplicate warnings.
        assert.equal(norm(b.stderr).replaceAll(spSrc, 'SRC'), a.stderr.replaceAll(pfSrc, 'SRC'), `${label}: warnings`);
        assert.ok(readFileSync(`${spSrc}.cdb`).equals(readFileSync(`${pfSrc}.cdb`)), `${label}: cdb bytes differ`);
        // Each program reads the other's file.
        const qflags = flags.includes('-f') ? ['-f'] : [];
        const keys = queryKeys(src).join('\n') + '\n';
        const qa = pf([...qflags, '-q', '-', `cdb:${spSrc}`], keys);
        const qb = await sp([...qflags, '-q', '-', `cdb:${pfSrc}`], keys);
        assert.equal(qb.stdout, qa.stdout, `${label}: cross -q`);
        assert.equal(qb.code, qa.code, `${label}: cross -q exit`);
      }
    }
  } finally {
    cleanup();
  }
});

test('cdb: sealpost -s on a Postfix-built cdb lists the records (Postfix 3.7 cannot sequence cdb)', async () => {
  const { dir, cleanup, pf, pfMany, sp } = setup();
  try {
    const src = join(dir, 'seq');
    writeSource(src, 'b 2\na 1\nC 3\n');
    assert.equal(pf([`cdb:${src}`]).code, 0);
    const [fatal] = await pfMany([['-s', `cdb:${src}`]]);
    assert.match(fatal!.stderr, /sequence operation is not supported/);
    const s = await sp(['-s', `cdb:${src}`]);
    assert.deepEqual([s.code, s.stdout], [0, 'b\t2\na\t1\nc\t3\n']);
    assert.equal(pf(['-N', `cdb:${src}`]).code, 0);
    assert.equal((await sp(['-s', `cdb:${src}`])).stdout, 'b\t2\na\t1\nc\t3\n');
    assert.equal((await sp(['-q', 'A', `cdb:${src}`])).stdout, '1\n');
  } finally {
    cleanup();
  }
});

test('cdb: 70k keys (tables with more than 254 records) byte-identical, with -r', async () => {
  const { dir, cleanup, pf, sp } = setup();
  try {
    const lines: string[] = [];
    for (let i = 0; i < 70000; i++) {
      lines.push(`key${i} value${i * 7}`);
      if (i % 500 === 0) lines.push(`KEY${i} replaced`);
    }
    const pfSrc = join(dir, 'big.pf');
    const spSrc = join(dir, 'big.sp');
    writeSource(pfSrc, lines.join('\n') + '\n');
    writeSource(spSrc, lines.join('\n') + '\n');
    assert.equal(pf(['-r', `cdb:${pfSrc}`]).code, 0);
    assert.equal((await sp(['-r', `cdb:${spSrc}`])).code, 0);
    assert.ok(readFileSync(`${spSrc}.cdb`).equals(readFileSync(`${pfSrc}.cdb`)));
  } finally {
    cleanup();
  }
});

test('"database is older than source file" warning as Postfix words it', async () => {
  const { dir, cleanup, pf, sp } = setup();
  try {
    const src = join(dir, 'old');
    writeSource(src, 'a 1\n');
    pf([`cdb:${src}`]);
    const past = new Date(Date.now() - 3600_000);
    utimesSync(`${src}.cdb`, past, past);
    const recent = new Date(Date.now() - 600_000);
    utimesSync(src, recent, recent);
    const a = pf(['-q', 'a', `cdb:${src}`]);
    const b = await sp(['-q', 'a', `cdb:${src}`]);
    assert.equal(a.stderr, `postmap: warning: database ${src}.cdb is older than source file ${src}\n`);
    assert.equal(norm(b.stderr), a.stderr);
    assert.equal(b.stdout, a.stdout);
  } finally {
    cleanup();
  }
});

test('inline and static: -q/-s and errors agree with Postfix', async () => {
  const { cleanup, pf, pfMany, sp } = setup();
  try {
    for (const spec of ['inline:{ a=b, { c = d e } }', 'inline:{b=1,B=4}', 'static:foo', 'static:{ a b }', 'static: x']) {
      for (const key of ['a', 'c', 'B', 'zz']) {
        const a = pf(['-q', key, spec]);
        const b = await sp(['-q', key, spec]);
        assert.deepEqual([b.code, b.stdout], [a.code, a.stdout], `${spec} ${key}`);
      }
    }
    const a = pf(['-s', 'inline:{ a=b, { c = d e } }']);
    const b = await sp(['-s', 'inline:{ a=b, { c = d e } }']);
    assert.deepEqual(sortedLines(b.stdout), sortedLines(a.stdout));
    const errSpecs = ['inline:{a=b', 'inline:{ }', 'inline:{ A = B , c }', 'inline:{ {a=b}x }', 'static:{a', 'static:{ a b }x', 'hash:', 'fail:x'];
    const results = await pfMany(errSpecs.map((spec) => ['-q', 'a', spec]));
    for (const [i, spec] of errSpecs.entries()) {
      const x = results[i]!;
      const y = await sp(['-q', 'a', spec]);
      assert.equal(norm(y.stderr), x.stderr, spec);
      assert.equal(y.code, x.code, spec);
      assert.doesNotMatch(y.stderr, /\n\s+at /);
    }
  } finally {
    cleanup();
  }
});

test('errors: same Postfix wording as prefix, one line, no stack trace', async () => {
  const { dir, cleanup, pfMany, sp } = setup();
  try {
    const src = join(dir, 'e');
    writeSource(src, 'a b\n');
    const cases: string[][] = [
      ['-q', 'x', `foo:${src}`],
      ['-q', 'x', `hash:${join(dir, 'nonexist')}`],
      ['-q', 'x', `cdb:${join(dir, 'nonexist')}`],
      [`hash:${join(dir, 'nonexist')}`],
      [`texthash:${src}`],
      [`regexp:${src}`],
      ['-q', 'a', '-s', src],
      ['-s', '-q', 'a', src],
    ];
    const results = await pfMany(cases);
    for (const [i, args] of cases.entries()) {
      const a = results[i]!;
      const b = await sp(args);
      assert.equal(b.code, a.code, args.join(' '));
      const pfLine = a.stderr.trim();
      assert.ok(norm(b.stderr).startsWith(pfLine), `${args.join(' ')}: ${b.stderr} vs ${pfLine}`);
      assert.equal(b.stderr.trim().split('\n').length, 1, args.join(' '));
      assert.doesNotMatch(b.stderr, /\n\s+at /);
    }
  } finally {
    cleanup();
  }
});
