/**
 * pattern-tables.test.ts — differential tests: regexp:, pcre: and cidr:
 * tables queried through sealpost's modules and through Debian's
 * `/usr/sbin/postmap -c DIR -q - TYPE:FILE` must give the same answers.
 * Bad tables: Postfix warns (and skips the rule); sealpost refuses the table
 * with a ConfigError naming the same file and line. Each case says which.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { regexpType } from '../../src/maps/regexp.ts';
import { pcreType } from '../../src/maps/pcre.ts';
import { cidrType } from '../../src/maps/cidr.ts';
import type { TableType } from '../../src/maps/types.ts';
import { ConfigError } from '../../src/lib/errors.ts';
import { postfix, tempDir } from '../harness/cli.ts';

const TYPES: Readonly<Record<string, TableType>> = { regexp: regexpType, pcre: pcreType, cidr: cidrType };

interface Case {
  readonly name: string;
  readonly type: 'regexp' | 'pcre' | 'cidr';
  readonly table: string;
  /** Keys without tab or newline (they go to `postmap -q -` one per line). */
  readonly keys: readonly string[];
}

const CORPUS: readonly Case[] = [
  {
    name: 'regexp: order, case, negation, substitution',
    type: 'regexp',
    table: [
      '# access-map style',
      '/[%!@].*[%!@]/ 550 Sender-specified routing rejected',
      '/^postmaster@/ OK',
      'if !/^owner-/',
      '/^(.*)-outgoing@(.*)$/ 550 Use ${1}@${2} instead',
      'endif',
      '/^(Foo)@(.*)$/i exact=$1 dom=$(2) cost=$$5',
      '!/\\./ no-dot',
    ].join('\n'),
    keys: ['a@b@c', 'postmaster@x.org', 'POSTMASTER@x.org', 'list-outgoing@x.org', 'owner-list-outgoing@x.org', 'Foo@x.org', 'foo@x.org', 'nodot', 'has.dot'],
  },
  {
    name: 'regexp: nested if/endif, continuation, delimiters, trailing space',
    type: 'regexp',
    table: [
      'if /^dom\\./',
      'if !/\\.org$/',
      '/x/ dom-x-not-org',
      'endif',
      '/y/ dom-y',
      'endif',
      '|a b| pipe-delimited',
      '#/z/ commented',
      '/multi/',
      '  line',
      '  result   ',
      '/^$/ empty-key',
    ].join('\n'),
    keys: ['dom.x.com', 'dom.x.org', 'dom.y.org', 'x.com', 'xa by', 'multi', 'z', '#/z/'],
  },
  {
    name: 'regexp: POSIX classes, brackets, intervals, GNU escapes, BRE',
    type: 'regexp',
    table: [
      '/^[[:digit:]]{3}$/ three-digits',
      '/^[[:alpha:]][[:alnum:]_-]*$/ word',
      '/^[\\.]x$/ bracket-backslash',
      '/^[]k]+$/ bracket-close',
      '/^a{2,}b+$/ interval',
      '/^q{,2}r$/ interval-0',
      '/^\\w+\\s\\<z\\>$/ gnu-escapes',
      '/^b\\(c\\)\\{2\\}(+)$/x bre=$1',
      '/^s**t$/ stacked',
      '/^(ab|cd)+$/ alt=$1',
      '/^[^[:space:]]+ [[:upper:]]+$/i upper-toggled',
    ].join('\n'),
    keys: ['123', '12', 'abc-d_e', '\\x', '.x', 'kk]', 'aab', 'aabbb', 'ab', 'qqr', 'r', 'hi z', 'hi za', 'bcc(+)', 'bcc', 'sst', 't', 'abcdab', 'x ABC', 'x abc', '9 Z'],
  },
  {
    name: 'pcre: flags and translations',
    type: 'pcre',
    table: [
      '/^(?!owner-)(.*)-outgoing@(.*)/ 550 Use ${1}@${2} instead',
      '/(?i)MiXeD/ inline-i',
      '/\\Qa.b\\E/ quoted',
      '/^ x y z $/x extended',
      '/^abc/A anchored',
      '/(a+?)/U ungreedy-$1',
      '/w(\\d+)/ digits-$1',
      '/^[[:alpha:]]+9$/ posix',
      '/^end$/ dollar',
      '/^(?P<user>[^@]+)@(?<dom>.+)$/ named=$1,$2',
      '/^Case$/i case',
      '/\\bword\\b/ boundary',
      '/^\\x41\\x{42}c$/ hex',
    ].join('\n'),
    keys: ['list-outgoing@x.org', 'owner-list-outgoing@x', 'mixed', 'a.b', 'axb', 'xyz', 'x y z', 'abcd', 'aaa', 'w123', 'hello9', 'end', 'me@host', 'Case', 'case', 'a word here', 'abc', 'ABc'],
  },
  {
    name: 'pcre: if/endif and negation',
    type: 'pcre',
    table: ['if /@example\\.(com|net)$/', '!/^(postmaster|abuse)@/ inside', 'endif', 'IF !/\\d/', '/^[a-z]+$/s letters', 'ENDIF', '/./ anything'].join('\n'),
    keys: ['user@example.com', 'postmaster@example.net', 'abuse@example.org', 'letters', 'Letters', 'l3tters'],
  },
  {
    name: 'cidr: IPv4/IPv6, overlaps, negation, if/endif, brackets',
    type: 'cidr',
    table: [
      '192.168.1.1 one',
      '192.168.0.0/16 rfc1918-192',
      '[10.0.0.0]/8 ten',
      '[2001:db8::1] v6-one',
      '2001:db8::/32 v6-doc',
      'if 172.16.0.0/12',
      '!172.16.5.0/24 172-not-5',
      'endif',
      '!0.0.0.0/0 not-ipv4',
      '0.0.0.0/0 any-ipv4',
    ].join('\n'),
    keys: ['192.168.1.1', '192.168.200.1', '10.9.8.7', '[10.9.8.7]', '2001:db8::1', '2001:0DB8:0:0:0:0:0:1', '2001:db8:1::5', '::1', '::ffff:192.168.1.1', '172.16.5.9', '172.17.0.1', '8.8.8.8', 'foo', '010.1.2.3', '1.2.3'],
  },
  {
    name: 'cidr: prefix boundaries',
    type: 'cidr',
    table: ['10.0.0.128/25 high', '10.0.0.0/25 low', '2001:db8::/127 pair', 'fe80::/10 link-local', '0.0.0.0/32 zero'].join('\n'),
    keys: ['10.0.0.127', '10.0.0.128', '10.0.0.255', '10.0.1.0', '2001:db8::', '2001:db8::1', '2001:db8::2', 'fe80::1', 'febf:ffff::1', 'fec0::1', '0.0.0.0'],
  },
  {
    name: 'cidr: a rule applies only to keys of its own address family (also !pattern and if)',
    type: 'cidr',
    table: ['if !10.0.0.0/8', '::/0 six-inside', '!192.0.2.0/24 four-inside', 'endif', '::/0 six-outside', '!2001:db8::/32 not-doc6'].join('\n'),
    keys: ['::1', '2001:db8::1', '192.0.2.1', '198.51.100.1', '10.1.1.1'],
  },
];

/** Query real postmap with all keys at once (`-q -`): key → value. */
function postmapAnswers(dir: string, type: string, file: string, keys: readonly string[]): Map<string, string> {
  const r = postfix('postmap', ['-c', dir, '-q', '-', `${type}:${file}`], { stdin: keys.join('\n') + '\n' });
  assert.ok(r.code === 0 || r.code === 1, `postmap failed: ${r.stderr}`);
  assert.equal(r.stderr, '', `postmap warned: ${r.stderr}`);
  const answers = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    if (line === '') continue;
    const tab = line.indexOf('\t');
    answers.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return answers;
}

/**
 * Postfix waits (about 2 s) for a config or table file modified in the
 * current second to settle; backdating the files keeps these tests fast.
 */
function writeSettled(path: string, text: string): void {
  writeFileSync(path, text);
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
}

function setup(table: string, ext: string): { dir: string; file: string; cleanup: () => void } {
  const { dir, cleanup } = tempDir();
  writeSettled(join(dir, 'main.cf'), '');
  const file = join(dir, `table.${ext}`);
  writeSettled(file, table + '\n');
  return { dir, file, cleanup };
}

for (const c of CORPUS) {
  test(`same answers as postmap -q: ${c.name}`, async () => {
    const { dir, file, cleanup } = setup(c.table, c.type);
    try {
      const expected = postmapAnswers(dir, c.type, file, c.keys);
      const table = await TYPES[c.type]!.open(file, `${c.type}:${file}`, {});
      for (const key of c.keys) {
        const r = await table.lookup(key);
        assert.notEqual(r.kind, 'error');
        assert.equal(r.kind === 'found' ? r.value : undefined, expected.get(key), `${c.type} key ${JSON.stringify(key)}`);
      }
      assert.ok(expected.size > 0, 'the corpus must exercise found keys');
    } finally {
      cleanup();
    }
  });
}

test('same answers for keys with newlines (one postmap run per key)', async () => {
  const cases: [string, 'regexp' | 'pcre', string, string[]][] = [
    ['pcre $ before final newline', 'pcre', '/^end$/ dollar\n/^b$/m multi\n/a.c/ dotall', ['end\n', 'end\n\n', 'a\nb\nc', 'a\nc']],
    ['regexp m flag and dot', 'regexp', '/^b$/m multi\n/a.c/ dot\n/^end$/ end', ['a\nb\nc', 'a\nc', 'end\n']],
  ];
  for (const [name, type, text, keys] of cases) {
    const { dir, file, cleanup } = setup(text, type);
    try {
      const table = await TYPES[type]!.open(file, `${type}:${file}`, {});
      for (const key of keys) {
        const r = postfix('postmap', ['-c', dir, '-q', key, `${type}:${file}`]);
        const expected = r.code === 0 ? r.stdout.replace(/\n$/, '') : undefined;
        const ours = await table.lookup(key);
        assert.equal(ours.kind === 'found' ? ours.value : undefined, expected, `${name}: ${JSON.stringify(key)}`);
      }
    } finally {
      cleanup();
    }
  }
});

/**
 * Bad tables. `postfix` is the warning Postfix prints (it then skips the rule
 * or line and keeps going); sealpost refuses the whole table with a
 * ConfigError on the same line — stricter on purpose: a silently dropped TLS
 * policy or transport rule is worse than a refused reload.
 */
const BAD: readonly { type: 'regexp' | 'pcre' | 'cidr'; table: string; line: number; postfix: RegExp; ours: RegExp }[] = [
  { type: 'regexp', table: '/ok/ x\n/abc', line: 2, postfix: /no closing regexp delimiter "\/": skipping this rule/, ours: /no closing regexp delimiter/ },
  { type: 'regexp', table: '/x/q val', line: 1, postfix: /unknown regexp option "q": skipping this rule/, ours: /unknown regexp option "q"/ },
  { type: 'regexp', table: '/ok/ x\n/(/ val', line: 2, postfix: /Unmatched \( or \\\(/, ours: /Unmatched \( or \\\(/ },
  { type: 'regexp', table: '/ok/ x\n/(b/\n  continued', line: 2, postfix: /line 2: Unmatched/, ours: /Unmatched/ },
  { type: 'regexp', table: 'if /a/\n/b/ c', line: 1, postfix: /IF has no matching ENDIF/, ours: /IF has no matching ENDIF/ },
  { type: 'regexp', table: '/a/ x\nendif', line: 2, postfix: /ignoring ENDIF without matching IF/, ours: /ENDIF without matching IF/ },
  { type: 'regexp', table: 'if /a/\n/b/ c\nendif junk', line: 3, postfix: /ignoring extra text after ENDIF/, ours: /extra text after ENDIF/ },
  { type: 'regexp', table: '/(a)/ $2', line: 1, postfix: /out of range replacement index "2": skipping this rule/, ours: /out of range replacement index "2"/ },
  { type: 'regexp', table: '!/(a)/ $1', line: 1, postfix: /\$number found in negative match replacement text: skipping this rule/, ours: /negated pattern/ },
  { type: 'regexp', table: '/a/ ${x}', line: 1, postfix: /non-numeric replacement index "x"/, ours: /non-numeric replacement index "x"/ },
  { type: 'regexp', table: '/a/', line: 1, postfix: /no replacement text: using empty string/, ours: /no result after the pattern/ },
  { type: 'regexp', table: '/*a/ x', line: 1, postfix: /Invalid preceding regular expression/, ours: /Invalid preceding regular expression/ },
  { type: 'regexp', table: '/(?i)a/ x', line: 1, postfix: /Invalid preceding regular expression/, ours: /Invalid preceding regular expression/ },
  { type: 'regexp', table: '/q{/ x', line: 1, postfix: /Unmatched \\\{/, ours: /Unmatched \\\{|Invalid content/ },
  { type: 'pcre', table: '/*/ x', line: 1, postfix: /quantifier does not follow a repeatable item/, ours: /follows nothing repeatable/ },
  { type: 'pcre', table: '/(a)/ $0', line: 1, postfix: /out of range replacement index "0"/, ours: /out of range replacement index "0"/ },
  { type: 'pcre', table: '/x/ ok\nif /a/ junk\nendif', line: 2, postfix: /ignoring extra text after IF statement: "junk"/, ours: /extra text after IF statement: "junk"/ },
  { type: 'cidr', table: '10.0.0.1/8 a', line: 1, postfix: /non-null host address bits in "10.0.0.1\/8", perhaps you should use "10.0.0.0\/8" instead/, ours: /non-null host address bits in "10.0.0.1\/8", perhaps you should use "10.0.0.0\/8" instead/ },
  { type: 'cidr', table: 'x\n2001:db8::1/64 a', line: 1, postfix: /bad address pattern: "x"/, ours: /bad address pattern: "x"/ },
  { type: 'cidr', table: '1.1.1.1 ok\n2001:db8::1/64 a', line: 2, postfix: /perhaps you should use "2001:db8::\/64" instead/, ours: /perhaps you should use "2001:db8::\/64" instead/ },
  { type: 'cidr', table: '10.0.0.0/33 a', line: 1, postfix: /bad mask length in "10.0.0.0\/33"/, ours: /bad mask length in "10.0.0.0\/33"/ },
  { type: 'cidr', table: '1.2.3.4', line: 1, postfix: /no lookup result: skipping this rule/, ours: /no result/ },
  { type: 'cidr', table: '1.2.3.256 a', line: 1, postfix: /bad address pattern: "1.2.3.256"/, ours: /bad address pattern: "1.2.3.256"/ },
];

test('bad tables: Postfix warns about the same line that sealpost refuses', async () => {
  for (const b of BAD) {
    const { dir, file, cleanup } = setup(b.table, b.type);
    try {
      const r = postfix('postmap', ['-c', dir, '-q', 'probe', `${b.type}:${file}`]);
      const first = r.stderr.split('\n')[0] ?? '';
      assert.match(first, new RegExp(`${b.type} map ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}, line ${b.line}: `), `postfix: ${r.stderr}`);
      assert.match(r.stderr, b.postfix);
      await assert.rejects(TYPES[b.type]!.open(file, `${b.type}:${file}`, {}), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.equal(err.line, b.line, err.message);
        assert.ok(err.message.startsWith(`${file}, line ${b.line}: `), err.message);
        assert.match(err.message, b.ours);
        return true;
      });
    } finally {
      cleanup();
    }
  }
});

test('documented difference: POSIX leftmost-longest vs JavaScript leftmost-first captures', async () => {
  // Whether a key matches is the same; which alternative a group captures can
  // differ. Postfix (glibc) captures the longest alternative, sealpost the first.
  const { dir, file, cleanup } = setup('/^(a|ab)(c|bcd)?/ [$1][$2]', 'regexp');
  try {
    const r = postfix('postmap', ['-c', dir, '-q', 'abcd', `regexp:${file}`]);
    assert.equal(r.stdout.trim(), '[a][bcd]');
    const ours = await regexpType.open(file, `regexp:${file}`, {});
    assert.deepEqual(await ours.lookup('abcd'), { kind: 'found', value: '[a][bcd]' });
    const { dir: d2, file: f2, cleanup: c2 } = setup('/^(a|ab)(c|bcd)?$/ [$1][$2]', 'regexp');
    try {
      assert.equal(postfix('postmap', ['-c', d2, '-q', 'abc', `regexp:${f2}`]).stdout.trim(), '[ab][c]');
      const ours2 = await regexpType.open(f2, `regexp:${f2}`, {});
      assert.deepEqual(await ours2.lookup('abc'), { kind: 'found', value: '[ab][c]' });
    } finally {
      c2();
    }
  } finally {
    cleanup();
  }
});

test('inline tables (Postfix 3.7 TYPE:{ {rule}, {rule} }) and an escaped delimiter', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeSettled(join(dir, 'main.cf'), '');
    const cases: [string, string, string[]][] = [
      ['regexp', '{ { /^a/ A b }, { /^b/ B } }', ['abc', 'bcd', 'cde']],
      ['pcre', '{ { /^a\\|b$/ pipe }, { /^(x)/ got-$1 } }', ['a|b', 'a', 'xy']],
      ['cidr', '{ { 10.0.0.0/8 ten }, { ::/0 six } }', ['10.1.1.1', '2001:db8::1', '192.0.2.1']],
    ];
    for (const [type, name, keys] of cases) {
      const table = await TYPES[type]!.open(name, `${type}:${name}`, {});
      for (const key of keys) {
        const r = postfix('postmap', ['-c', dir, '-q', key, `${type}:${name}`]);
        const expected = r.code === 0 ? r.stdout.replace(/\n$/, '') : undefined;
        const ours = await table.lookup(key);
        assert.equal(ours.kind === 'found' ? ours.value : undefined, expected, `${type}:${name} ${key}`);
      }
    }
  } finally {
    cleanup();
  }
});
