import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeIndexed, fnv1a, hashType, btreeType, IndexedBuilder, IndexedReader, lmdbType, MAGIC, writeIndexedFile } from '../../../src/maps/indexed.ts';
import { tempDir } from '../../harness/cli.ts';

test('header layout: magic, order, count, slots, index offset', () => {
  const img = encodeIndexed([['a', '1']], false);
  assert.deepEqual(img.subarray(0, 12), MAGIC);
  assert.equal(img.toString('latin1', 0, 11), 'SEALPOSTDB1');
  assert.equal(img.readUInt8(12), 0);
  assert.equal(img.readUInt32LE(16), 1);
  assert.equal(img.readUInt32LE(20), 8);
  assert.equal(img.readUInt32LE(24), 32 + 10);
  assert.equal(img.length, 32 + 10 + 8 * 8);
  const s = fnv1a(Buffer.from('a')) & 7;
  assert.equal(img.readUInt32LE(42 + s * 8 + 4), 32);
});

test('fnv1a test vectors', () => {
  assert.equal(fnv1a(Buffer.from('')), 0x811c9dc5);
  assert.equal(fnv1a(Buffer.from('a')), 0xe40c292c);
  assert.equal(fnv1a(Buffer.from('foobar')), 0xbf9cf968);
});

test('round trip of 20k entries with UTF-8 keys; misses are misses', () => {
  const entries: Array<[string, string]> = [];
  for (let i = 0; i < 20000; i++) entries.push([`k${i}.example`, `value ${i}`]);
  entries.push(['grüße', 'ünïcödé']);
  const r = new IndexedReader(encodeIndexed(entries, false));
  for (let i = 0; i < 20000; i += 13) assert.equal(r.get(`k${i}.example`), `value ${i}`);
  assert.equal(r.get('grüße'), 'ünïcödé');
  assert.equal(r.get('k20000.example'), undefined);
  assert.equal([...r.slotOrder()].length, 20001);
});

test('sorted order for btree/lmdb, slot order for hash', () => {
  const entries: Array<[string, string]> = [['b', '2'], ['c', '3'], ['a', '1']];
  const sorted = new IndexedReader(encodeIndexed(entries, true));
  assert.deepEqual([...sorted.records()].map(([k]) => k), ['a', 'b', 'c']);
  assert.equal(sorted.sorted, true);
});

test('builder duplicate semantics: first wins (warn/ignore), last wins (replace); delete', () => {
  for (const [dup, want] of [['warn', '1'], ['ignore', '1'], ['replace', '2']] as const) {
    const b = new IndexedBuilder(dup);
    assert.equal(b.put('k', '1'), false);
    assert.equal(b.put('k', '2'), true);
    assert.equal(new IndexedReader(b.image('hash')).get('k'), want);
  }
  const b = new IndexedBuilder('warn', [['x', 'y']]);
  assert.equal(b.delete('x'), true);
  assert.equal(b.delete('x'), false);
  assert.equal(b.size, 0);
});

test('foreign and damaged files are refused with the rebuild command', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const name = join(dir, 't');
    const bdb = Buffer.alloc(4096);
    bdb.writeUInt32LE(0x061561, 12);
    writeFileSync(`${name}.db`, bdb);
    await assert.rejects(
      hashType.open(name, `hash:${name}`, {}),
      (e: Error) => e.message === `${name}.db: not a sealpost table (a Berkeley DB file made by Postfix's postmap?): rebuild it with "sealpost postmap hash:${name}"`,
    );
    const lmdb = Buffer.alloc(4096);
    lmdb.writeUInt32LE(0xbeefc0de, 16);
    writeFileSync(`${name}.lmdb`, lmdb);
    await assert.rejects(lmdbType.open(name, `lmdb:${name}`, {}), /an LMDB file made by Postfix's postmap\?\): rebuild it with "sealpost postmap lmdb:/);
    writeFileSync(`${name}.db`, encodeIndexed([['a', 'b']], false).subarray(0, 50));
    await assert.rejects(hashType.open(name, `hash:${name}`, {}), /not a sealpost table \(damaged header/);
    await assert.rejects(btreeType.open(join(dir, 'none'), 'btree:none', {}), /open database .*none\.db: No such file or directory; build it with "sealpost postmap btree:/);
  } finally {
    cleanup();
  }
});

test('table: folding, sequence, stale source warning after 100 s, isStale after rewrite', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const name = join(dir, 'p');
    writeFileSync(name, 'x y\n');
    writeIndexedFile('hash', name, encodeIndexed([['example.com', 'encrypt']], false));
    const old = new Date(Date.now() - 3600_000);
    utimesSync(`${name}.db`, old, old);
    const recent = new Date(Date.now() - 600_000);
    utimesSync(name, recent, recent);
    const warnings: string[] = [];
    const t = await hashType.open(name, `hash:${name}`, { warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, [`database ${name}.db is older than source file ${name}`]);
    assert.deepEqual(await t.lookup('EXAMPLE.com'), { kind: 'found', value: 'encrypt' });
    const nofold = await hashType.open(name, `hash:${name}`, { fold: false });
    assert.deepEqual(await nofold.lookup('EXAMPLE.com'), { kind: 'notfound' });
    const seq = [];
    for await (const e of t.sequence!()) seq.push(e);
    assert.deepEqual(seq, [['example.com', 'encrypt']]);
    assert.equal(t.isStale!(), false);
    writeIndexedFile('hash', name, encodeIndexed([['example.com', 'secure']], false));
    assert.equal(t.isStale!(), true);
    // A source touched seconds ago is not warned about (dict_db.c: 100 s grace).
    const fresh: string[] = [];
    utimesSync(`${name}.db`, old, old);
    utimesSync(name, new Date(), new Date());
    await hashType.open(name, `hash:${name}`, { warn: (m) => fresh.push(m) });
    assert.deepEqual(fresh, []);
  } finally {
    cleanup();
  }
});
