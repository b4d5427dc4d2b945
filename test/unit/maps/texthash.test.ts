import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadTexthash, texthashType } from '../../../src/maps/texthash.ts';
import { tempDir } from '../../harness/cli.ts';

test('texthash: dict_thash warnings with line numbers, first entry wins, unfolded key in message', () => {
  const w: string[] = [];
  const map = loadTexthash('a 1\nA 2\nnovalue\na 3\n', 's6', true, (m) => w.push(m));
  assert.deepEqual([...map], [['a', '1']]);
  assert.deepEqual(w, [
    's6, line 2: duplicate entry: "A"',
    's6, line 3: expected format: key whitespace value -- ignoring this line',
    's6, line 4: duplicate entry: "a"',
  ]);
  const nofold = loadTexthash('a 1\nA 2\n', 's', false);
  assert.deepEqual([...nofold], [['a', '1'], ['A', '2']]);
});

test('texthash table: lookups, sequence, never stale, missing file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const f = join(dir, 'th');
    writeFileSync(f, 'Example.COM encrypt\n');
    const t = await texthashType.open(f, `texthash:${f}`, {});
    assert.deepEqual(await t.lookup('example.com'), { kind: 'found', value: 'encrypt' });
    writeFileSync(f, 'example.com none\n');
    assert.equal(t.isStale!(), false);
    assert.deepEqual(await t.lookup('example.com'), { kind: 'found', value: 'encrypt' });
    const seq = [];
    for await (const e of t.sequence!()) seq.push(e);
    assert.deepEqual(seq, [['example.com', 'encrypt']]);
    await assert.rejects(texthashType.open(join(dir, 'nope'), 'texthash:nope', {}), /open database .*nope: No such file or directory; create the file/);
  } finally {
    cleanup();
  }
});
