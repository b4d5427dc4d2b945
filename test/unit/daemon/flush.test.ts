import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describeFlush, FlushWatcher, parseFlushRequest, type FlushRequest } from '../../../src/daemon/flush.ts';
import { tempDir } from '../../harness/cli.ts';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

test('request lines as postqueue writes them', () => {
  assert.deepEqual(parseFlushRequest('flush all\n'), { kind: 'all' });
  assert.deepEqual(parseFlushRequest('flush queue_id 3F2A81C0B4\n'), { kind: 'queue_id', id: '3F2A81C0B4' });
  assert.deepEqual(parseFlushRequest('flush site [192.0.2.1]\n'), { kind: 'site', site: '[192.0.2.1]' });
  assert.equal(parseFlushRequest('flush everything'), undefined);
  assert.equal(parseFlushRequest(''), undefined);
  assert.equal(describeFlush({ kind: 'site', site: 'example.com' }), 'flush site example.com');
});

test('the watcher takes requests in order, deletes them, skips tmp files, warns on junk', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, '1.1.a'), 'flush all\n');
    writeFileSync(join(t.dir, '2.1.a'), 'junk\n');
    writeFileSync(join(t.dir, '3.1.a'), 'flush queue_id ABC\n');
    writeFileSync(join(t.dir, 'tmp.4.1.a'), 'flush all\n');
    const got: FlushRequest[] = [];
    const warnings: string[] = [];
    const w = new FlushWatcher({ dir: t.dir, onFlush: (r) => void got.push(r), onWarning: (m) => warnings.push(m), intervalMs: 50 });
    w.start();
    for (let i = 0; i < 40 && got.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    await w.stop();
    assert.deepEqual(got, [{ kind: 'all' }, { kind: 'queue_id', id: 'ABC' }]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /ignoring a malformed flush request: "junk"/);
    assert.deepEqual(readdirSync(t.dir), ['tmp.4.1.a']);
  } finally {
    t.cleanup();
  }
});
