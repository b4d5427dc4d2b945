import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../../harness/cli.ts';

function setup(mainCf = '') {
  const t = tempDir();
  writeFileSync(join(t.dir, 'main.cf'), mainCf);
  const pm = (args: string[], stdin?: string) => sealpost(['postmap', '-c', t.dir, ...args], { stdin });
  return { ...t, pm, f: (n: string) => join(t.dir, n) };
}

const noStack = (s: string) => assert.doesNotMatch(s, /\n\s+at /);

test('build hash (default type), query, dump, warnings', async () => {
  const { pm, f, cleanup } = setup();
  try {
    writeFileSync(f('tls'), 'Example.COM encrypt\npartner.net  secure match=mx.partner.net\nexample.com dup\nnovalue\n');
    const b = await pm([f('tls')]);
    assert.equal(b.code, 0);
    assert.equal(b.stderr, [
      `sealpost/postmap: warning: ${f('tls')}.db: duplicate entry: "example.com"`,
      `sealpost/postmap: warning: ${f('tls')}, line 4: expected format: key whitespace value`,
      '',
    ].join('\n'));
    assert.ok(existsSync(f('tls.db')));
    const q = await pm(['-q', 'EXAMPLE.com', `hash:${f('tls')}`]);
    assert.deepEqual([q.code, q.stdout], [0, 'encrypt\n']);
    const miss = await pm(['-q', 'nope', f('tls')]);
    assert.deepEqual([miss.code, miss.stdout], [1, '']);
    const s = await pm(['-s', f('tls')]);
    assert.deepEqual(s.stdout.split('\n').sort(), ['', 'example.com\tencrypt', 'partner.net\tsecure match=mx.partner.net']);
  } finally {
    cleanup();
  }
});

test('default_database_type from main.cf; btree sorts -s output; -q - prints key TAB value', async () => {
  const { pm, f, cleanup } = setup('default_database_type = btree\n');
  try {
    writeFileSync(f('m'), 'c 3\na 1\nb 2\n');
    assert.equal((await pm([f('m')])).code, 0);
    assert.equal((await pm(['-s', f('m')])).stdout, 'a\t1\nb\t2\nc\t3\n');
    const r = await pm(['-q', '-', f('m')], 'b\nzz\nA\n');
    assert.deepEqual([r.code, r.stdout], [0, 'b\t2\nA\t1\n']);
    const none = await pm(['-q', '-', f('m')], 'zz\n');
    assert.equal(none.code, 1);
  } finally {
    cleanup();
  }
});

test('-r replaces, -w ignores silently, -f keeps case', async () => {
  const { pm, f, cleanup } = setup();
  try {
    writeFileSync(f('d'), 'a 1\nA 2\na 3\n');
    const r = await pm(['-r', `hash:${f('d')}`]);
    assert.equal(r.stderr, '');
    assert.equal((await pm(['-q', 'a', `hash:${f('d')}`])).stdout, '3\n');
    const w = await pm(['-w', `hash:${f('d')}`]);
    assert.equal(w.stderr, '');
    assert.equal((await pm(['-q', 'a', `hash:${f('d')}`])).stdout, '1\n');
    await pm(['-f', `hash:${f('d')}`]);
    assert.equal((await pm(['-fq', 'A', `hash:${f('d')}`])).stdout, '2\n');
    assert.equal((await pm(['-q', 'A', `hash:${f('d')}`])).stdout, '1\n');
  } finally {
    cleanup();
  }
});

test('-i adds from stdin, -d deletes (key and -), several tables', async () => {
  const { pm, f, cleanup } = setup();
  try {
    writeFileSync(f('t'), 'a 1\n');
    await pm([`lmdb:${f('t')}`]);
    assert.ok(existsSync(f('t.lmdb')));
    const i = await pm(['-i', `lmdb:${f('t')}`], 'B 2\na 9\n');
    assert.equal(i.stderr, `sealpost/postmap: warning: ${f('t')}.lmdb: duplicate entry: "a"\n`);
    assert.equal((await pm(['-s', `lmdb:${f('t')}`])).stdout, 'a\t1\nb\t2\n');
    assert.equal((await pm(['-d', 'A', `lmdb:${f('t')}`])).code, 0);
    assert.equal((await pm(['-d', 'A', `lmdb:${f('t')}`])).code, 1);
    assert.equal((await pm(['-d', '-', `lmdb:${f('t')}`], 'x\nb\n')).code, 0);
    assert.equal((await pm(['-s', `lmdb:${f('t')}`])).stdout, '');
    // -i on a missing table creates it.
    assert.equal((await pm(['-i', `hash:${f('new')}`], 'k v\n')).code, 0);
    assert.equal((await pm(['-q', 'k', `hash:${f('new')}`])).stdout, 'v\n');
    // First match across tables.
    assert.equal((await pm(['-q', 'k', `lmdb:${f('t')}`, `hash:${f('new')}`])).stdout, 'v\n');
  } finally {
    cleanup();
  }
});

test('-F stores base64 file contents and decodes on -q/-s', async () => {
  const { pm, f, cleanup } = setup();
  try {
    writeFileSync(f('f1'), 'hello\n');
    writeFileSync(f('f2'), 'world');
    writeFileSync(f('src'), `k1 ${f('f1')}\nk2 ${f('f1')}, ${f('f2')}\nk3 ${f('nonexist')}\n`);
    const b = await pm(['-F', `cdb:${f('src')}`]);
    assert.equal(b.stderr, `sealpost/postmap: warning: ${f('src')}, line 3: open ${f('nonexist')}: No such file or directory: skipping this entry\n`);
    assert.equal((await pm(['-q', 'k1', `cdb:${f('src')}`])).stdout, 'aGVsbG8K\n');
    assert.equal((await pm(['-Fq', 'k2', `cdb:${f('src')}`])).stdout, 'hello\n\nworld\n');
  } finally {
    cleanup();
  }
});

test('new table keeps the source group/other read bits unless -p', async () => {
  const { pm, f, cleanup } = setup();
  try {
    writeFileSync(f('p'), 'a 1\n');
    chmodSync(f('p'), 0o600);
    await pm([`hash:${f('p')}`]);
    assert.equal(statSync(f('p.db')).mode & 0o777, 0o600);
    await pm(['-p', `cdb:${f('p')}`]);
    assert.equal(statSync(f('p.cdb')).mode & 0o777, 0o644);
  } finally {
    cleanup();
  }
});

test('pattern and simple types: -q works, -s where possible', async () => {
  const { pm, f, cleanup } = setup();
  try {
    assert.equal((await pm(['-q', 'x', 'static:{ a b }'])).stdout, 'a b\n');
    assert.equal((await pm(['-s', 'inline:{ a=b, { c = d e } }'])).stdout, 'a\tb\nc\td e\n');
    const s = await pm(['-s', 'static:foo']);
    assert.deepEqual([s.code, s.stderr], [1, 'sealpost/postmap: fatal: table static:foo: sequence operation is not supported\n']);
    const fl = await pm(['-q', 'k', 'fail:x']);
    assert.deepEqual([fl.code, fl.stderr], [1, 'sealpost/postmap: fatal: table fail:x: query error: Application error\n']);
    writeFileSync(f('th'), 'K v\n');
    assert.equal((await pm(['-q', 'k', `texthash:${f('th')}`])).stdout, 'v\n');
    const e = await pm(['-q', 'a', 'inline:{a=}']);
    assert.equal(e.stderr, 'sealpost/postmap: warning: table inline:{a=}: key a: empty string result is not allowed\nsealpost/postmap: warning: table inline:{a=} should return NO RESULT in case of NOT FOUND\n');
  } finally {
    cleanup();
  }
});

test('bad input: one fatal line, no stack trace, Postfix exit codes', async () => {
  const { pm, f, cleanup } = setup();
  try {
    writeFileSync(f('x'), 'a b\n');
    const cases: Array<[string[], RegExp, number]> = [
      [['-q', 'x', `foo:${f('x')}`], /^sealpost\/postmap: fatal: unsupported dictionary type: foo \(supported: /, 1],
      [['-q', 'x', `hash:${f('missing')}`], /fatal: open database .*missing\.db: No such file or directory; build it with "sealpost postmap hash:/, 1],
      [[`hash:${f('missing')}`], /fatal: open .*missing: No such file or directory\n$/, 1],
      [[`texthash:${f('x')}`], /fatal: unsupported dictionary type: texthash does not support bulk-mode creation\.\n$/, 1],
      [['-i', `cdb:${f('x')}`], /fatal: cdb:.*cannot be updated in place/, 1],
      [['-d', 'a', `cdb:${f('x')}`], /does not support deleting entries; remove the entry/, 1],
      [['-q', 'a', '-s', f('x')], /fatal: specify only one of -s or -q or -d\n$/, 1],
      [['-s', '-q', 'a', f('x')], /fatal: specify only one of -s -q or -d\n$/, 1],
      [['-q', 'x'], /fatal: usage: sealpost\/postmap /, 64],
      [['-x', f('x')], /postmap: invalid option -- 'x'\n.*postmap: fatal: usage: /, 64],
      [['-q', 'a', 'hash:'], /fatal: open dictionary: expecting "type:name" form instead of "hash:"\n$/, 1],
      [['-q', 'a', 'inline:{a=b'], /fatal: bad syntax: "inline:\{a=b"; need "inline:\{name=value...\}"\n$/, 1],
      [['-b', '-q', '-', f('x')], /not supported/, 1],
    ];
    for (const [args, re, code] of cases) {
      const r = await pm(args);
      assert.match(r.stderr, re, args.join(' '));
      assert.equal(r.code, code, args.join(' '));
      noStack(r.stderr);
    }
    writeFileSync(f('bdb.db'), Buffer.concat([Buffer.alloc(12), Buffer.from([0x61, 0x15, 0x06, 0]), Buffer.alloc(100)]));
    const r = await pm(['-q', 'a', `hash:${f('bdb')}`]);
    assert.equal(r.stderr, `sealpost/postmap: fatal: ${f('bdb')}.db: not a sealpost table (a Berkeley DB file made by Postfix's postmap?): rebuild it with "sealpost postmap hash:${f('bdb')}"\n`);
    const s = await pm(['-s']);
    assert.deepEqual([s.code, s.stderr], [1, '']);
    const bad = await sealpost(['postmap', '-c', f('nodir'), `hash:${f('x')}`]);
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    noStack(bad.stderr);
    assert.equal(readFileSync(f('x'), 'utf8'), 'a b\n');
  } finally {
    cleanup();
  }
});
