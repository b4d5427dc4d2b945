/**
 * session-cache.test.ts — TLS session cache: timeout rules, expiry, the file
 * that survives restarts, corrupt lines ignored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SessionCache } from '../../../../src/delivery/tls/session-cache.ts';
import { tempDir } from '../../../harness/cli.ts';

test('memory only: set/get, expiry after the timeout (minimum 2 minutes), disabled at ≤ 0', () => {
  let now = 1_000_000;
  const warn: string[] = [];
  const c = new SessionCache({ database: '', timeoutSeconds: 10, warn: (w) => warn.push(w), now: () => now });
  c.set('k', Buffer.from('s1'));
  assert.deepEqual(c.get('k')?.session, Buffer.from('s1'));
  now += 119_000;
  assert.ok(c.get('k'), 'a 10 s timeout counts as 2 minutes');
  now += 2_000;
  assert.equal(c.get('k'), undefined);
  const off = new SessionCache({ database: '', timeoutSeconds: 0, warn: () => {} });
  off.set('k', Buffer.from('x'));
  assert.equal(off.get('k'), undefined);
  assert.equal(off.enabled, false);
  assert.deepEqual(warn, []);
});

test('the database file survives a restart, keeps the remembered peer, and skips torn lines', () => {
  const t = tempDir('sealpost-scache-');
  try {
    const file = join(t.dir, 'sub', 'smtp_scache');
    const a = new SessionCache({ database: `lmdb:${file}`, timeoutSeconds: 3600, warn: () => {} });
    a.set('one', Buffer.from('ticket-1'), { chain: ['AAAA'], authorized: true });
    a.set('two', Buffer.from('ticket-2'));
    a.save();
    writeFileSync(file, readFileSync(file, 'utf8') + '{"k":"torn","s":\n');
    const b = new SessionCache({ database: `lmdb:${file}`, timeoutSeconds: 3600, warn: () => {} });
    assert.deepEqual(b.get('one'), { session: Buffer.from('ticket-1'), peer: { chain: ['AAAA'], authorized: true } });
    assert.deepEqual(b.get('two'), { session: Buffer.from('ticket-2') });
    assert.equal(b.get('torn'), undefined);
    b.delete('one');
    b.save();
    const c = new SessionCache({ database: `lmdb:${file}`, timeoutSeconds: 3600, warn: () => {} });
    assert.equal(c.get('one'), undefined);
  } finally {
    t.cleanup();
  }
});

test('expired entries in the file are not loaded', () => {
  const t = tempDir('sealpost-scache-');
  try {
    const file = join(t.dir, 'scache');
    writeFileSync(file, JSON.stringify({ k: 'old', s: 'AA==', e: Date.now() - 1 }) + '\n');
    const c = new SessionCache({ database: `btree:${file}`, timeoutSeconds: 3600, warn: () => {} });
    assert.equal(c.get('old'), undefined);
  } finally {
    t.cleanup();
  }
});

test('an unwritable database is a warning, never an error', () => {
  const t = tempDir('sealpost-scache-');
  try {
    // A path below a regular file cannot be created (ENOTDIR).
    const blocker = join(t.dir, 'file');
    writeFileSync(blocker, '');
    const warn: string[] = [];
    const c = new SessionCache({ database: `btree:${blocker}/scache`, timeoutSeconds: 3600, warn: (w) => warn.push(w) });
    c.set('k', Buffer.from('x'));
    c.save();
    // One warning when loading (ENOTDIR), one when saving.
    assert.equal(warn.length, 2);
    for (const w of warn) assert.ok(w.startsWith(`TLS session cache ${blocker}/scache: `), w);
    assert.deepEqual(c.get('k')?.session, Buffer.from('x'), 'the memory cache still works');
  } finally {
    t.cleanup();
  }
});

test('caches sharing one file (delivery worker threads): a save merges, newest copy wins, a deletion is not undone', () => {
  const t = tempDir('sealpost-scache-');
  try {
    let now = 1_000_000;
    const file = join(t.dir, 'scache');
    const opts = { database: `btree:${file}`, timeoutSeconds: 3600, warn: () => {}, now: () => now };
    const a = new SessionCache(opts);
    const b = new SessionCache(opts);
    a.set('one', Buffer.from('a-1'));
    a.set('shared', Buffer.from('a-old'));
    a.save();
    now += 1000;
    b.set('two', Buffer.from('b-2'));
    b.set('shared', Buffer.from('b-new'));
    b.save();
    // The file holds both caches' sessions, and b took in what a learned.
    const fresh = new SessionCache(opts);
    assert.deepEqual(['one', 'two', 'shared'].map((k) => fresh.get(k)?.session.toString()), ['a-1', 'b-2', 'b-new']);
    assert.equal(b.get('one')?.session.toString(), 'a-1');
    // a's older copy of `shared` does not overwrite b's newer one; a's deletion of `one` sticks.
    now += 1000;
    a.delete('one');
    a.save();
    assert.equal(a.get('shared')?.session.toString(), 'b-new');
    const after = new SessionCache(opts);
    assert.equal(after.get('one'), undefined);
    assert.equal(after.get('shared')?.session.toString(), 'b-new');
    // clear() forgets the file's sessions too.
    now += 1000;
    after.clear();
    after.save();
    assert.equal(readFileSync(file, 'utf8'), '');
  } finally {
    t.cleanup();
  }
});
