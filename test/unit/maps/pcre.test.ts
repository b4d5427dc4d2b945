/**
 * pcre.test.ts — pcre: tables: flags, PCRE → JavaScript translation, and the
 * PCRE features we refuse with a ConfigError naming file and line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compilePcre, pcreType } from '../../../src/maps/pcre.ts';
import { ConfigError } from '../../../src/lib/errors.ts';
import type { LookupTable } from '../../../src/maps/types.ts';
import { tempDir } from '../../harness/cli.ts';

async function open(text: string, warn?: (m: string) => void): Promise<{ t: LookupTable; cleanup: () => void }> {
  const { dir, cleanup } = tempDir();
  const path = join(dir, 'table.pcre');
  writeFileSync(path, text);
  try {
    return { t: await pcreType.open(path, `pcre:${path}`, warn ? { warn } : {}), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

async function values(text: string, keys: readonly string[]): Promise<(string | undefined)[]> {
  const { t, cleanup } = await open(text);
  try {
    const out: (string | undefined)[] = [];
    for (const k of keys) {
      const r = await t.lookup(k);
      assert.notEqual(r.kind, 'error');
      out.push(r.kind === 'found' ? r.value : undefined);
    }
    return out;
  } finally {
    cleanup();
  }
}

test('descriptor', () => {
  assert.equal(pcreType.type, 'pcre');
  assert.equal(pcreType.keyKind, 'pattern');
  assert.equal(pcreType.listed, true);
});

test('pcre_table(5) example: lookahead and substitution', async () => {
  const v = await values('/^(?!owner-)(.*)-outgoing@(.*)/ 550 Use ${1}@${2} instead\n', ['list-outgoing@x.org', 'owner-list-outgoing@x']);
  assert.deepEqual(v, ['550 Use list@x.org instead', undefined]);
});

test('default flags: case-insensitive, DOTALL; s and i toggle', async () => {
  assert.deepEqual(await values('/a.b/ dotall\n', ['A\nB']), ['dotall']);
  assert.deepEqual(await values('/a.b/s nodotall\n', ['A\nB', 'AxB']), [undefined, 'nodotall']);
  assert.deepEqual(await values('/Ab/i exact\n', ['ab', 'Ab']), [undefined, 'exact']);
});

test('$ matches before a final newline unless E; \\Z and \\z', async () => {
  assert.deepEqual(await values('/^end$/ plain\n', ['end\n', 'end\n\n']), ['plain', undefined]);
  assert.deepEqual(await values('/^end$/E only\n', ['end\n', 'end']), [undefined, 'only']);
  assert.deepEqual(await values('/d\\Z/ bigz\n/e\\z/ smallz\n', ['d\n', 'e\n', 'e']), ['bigz', undefined, 'smallz']);
});

test('m, x, A, U flags', async () => {
  assert.deepEqual(await values('/^b$/m multi\n', ['a\nb\nc']), ['multi']);
  assert.deepEqual(await values('/^ x y z $/x ext\n', ['xyz', 'x y z']), ['ext', undefined]);
  assert.deepEqual(await values('/bc/A anch\n', ['bcd', 'abc']), ['anch', undefined]);
  assert.deepEqual(await values('/(a+?)/U greedy=$1\n/(b+)/U lazy=$1\n', ['aaa', 'bbb']), ['greedy=aaa', 'lazy=b']);
});

test('leading inline options, \\Q..\\E, POSIX classes, named groups, comments', async () => {
  assert.deepEqual(await values('/(?-i)MiXeD/ exact\n', ['MiXeD', 'mixed']), ['exact', undefined]);
  assert.deepEqual(await values('/\\Qa.b\\E/ quoted\n', ['a.b', 'axb']), ['quoted', undefined]);
  assert.deepEqual(await values('/^[[:alpha:]]+[[:digit:]]$/ cls\n', ['hello9', 'hello']), ['cls', undefined]);
  assert.deepEqual(await values('/^(?P<u>\\w+)@(?#comment)(\\w+)$/ $1 at $2\n', ['me@host']), ['me at host']);
  assert.deepEqual(await values('/^\\x41\\x{42}\\e?$/ hex\n', ['ab']), ['hex']);
  assert.deepEqual(await values('/^a\\h+b$/ hspace\n', ['a \tb', 'a\nb']), ['hspace', undefined]);
});

test('X is accepted with a warning, as Postfix with PCRE2 does', async () => {
  const warnings: string[] = [];
  const { t, cleanup } = await open('/x/X ok\n', (m) => warnings.push(m));
  try {
    assert.deepEqual(await t.lookup('x'), { kind: 'found', value: 'ok' });
    assert.match(warnings[0]!, /line 1: ignoring obsolete regexp option "X"/);
  } finally {
    cleanup();
  }
});

test('PCRE features JavaScript lacks are ConfigErrors naming the line (the table is refused)', async () => {
  const cases: [string, RegExp][] = [
    ['/a++b/ x', /possessive quantifier/],
    ['/(?>x+)y/ x', /atomic group/],
    ['/(a(?R)?b)/ x', /recursion/],
    ['/(?(1)a|b)/ x', /conditional/],
    ['/\\Ga/ x', /\\G/],
    ['/a(?i)b/ x', /option setting/],
    ['/\\p{L}/ x', /Unicode property/],
    ['/(*UTF)a/ x', /verb/],
    ['/a\\Kb/ x', /\\K/],
    ['/a{2}+/ x', /possessive/],
  ];
  for (const [rule, re] of cases) {
    await assert.rejects(open(`# comment\n${rule}\n`), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(err.line, 2, err.message);
      assert.match(err.message, re);
      assert.match(err.message, /table\.pcre, line 2: /);
      return true;
    });
  }
});

test('rules PCRE2 refuses are skipped with Postfix\'s warning; the rest of the table works', async () => {
  const cases: [string, string][] = [
    ['/\\y/ x', 'error in regex at offset 1: unrecognized character follows \\'],
    ['/(/ x', 'error in regex at offset 1: missing closing parenthesis'],
    ['/*/ x', 'error in regex at offset 0: quantifier does not follow a repeatable item'],
    ['/(?i)*/ x', 'error in regex at offset 4: quantifier does not follow a repeatable item'],
    ['/x/q x', 'unknown regexp option "q": skipping this rule'],
    ['/(a)\\2/ x', 'error in regex at offset 4: reference to non-existent subpattern'],
    ['/a{3,2}/ x', 'error in regex at offset 5: numbers out of order in {} quantifier'],
    ['/[:digit:]/ x', 'error in regex at offset 0: POSIX named classes are supported only within a class'],
    ['/(?z)/ x', 'error in regex at offset 2: unrecognized character after (? or (?-'],
  ];
  for (const [rule, reason] of cases) {
    const warnings: string[] = [];
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'table.pcre');
      writeFileSync(path, `/^first$/ one\n${rule}\n/^last$/ two\n`);
      const t = await pcreType.open(path, `pcre:${path}`, { warn: (m) => warnings.push(m) });
      assert.deepEqual(warnings, [`pcre map ${path}, line 2: ${reason}`], rule);
      assert.deepEqual(await t.lookup('first'), { kind: 'found', value: 'one' });
      assert.deepEqual(await t.lookup('last'), { kind: 'found', value: 'two' });
    } finally {
      cleanup();
    }
  }
});

test('compilePcre reports the capture group count', () => {
  const flags = { i: true, m: false, s: true, x: false, A: false, E: false, U: false };
  const place = { file: 'f', line: 1 };
  assert.equal(compilePcre('(a)(?:b)(?<n>c)(?=d)', flags, place).groups, 2);
});
