/**
 * regexp.test.ts — regexp: tables: syntax, flags, if/endif, substitution,
 * POSIX translation, and the errors that name file and line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { regexpType, translatePosix } from '../../../src/maps/regexp.ts';
import { ConfigError } from '../../../src/lib/errors.ts';
import type { LookupTable } from '../../../src/maps/types.ts';
import { tempDir } from '../../harness/cli.ts';

async function withTable(text: string, fn: (t: LookupTable, path: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'table.re');
    writeFileSync(path, text);
    const t = await regexpType.open(path, `regexp:${path}`, {});
    await fn(t, path);
  } finally {
    cleanup();
  }
}

async function value(t: LookupTable, key: string): Promise<string | undefined> {
  const r = await t.lookup(key);
  assert.notEqual(r.kind, 'error');
  return r.kind === 'found' ? r.value : undefined;
}

async function withWarnings(text: string, fn: (warnings: string[], path: string, t?: LookupTable) => void | Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'w.re');
    writeFileSync(path, text);
    const warnings: string[] = [];
    const t = await regexpType.open(path, `regexp:${path}`, { warn: (m) => warnings.push(m) });
    await fn(warnings, path, t);
  } finally {
    cleanup();
  }
}

async function openError(text: string): Promise<ConfigError> {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'bad.re');
    writeFileSync(path, text);
    await assert.rejects(regexpType.open(path, `regexp:${path}`, {}), ConfigError);
    try {
      await regexpType.open(path, `regexp:${path}`, {});
    } catch (err) {
      return err as ConfigError;
    }
    throw new Error('unreachable');
  } finally {
    cleanup();
  }
}

test('descriptor', () => {
  assert.equal(regexpType.type, 'regexp');
  assert.equal(regexpType.keyKind, 'pattern');
  assert.equal(regexpType.listed, true);
});

test('first match wins, case-insensitive by default, i toggles it', async () => {
  await withTable('/^a/ first\n/^ab/ second\n/CaSe/i exact\n', async (t) => {
    assert.equal(await value(t, 'abc'), 'first');
    assert.equal(await value(t, 'ABC'), 'first');
    assert.equal(await value(t, 'CaSe'), 'exact');
    assert.equal(await value(t, 'case'), undefined);
    assert.equal(t.keyKind, 'pattern');
  });
});

test('negation, if/endif nesting and if !pattern', async () => {
  const text = ['!/bar/ notbar-but-only-if-nothing-else', 'if /^dom\\./', 'if !/\\.org$/', '/x/ dom-x-not-org', 'endif', '/y/ dom-y', 'endif'].join('\n');
  await withTable(text + '\n', async (t) => {
    assert.equal(await value(t, 'bar'), undefined);
    assert.equal(await value(t, 'dom.x.com'), 'notbar-but-only-if-nothing-else');
  });
  await withTable(text.split('\n').slice(1).join('\n') + '\n', async (t) => {
    assert.equal(await value(t, 'dom.x.com'), 'dom-x-not-org');
    assert.equal(await value(t, 'dom.x.org'), undefined);
    assert.equal(await value(t, 'dom.y.org'), 'dom-y');
    assert.equal(await value(t, 'other.y'), undefined);
  });
});

test('IF/ENDIF keywords are case-insensitive', async () => {
  await withTable('IF /a/\n/b/ ab\nEndIf\n', async (t) => {
    assert.equal(await value(t, 'ab'), 'ab');
    assert.equal(await value(t, 'b'), undefined);
  });
});

test('substitution $1 ${1} $(1) $$ and unset groups', async () => {
  await withTable('/^(foo)@(.*)$/ u=$1 d=${2} p=$(1) lit=$$\n/^(a)(b)?(c)$/ [$2]${1}0\n', async (t) => {
    assert.equal(await value(t, 'FOO@x.com'), 'u=FOO d=x.com p=FOO lit=$');
    assert.equal(await value(t, 'ac'), '[]a0');
  });
});

test('comments, blank lines, continuation lines, any delimiter, trailing whitespace', async () => {
  await withTable('# c\n\n   # indented comment\n|a b| space\n/multi/\n  line\n  result  \n#/x/ no\n', async (t) => {
    assert.equal(await value(t, 'xa by'), 'space');
    assert.equal(await value(t, 'multi'), 'line  result');
    assert.equal(await value(t, '#/x/'), undefined);
  });
});

test('POSIX classes, bracket rules, GNU escapes, intervals', async () => {
  await withTable(
    ['/^[[:digit:]]{3}$/ digits', '/^[\\.]x$/ bracket-backslash', '/^[]k]+$/ bracket-close', '/^\\w+\\s\\<z\\>$/ gnu', '/^q{,2}r$/ interval', '/^s**$/ stacked'].join('\n') + '\n',
    async (t) => {
      assert.equal(await value(t, '123'), 'digits');
      assert.equal(await value(t, '12'), undefined);
      assert.equal(await value(t, '\\x'), 'bracket-backslash');
      assert.equal(await value(t, '.x'), 'bracket-backslash');
      assert.equal(await value(t, 'k]k'), 'bracket-close');
      assert.equal(await value(t, 'hi z'), 'gnu');
      assert.equal(await value(t, 'qqr'), 'interval');
      assert.equal(await value(t, 'r'), 'interval');
      assert.equal(await value(t, 'sss'), 'stacked');
    },
  );
});

test('x flag toggles to POSIX basic syntax', async () => {
  await withTable('/^b\\(c\\)\\{2\\}(+)$/x bre=$1\n', async (t) => {
    assert.equal(await value(t, 'bcc(+)'), 'bre=c');
    assert.equal(await value(t, 'bcc'), undefined);
  });
});

test('m flag: ^ and $ at newlines; default: . matches newline', async () => {
  await withTable('/^b$/m line\n/a.c/ dot\n', async (t) => {
    assert.equal(await value(t, 'a\nb\nc'), 'line');
    assert.equal(await value(t, 'a\nc'), 'dot');
  });
});

test('translatePosix output', () => {
  const place = { file: 'f', line: 1 };
  assert.equal(translatePosix('a.b', { i: true, x: true, m: false }, place).source, 'a[\\s\\S]b');
  assert.equal(translatePosix('(a)(b(c))', { i: true, x: true, m: false }, place).groups, 3);
  assert.equal(translatePosix('[^a]', { i: true, x: true, m: true }, place).source, '[^a\\n]');
});

test('inline table (Postfix 3.7 regexp:{ {rule}, {rule} })', async () => {
  const t = await regexpType.open('{ { /^a/ A }, { /^b/ B $$ } }', 'regexp:{ { /^a/ A }, { /^b/ B $$ } }', {});
  assert.equal(await value(t, 'abc'), 'A');
  assert.equal(await value(t, 'bcd'), 'B $');
});

test('bad rules are skipped with Postfix\'s warnings (dict_regexp.c); the rest of the table works', async () => {
  const cases: [string, string[]][] = [
    ['/abc', ['line 2: no closing regexp delimiter "/": skipping this rule']],
    ['/x/q val', ['line 2: unknown regexp option "q": skipping this rule']],
    ['/(/ val', ['line 2: Unmatched ( or \\(']],
    ['/(a)/ $2', ['line 2: out of range replacement index "2": skipping this rule']],
    ['!/(a)/ $1', ['line 2: $number found in negative match replacement text: skipping this rule']],
    ['/a/ ${x}', ['line 2: non-numeric replacement index "x"', 'line 2: bad replacement syntax: skipping this rule']],
    ['/a/ $0', ['line 2: out-of-range replacement index "0"', 'line 2: bad replacement syntax: skipping this rule']],
    ['/*a/ x', ['line 2: Invalid preceding regular expression']],
    ['/a{x/ x', ['line 2: Unmatched \\{']],
    ['/[[:nope:]]/ x', ['line 2: Invalid character class name']],
    ['/(a\\1)/ x', ['line 2: Invalid back reference']],
    ['junk here', ['line 2: ignoring unrecognized request']],
    ['endif', ['line 2: ignoring ENDIF without matching IF']],
    ['!', ['line 2: no regexp: skipping this rule']],
  ];
  for (const [rule, expected] of cases) {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'bad.re');
      writeFileSync(path, `/^first$/ one\n${rule}\n/^last$/ two\n`);
      const warnings: string[] = [];
      const t = await regexpType.open(path, `regexp:${path}`, { warn: (m) => warnings.push(m) });
      assert.deepEqual(warnings, expected.map((e) => `regexp map ${path}, ${e}`), rule);
      assert.equal(await value(t, 'first'), 'one');
      assert.equal(await value(t, 'last'), 'two');
    } finally {
      cleanup();
    }
  }
  // mac_parse() speaks without the map prefix.
  await withWarnings('/a/ ${1\n/b/ cost $\n', (warnings, path) => {
    assert.deepEqual(warnings, [
      'truncated macro reference: "${1"',
      `regexp map ${path}, line 1: bad replacement syntax: skipping this rule`,
      'empty macro name: "cost $"',
      `regexp map ${path}, line 2: bad replacement syntax: skipping this rule`,
    ]);
  });
});

test('kept with a warning: empty result, extra text after IF/ENDIF, IF without ENDIF, leading whitespace', async () => {
  await withWarnings(' lead /a/ x\n/e/\nif /b/ junk\n/b1/ inside-b\nendif extra\nif /c/\n/c1/ inside-c\n', async (warnings, path, t) => {
    assert.deepEqual(warnings, [
      `${path}: logical line must not start with whitespace: " lead /a/ x"`,
      `regexp map ${path}, line 2: no replacement text: using empty string`,
      `regexp map ${path}, line 3: ignoring extra text after IF statement: "junk"`,
      `regexp map ${path}, line 3: do not prepend whitespace to statements between IF and ENDIF`,
      `regexp map ${path}, line 5: ignoring extra text after ENDIF`,
      `regexp map ${path}, line 6: IF has no matching ENDIF`,
    ]);
    assert.equal(await value(t!, 'a'), undefined);
    assert.equal(await value(t!, 'e'), '');
    assert.equal(await value(t!, 'b1'), 'inside-b');
    assert.equal(await value(t!, 'c1'), 'inside-c');
  });
});

test('an IF whose pattern is bad is skipped: its ENDIF is then unmatched and its rules apply to every key', async () => {
  await withWarnings('if /(/\n/x/ inside\nendif\n', async (warnings, path, t) => {
    assert.deepEqual(warnings, [`regexp map ${path}, line 1: Unmatched ( or \\(`, `regexp map ${path}, line 3: ignoring ENDIF without matching IF`]);
    assert.equal(await value(t!, 'x'), 'inside');
  });
});

test('/pattern1/!/pattern2/: the first must match and the second must not', async () => {
  await withTable('/^a/!/b/ a-without-b\n/^a/i!!/c/ a-with-c\n', async (t) => {
    assert.equal(await value(t, 'axx'), 'a-without-b');
    assert.equal(await value(t, 'abc'), 'a-with-c');
    assert.equal(await value(t, 'ab'), undefined);
  });
});

test('\\d has no POSIX meaning: the table is refused (an UnsupportedPattern naming file and line)', async () => {
  const err = await openError('/ok/ x\n/\\d/ x\n');
  assert.equal(err.line, 2);
  assert.match(err.message, /not a POSIX regular expression escape.*\[\[:digit:\]\]/);
  assert.match(err.message, /bad\.re, line 2: /);
});

test('missing file is a ConfigError naming the file', async () => {
  await assert.rejects(regexpType.open('/nonexistent/x.re', 'regexp:/nonexistent/x.re', {}), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match((err as Error).message, /\/nonexistent\/x\.re: No such file or directory/);
    return true;
  });
});

test('relative names resolve against baseDir; isStale sees edits', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'rel.re'), '/a/ one\n');
    const t = await regexpType.open('rel.re', 'regexp:rel.re', { baseDir: dir });
    assert.equal(await value(t, 'a'), 'one');
    assert.equal(t.isStale?.(), false);
    writeFileSync(join(dir, 'rel.re'), '/a/ two\n');
    const { utimesSync } = await import('node:fs');
    utimesSync(join(dir, 'rel.re'), new Date(), new Date(Date.now() + 5000));
    assert.equal(t.isStale?.(), true);
    await t.close();
  } finally {
    cleanup();
  }
});
