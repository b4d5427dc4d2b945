import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTable, parseSpec, supportedTypes, TableSet } from '../../../src/maps/registry.ts';
import { encodeIndexed, writeIndexedFile } from '../../../src/maps/indexed.ts';
import { tempDir } from '../../harness/cli.ts';

test('parseSpec splits at the first colon; bare names take the default type', () => {
  assert.deepEqual(parseSpec('hash:/etc/x'), { type: 'hash', name: '/etc/x' });
  assert.deepEqual(parseSpec('socketmap:inet:127.0.0.1:8461:postfix'), { type: 'socketmap', name: 'inet:127.0.0.1:8461:postfix' });
  assert.deepEqual(parseSpec('inline:{ a=b, { c = d e } }'), { type: 'inline', name: '{ a=b, { c = d e } }' });
  assert.deepEqual(parseSpec('/etc/x', 'cdb'), { type: 'cdb', name: '/etc/x' });
  assert.throws(() => parseSpec('hash:'), /^Error: open dictionary: expecting "type:name" form instead of "hash:"$|expecting "type:name" form instead of "hash:"/);
  assert.throws(() => parseSpec(':x'), /expecting "type:name" form instead of ":x"/);
});

test('supportedTypes lists every type sorted', () => {
  const types = supportedTypes();
  for (const t of ['btree', 'cdb', 'cidr', 'fail', 'hash', 'inline', 'lmdb', 'pcre', 'regexp', 'socketmap', 'static', 'texthash']) {
    assert.ok(types.includes(t), t);
  }
  assert.deepEqual(types, [...types].sort());
});

test('unknown type: Postfix words plus the supported list', async () => {
  await assert.rejects(openTable('foo:/tmp/y'), (e: Error) => e.message.startsWith('unsupported dictionary type: foo (supported: btree cdb'));
});

test('openTable: default type, inline and static', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const name = join(dir, 't');
    writeIndexedFile('btree', name, encodeIndexed([['k', 'v']], true));
    const t = await openTable(name, { defaultType: 'btree' });
    assert.equal(t.type, 'btree');
    assert.equal(t.spec, `btree:${name}`);
    assert.deepEqual(await t.lookup('K'), { kind: 'found', value: 'v' });
    assert.deepEqual(await (await openTable('inline:{a=b}')).lookup('a'), { kind: 'found', value: 'b' });
    assert.deepEqual(await (await openTable('static:{ x y }')).lookup('q'), { kind: 'found', value: 'x y' });
  } finally {
    cleanup();
  }
});

test('TableSet shares instances; reopen swaps all or nothing', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const name = join(dir, 'p');
    writeIndexedFile('hash', name, encodeIndexed([['k', 'one']], false));
    const src = join(dir, 'th');
    writeFileSync(src, 'k two\n');
    const set = new TableSet();
    const a = await set.get(`hash:${name}`);
    assert.equal(await set.get(`hash:${name}`), a);
    await set.get(`texthash:${src}`);
    writeIndexedFile('hash', name, encodeIndexed([['k', 'new']], false));
    assert.equal(await set.anyStale(), true);
    await set.reopen();
    const b = await set.get(`hash:${name}`);
    assert.notEqual(b, a);
    assert.deepEqual(await b.lookup('k'), { kind: 'found', value: 'new' });
    // A broken table: the old instances stay.
    writeFileSync(`${name}.db`, 'garbage that is not a table');
    await assert.rejects(set.reopen(), /not a sealpost table/);
    assert.equal(await set.get(`hash:${name}`), b);
    // A failed open is not cached.
    await assert.rejects(set.get(`hash:${join(dir, 'missing')}`), /No such file/);
    assert.deepEqual(set.specs().length, 2);
    await set.close();
    assert.deepEqual(set.specs(), []);
  } finally {
    cleanup();
  }
});
