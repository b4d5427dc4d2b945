/**
 * cache.test.ts — the on-disk MTA-STS cache: round trip, atomic replace (no
 * temp files left), malformed files ignored with a warning, names that are
 * not domains refused, list/remove; the in-memory twin.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKey, MemoryStsCache, StsCache } from '../../../../src/delivery/mta-sts/cache.ts';
import type { StsCacheEntry } from '../../../../src/delivery/mta-sts/cache.ts';

let base: string;
let dir: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), 'sealpost-sts-cache-'));
  dir = join(base, 'mta-sts');
});
afterEach(() => rmSync(base, { recursive: true, force: true }));

const entry = (domain: string, id = 'id1'): StsCacheEntry => ({
  domain, id, fetchedAt: 1_000, expiresAt: 605_801_000, mode: 'enforce', mx: ['*.example.com'], maxAge: 604800,
  lines: ['version: STSv1', 'mode: enforce', 'mx: *.example.com', 'max_age: 604800'],
});

test('write then read: the same entry, one file per domain, mode 0600, no temp file left', () => {
  const c = new StsCache(dir);
  c.write(entry('example.com'));
  c.write(entry('Example.COM', 'id2'));
  assert.deepEqual(c.read('EXAMPLE.com.'), { ...entry('example.com', 'id2') });
  assert.deepEqual(readdirSync(dir), ['example.com.json']);
  assert.equal(statSync(join(dir, 'example.com.json')).mode & 0o777, 0o600);
  // A second instance (a restart) sees it.
  assert.equal(new StsCache(dir).read('example.com')?.id, 'id2');
});

test('list is sorted and skips junk; remove deletes; a missing directory is an empty cache', () => {
  const c = new StsCache(dir);
  assert.deepEqual(c.list(), []);
  assert.equal(c.read('example.com'), undefined);
  c.write(entry('b.example'));
  c.write(entry('a.example'));
  writeFileSync(join(dir, 'notes.txt'), 'x');
  writeFileSync(join(dir, '.a.example.tmp.1.1'), 'partial');
  assert.deepEqual(c.list().map((e) => e.domain), ['a.example', 'b.example']);
  c.remove('a.example');
  c.remove('a.example');
  assert.deepEqual(c.list().map((e) => e.domain), ['b.example']);
});

test('a malformed or foreign file is ignored with a warning, never half-trusted', () => {
  const warnings: string[] = [];
  const c = new StsCache(dir, (t) => warnings.push(t));
  c.write(entry('example.com'));
  for (const bad of ['{not json', '{"v":1}', JSON.stringify({ ...entry('other.example'), v: 1 }), JSON.stringify({ ...entry('example.com'), v: 1, mode: 'strict' }), JSON.stringify({ ...entry('example.com'), v: 1, maxAge: 99999999999 })]) {
    writeFileSync(join(dir, 'example.com.json'), bad);
    assert.equal(c.read('example.com'), undefined, bad);
  }
  assert.equal(warnings.length, 5);
  assert.match(warnings[0]!, /ignoring malformed entry .*example\.com\.json/);
});

test('only LDH domain names become file names', () => {
  assert.equal(cacheKey('Mail.Example.ORG.'), 'mail.example.org');
  for (const bad of ['../etc/passwd', 'example', '192.0.2.1', '[192.0.2.1]', '192.0.2.1.x/y', 'a..b', '-a.example', 'a b.example', '']) {
    assert.throws(() => cacheKey(bad), /not a policy domain name/, bad);
  }
  assert.throws(() => new StsCache(dir).write(entry('../x.example')), /not a policy domain name/);
});

test('the memory store behaves the same', () => {
  const m = new MemoryStsCache();
  m.write(entry('b.example'));
  m.write(entry('A.example'));
  assert.equal(m.read('a.EXAMPLE')?.domain, 'a.example');
  assert.deepEqual(m.list().map((e) => e.domain), ['a.example', 'b.example']);
  m.remove('a.example');
  assert.equal(m.read('a.example'), undefined);
});
