import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../harness/cli.ts';
import {
  isValidQueueId,
  longQueueId,
  makeQueueId,
  parseQueueId,
  SAFE_ALPHABET,
  safeDecode,
  safeEncode,
  shortQueueId,
} from '../../../src/queue/queue-id.ts';

test('safe alphabet is 52 characters, digits + consonants, no vowels', () => {
  assert.equal(SAFE_ALPHABET.length, 52);
  assert.equal(new Set(SAFE_ALPHABET).size, 52);
  assert.doesNotMatch(SAFE_ALPHABET, /[AEIOUaeiou]/);
  assert.equal(SAFE_ALPHABET[10], 'B'); // safe_ultostr(3): B-Z are 10-30
  assert.equal(SAFE_ALPHABET[31], 'b'); // b-z are 31-51
  assert.equal(SAFE_ALPHABET[51], 'z');
});

test('safeEncode pads to the width and is most-significant first', () => {
  assert.equal(safeEncode(0, 52, 6), '000000');
  assert.equal(safeEncode(51, 52, 0), 'z');
  assert.equal(safeEncode(52, 52, 0), '10');
  assert.equal(safeEncode(50, 51, 0), 'y');
  assert.equal(safeEncode(51, 51, 0), '10'); // base 51 never uses 'z'
  assert.equal(safeDecode('10', 52), 52n);
  assert.equal(safeDecode('z', 51), undefined);
});

test('short form: %05X microseconds then %lX inode', () => {
  assert.equal(shortQueueId(0xc3cd2, 0x1f3e90), 'C3CD21F3E90');
  assert.equal(shortQueueId(5, 0xabc), '00005ABC');
  assert.deepEqual(parseQueueId('C3CD21F3E90'), { form: 'short', usec: 0xc3cd2, inode: 0x1f3e90n });
});

test('long form: 6+ chars seconds, 4 chars usec, z, base-51 inode', () => {
  const id = longQueueId(1732766112, 123456, 1234567);
  const sec = safeEncode(1732766112, 52, 6);
  assert.equal(id, `${sec}${safeEncode(123456, 52, 4)}z${safeEncode(1234567, 51, 0)}`);
  assert.equal(sec.length, 6);
  assert.deepEqual(parseQueueId(id), { form: 'long', seconds: 1732766112, usec: 123456, inode: 1234567n });
  assert.equal(longQueueId(0, 0, 1), '0000000000z1');
});

test('property: random times and inodes give valid IDs that parse back', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let i = 0; i < 2000; i++) {
    const seconds = 1_000_000_000 + rnd(2_000_000_000);
    const usec = rnd(1_000_000);
    const inode = BigInt(1 + rnd(2_000_000_000)) * BigInt(1 + rnd(1000));
    const l = longQueueId(seconds, usec, inode);
    assert.match(l, /^[0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z]+$/);
    assert.ok(isValidQueueId(l));
    assert.deepEqual(parseQueueId(l), { form: 'long', seconds, usec, inode });
    const s = shortQueueId(usec, inode);
    assert.match(s, /^[0-9A-F]+$/);
    assert.deepEqual(parseQueueId(s), { form: 'short', usec, inode });
    const t = BigInt(seconds) * 1_000_000n + BigInt(usec);
    assert.equal(makeQueueId(true, t, inode), l);
    assert.equal(makeQueueId(false, t, inode), s);
  }
});

test('IDs derived from real files are unique per file, even in the same microsecond', () => {
  const { dir, cleanup } = tempDir();
  try {
    const ids = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = join(dir, `f${i}`);
      closeSync(openSync(p, 'w'));
      const ino = statSync(p, { bigint: true }).ino;
      ids.add(makeQueueId(false, 1_700_000_000_000_000n, ino));
      ids.add(makeQueueId(true, 1_700_000_000_000_000n, ino));
    }
    assert.equal(ids.size, 400);
  } finally {
    cleanup();
  }
});

test('mail_queue_id_ok: letters, digits and underscore only', () => {
  assert.ok(isValidQueueId('4E3B11C0A2'));
  assert.ok(isValidQueueId('3Pt2mN2VXxznjll'));
  assert.equal(isValidQueueId(''), false);
  assert.equal(isValidQueueId('../etc'), false);
  assert.equal(isValidQueueId('tmp.1.2'), false);
  assert.equal(isValidQueueId('A'.repeat(256)), false);
  assert.equal(parseQueueId('xyz'), undefined);
});
