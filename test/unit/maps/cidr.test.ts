/**
 * cidr.test.ts — cidr: tables: address forms, negation, if/endif, first
 * match, IPv6 binary comparison, and the errors for bad networks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cidrType, parseIPv4, parseIPv6, parseNetwork } from '../../../src/maps/cidr.ts';
import { ConfigError } from '../../../src/lib/errors.ts';
import type { LookupTable } from '../../../src/maps/types.ts';
import { tempDir } from '../../harness/cli.ts';

async function withTable(text: string, fn: (t: LookupTable) => Promise<void>): Promise<void> {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'table.cidr');
    writeFileSync(path, text);
    await fn(await cidrType.open(path, `cidr:${path}`, {}));
  } finally {
    cleanup();
  }
}

async function value(t: LookupTable, key: string): Promise<string | undefined> {
  const r = await t.lookup(key);
  assert.notEqual(r.kind, 'error');
  return r.kind === 'found' ? r.value : undefined;
}

test('descriptor', () => {
  assert.deepEqual([cidrType.type, cidrType.keyKind, cidrType.listed], ['cidr', 'pattern', true]);
});

test('cidr_table(5) example: rule order, IPv4 and IPv6', async () => {
  await withTable('192.168.1.1 OK\n192.168.0.0/16 REJECT\n2001:db8::1 OK\n2001:db8::/32 REJECT\n', async (t) => {
    assert.equal(await value(t, '192.168.1.1'), 'OK');
    assert.equal(await value(t, '192.168.7.1'), 'REJECT');
    assert.equal(await value(t, '2001:db8::1'), 'OK');
    assert.equal(await value(t, '2001:0DB8:0:0::1'), 'OK');
    assert.equal(await value(t, '2001:db8:ffff::2'), 'REJECT');
    assert.equal(await value(t, '10.0.0.1'), undefined);
  });
});

test('brackets in patterns, not in keys; families never mix; non-addresses not found', async () => {
  await withTable('[10.0.0.0]/8 ten\n[::1] lo6\n0.0.0.0/0 any4\n', async (t) => {
    assert.equal(await value(t, '10.1.2.3'), 'ten');
    assert.equal(await value(t, '[10.1.2.3]'), undefined);
    assert.equal(await value(t, '::1'), 'lo6');
    assert.equal(await value(t, '::ffff:10.1.2.3'), undefined);
    assert.equal(await value(t, '1.2.3.4'), 'any4');
    assert.equal(await value(t, 'foo'), undefined);
    assert.equal(await value(t, '010.1.2.3'), undefined);
  });
});

test('negation and if/endif', async () => {
  await withTable('if 10.0.0.0/8\nif !10.1.0.0/16\n!10.2.0.0/16 ten-not-one-not-two\nendif\nendif\n!192.168.0.0/16 not192\n', async (t) => {
    assert.equal(await value(t, '10.3.0.1'), 'ten-not-one-not-two');
    assert.equal(await value(t, '10.1.0.1'), 'not192');
    assert.equal(await value(t, '10.2.0.1'), 'not192');
    assert.equal(await value(t, '192.168.1.1'), undefined);
  });
});

test('prefix boundaries', async () => {
  await withTable('10.0.0.128/25 high\n2001:db8::/127 pair\n', async (t) => {
    assert.equal(await value(t, '10.0.0.127'), undefined);
    assert.equal(await value(t, '10.0.0.255'), 'high');
    assert.equal(await value(t, '2001:db8::1'), 'pair');
    assert.equal(await value(t, '2001:db8::2'), undefined);
  });
});

test('address parsers', () => {
  assert.deepEqual(Array.from(parseIPv4('1.2.3.4')!), [1, 2, 3, 4]);
  assert.equal(parseIPv4('1.2.3'), undefined);
  assert.equal(parseIPv4('1.2.3.256'), undefined);
  assert.equal(parseIPv4('01.2.3.4'), undefined);
  assert.deepEqual(Array.from(parseIPv6('::ffff:1.2.3.4')!).slice(10), [0xff, 0xff, 1, 2, 3, 4]);
  assert.equal(parseIPv6('1::2::3'), undefined);
  assert.equal(parseIPv6('1:2:3:4:5:6:7:8:9'), undefined);
  assert.equal(parseIPv6('fe80::1%eth0'), undefined);
  assert.equal(parseNetwork('2001:db8::/32', { file: 'f', line: 1 }).prefix, 32);
});

test('bad rules are skipped with dict_cidr.c\'s warning; the rest of the table works', async () => {
  const cases: [string, string][] = [
    ['10.0.0.1/8 a', 'non-null host address bits in "10.0.0.1/8", perhaps you should use "10.0.0.0/8" instead'],
    ['2001:db8::1/64 a', 'non-null host address bits in "2001:db8::1/64", perhaps you should use "2001:db8::/64" instead'],
    ['10.0.0.0/33 a', 'bad mask length in "10.0.0.0/33"'],
    ['::/129 a', 'bad mask length in "::/129"'],
    ['1.2.3 a', 'bad address pattern: "1.2.3"'],
    ['foo a', 'bad address pattern: "foo"'],
    ['1.2.3.4/x a', 'bad mask value in "1.2.3.4/x"'],
    ['1.2.3/8 a', 'bad network value in "1.2.3/8"'],
    ['[1.2.3.4 a', 'missing \']\' character after "[1.2.3.4"'],
    ['[1.2.3.4]x a', 'garbage after "[1.2.3.4]"'],
    ['1.2.3.4', 'no lookup result'],
    ['endif', 'ENDIF without IF'],
    ['endif x', 'garbage after ENDIF'],
    ['if', 'no address pattern'],
  ];
  for (const [rule, why] of cases) {
    const { dir, cleanup } = tempDir();
    try {
      const path = join(dir, 'bad.cidr');
      writeFileSync(path, `127.0.0.1 ok\n${rule}\n10.9.0.0/16 ten\n`);
      const warnings: string[] = [];
      const t = await cidrType.open(path, `cidr:${path}`, { warn: (m) => warnings.push(m) });
      assert.deepEqual(warnings, [`cidr map ${path}, line 2: ${why}: skipping this rule`], rule);
      assert.equal(await value(t, '127.0.0.1'), 'ok');
      assert.equal(await value(t, '10.9.8.7'), 'ten');
    } finally {
      cleanup();
    }
  }
});

test('inline cidr table', async () => {
  const t = await cidrType.open('{ { 10.0.0.0/8 ten }, { ::/0 six } }', 'cidr:{...}', {});
  assert.equal(await value(t, '10.9.9.9'), 'ten');
  assert.equal(await value(t, '2001:db8::5'), 'six');
});
