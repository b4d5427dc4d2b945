import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CdbBuilder, CdbReader, cdbHash, cdbType, writeCdbFile } from '../../../src/maps/cdb.ts';
import { tempDir } from '../../harness/cli.ts';

const b = (s: string) => Buffer.from(s, 'utf8');

test('cdbHash is djb ((h << 5) + h) ^ c from 5381', () => {
  assert.equal(cdbHash(b('')), 5381);
  assert.equal(cdbHash(b('a')), ((5381 * 33) ^ 0x61) >>> 0);
});

test('one record: exact bytes of header, record and hash table', () => {
  const cb = new CdbBuilder();
  cb.put(b('a'), b('1'));
  const img = cb.finish();
  const h = cdbHash(b('a'));
  const t = h & 255;
  // record at 2048: klen=1, vlen=1, "a", "1"; table t at 2058 with 2 slots.
  assert.equal(img.length, 2048 + 10 + 16);
  assert.deepEqual([...img.subarray(2048, 2058)], [1, 0, 0, 0, 1, 0, 0, 0, 0x61, 0x31]);
  for (let i = 0; i < 256; i++) {
    assert.equal(img.readUInt32LE(i * 8), i <= t ? 2058 : 2058 + 16, `table ${i} position`);
    assert.equal(img.readUInt32LE(i * 8 + 4), i === t ? 2 : 0);
  }
  const slot = (h >>> 8) % 2;
  assert.equal(img.readUInt32LE(2058 + slot * 8), h);
  assert.equal(img.readUInt32LE(2058 + slot * 8 + 4), 2048);
  assert.equal(img.readUInt32LE(2058 + (1 - slot) * 8 + 4), 0);
});

test('duplicates: warn keeps first, replace keeps last, ignore keeps both', () => {
  const mk = (dup: 'warn' | 'replace' | 'ignore') => {
    const cb = new CdbBuilder(dup);
    const dups = [cb.put(b('k'), b('1')), cb.put(b('x'), b('y')), cb.put(b('k'), b('2'))];
    return { dups, r: new CdbReader(cb.finish()) };
  };
  const w = mk('warn');
  assert.deepEqual(w.dups, [false, false, true]);
  assert.equal(w.r.find(b('k'))!.toString(), '1');
  assert.equal([...w.r.entries()].length, 2);
  const r = mk('replace');
  assert.equal(r.r.find(b('k'))!.toString(), '2');
  assert.deepEqual([...r.r.entries()].map(([k, v]) => `${k}=${v}`), ['x=y', 'k=2']);
  const i = mk('ignore');
  assert.equal(i.r.find(b('k'))!.toString(), '1');
  assert.equal([...i.r.entries()].length, 3);
});

test('many keys round-trip; missing keys are not found', () => {
  const cb = new CdbBuilder();
  for (let i = 0; i < 5000; i++) cb.put(b(`key${i}`), b(`v${i}`));
  const r = new CdbReader(cb.finish());
  for (let i = 0; i < 5000; i += 7) assert.equal(r.find(b(`key${i}`))!.toString(), `v${i}`);
  assert.equal(r.find(b('key5000')), undefined);
  assert.equal(r.find(b('')), undefined);
});

test('a truncated file is refused', () => {
  assert.throws(() => new CdbReader(Buffer.alloc(100)), /shorter than the 2048-byte/);
});

test('cdb: table tries key with and without NUL, folds, sequences, and names the fix when missing', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const withNul = new CdbBuilder();
    withNul.put(b('a\0'), b('one\0'));
    writeCdbFile(join(dir, 'n.cdb'), withNul.finish());
    const t = await cdbType.open(join(dir, 'n'), `cdb:${join(dir, 'n')}`, {});
    assert.deepEqual(await t.lookup('A'), { kind: 'found', value: 'one' });
    assert.deepEqual(await t.lookup('b'), { kind: 'notfound' });
    const seq = [];
    for await (const e of t.sequence!()) seq.push(e);
    assert.deepEqual(seq, [['a', 'one']]);
    assert.equal(t.isStale!(), false);
    writeFileSync(join(dir, 'n.cdb'), Buffer.concat([readFileSync(join(dir, 'n.cdb')), Buffer.alloc(8)]));
    assert.equal(t.isStale!(), true);
    await assert.rejects(cdbType.open(join(dir, 'missing'), 'cdb:x', {}), /open database .*missing\.cdb: No such file or directory; build it with "sealpost postmap cdb:.*missing"/);
    writeFileSync(join(dir, 'bad.cdb'), 'short');
    await assert.rejects(cdbType.open(join(dir, 'bad'), 'cdb:x', {}), /not a cdb file/);
  } finally {
    cleanup();
  }
});
