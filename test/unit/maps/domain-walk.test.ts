/**
 * domain-walk.test.ts — the transport(5) and smtp_tls_policy_maps lookup
 * orders over in-memory tables, and parseNexthop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isValidHostname,
  parseNexthop,
  tlsPolicyKeys,
  tlsPolicyLookup,
  transportKeys,
  transportLookup,
  walkTable,
} from '../../../src/maps/domain-walk.ts';
import type { WalkTable } from '../../../src/maps/domain-walk.ts';
import { found, lookupError, NOT_FOUND } from '../../../src/maps/types.ts';
import type { KeyKind, LookupResult } from '../../../src/maps/types.ts';
import { UserError } from '../../../src/lib/errors.ts';

/** An in-memory fixed-string table that records the keys it was asked. */
function memTable(spec: string, entries: Record<string, string>, keyKind: KeyKind = 'fixed', errorOn?: string): WalkTable & { asked: string[] } {
  const asked: string[] = [];
  return {
    spec,
    keyKind,
    asked,
    lookup: async (key: string): Promise<LookupResult> => {
      asked.push(key);
      if (key === errorOn) return lookupError(`${spec}: lookup error`);
      return key in entries ? found(entries[key]!) : NOT_FOUND;
    },
  };
}

test('transport(5) key order: full, stripped, domain, .parents, *', () => {
  assert.deepEqual(
    transportKeys('user+ext@mail.example.com', { recipientDelimiter: '+' }).map((s) => s.key),
    ['user+ext@mail.example.com', 'user@mail.example.com', 'mail.example.com', '.example.com', '.com', '*'],
  );
  assert.deepEqual(
    transportKeys('user@mail.example.com', { parentMatchesSubdomains: true }).map((s) => s.key),
    ['user@mail.example.com', 'mail.example.com', 'example.com', 'com', '*'],
  );
  // No delimiter configured: no stripped key.
  assert.deepEqual(transportKeys('a+b@x.org').map((s) => s.key), ['a+b@x.org', 'x.org', '.org', '*']);
});

test('recipient_delimiter is a set of characters; split at the first one; exceptions', () => {
  const keys = (addr: string, d: string): string[] => transportKeys(addr, { recipientDelimiter: d }).map((s) => s.key);
  assert.equal(keys('user-a+b@x.org', '+-')[1], 'user@x.org');
  assert.equal(keys('user+a-b@x.org', '+-')[1], 'user@x.org');
  assert.equal(keys('owner-list@x.org', '-')[1], 'x.org');
  assert.equal(keys('list-request@x.org', '-')[1], 'x.org');
  assert.equal(keys('postmaster+x@x.org', '+')[1], 'postmaster@x.org');
  assert.equal(keys('Postmaster@x.org', '+')[1], 'x.org');
  assert.equal(keys('+abc@x.org', '+')[1], 'x.org');
});

test('transportLookup: first found wins, returns the key and table', async () => {
  const t1 = memTable('hash:/t1', { '.example.com': 'smtp:[relay1]' });
  const t2 = memTable('hash:/t2', { 'mail.example.com': 'smtp:[relay2]' });
  const r = await transportLookup([t1, t2], 'u@mail.example.com');
  assert.equal(r.kind, 'found');
  if (r.kind === 'found') {
    // maps_find per key: mail.example.com in t2 beats .example.com in t1.
    assert.deepEqual([r.value, r.key, r.table], ['smtp:[relay2]', 'mail.example.com', 'hash:/t2']);
    assert.deepEqual(r.tried.map((a) => `${a.table} ${a.key}`), ['hash:/t1 u@mail.example.com', 'hash:/t2 u@mail.example.com', 'hash:/t1 mail.example.com', 'hash:/t2 mail.example.com']);
  }
});

test('transportLookup: wildcard last; pattern and socketmap tables get only full keys and *', async () => {
  const re = memTable('regexp:/re', {}, 'pattern');
  const sm: WalkTable & { asked: string[] } = { ...memTable('socketmap:inet:h:1:m', {}), type: 'socketmap' };
  const fixed = memTable('hash:/t', { '*': 'smtp:[fallback]' });
  const r = await transportLookup([re, sm, fixed], 'a+b@x.example', { recipientDelimiter: '+' });
  assert.equal(r.kind, 'found');
  if (r.kind === 'found') assert.equal(r.key, '*');
  assert.deepEqual(re.asked, ['a+b@x.example', '*']);
  assert.deepEqual(sm.asked, ['a+b@x.example', '*']);
  assert.deepEqual(fixed.asked, ['a+b@x.example', 'a@x.example', 'x.example', '.example', '*']);
});

test('fail closed: the first error stops the walk', async () => {
  const t1 = memTable('hash:/t1', {}, 'fixed', 'x.example');
  const t2 = memTable('hash:/t2', { '*': 'smtp:' });
  const r = await transportLookup([t1, t2], 'a@x.example');
  assert.equal(r.kind, 'error');
  if (r.kind === 'error') assert.deepEqual([r.key, r.table, r.error.message], ['x.example', 'hash:/t1', 'hash:/t1: lookup error']);
  assert.deepEqual(t2.asked, ['a@x.example']);
  const p = await tlsPolicyLookup([memTable('socketmap:sts', {}, 'fixed', 'mx.example.com'), memTable('hash:/p', { 'mx.example.com': 'may' })], 'mx.example.com');
  assert.equal(p.kind, 'error');
});

test('transportLookup with a bare callback and not found', async () => {
  const r = await transportLookup([async () => NOT_FOUND], 'a@b.c');
  assert.equal(r.kind, 'notfound');
  assert.deepEqual(r.tried.map((a) => a.key), ['a@b.c', 'b.c', '.c', '*']);
  await assert.rejects(transportLookup([walkTable(async () => NOT_FOUND)], 'nodomain'), UserError);
});

test('TLS policy keys: verbatim next hop; parent walk only for bare domains', () => {
  assert.deepEqual(tlsPolicyKeys('mx.sub.example.com'), ['mx.sub.example.com', '.sub.example.com', '.example.com', '.com']);
  assert.deepEqual(tlsPolicyKeys('[mx.example.com]'), ['[mx.example.com]']);
  assert.deepEqual(tlsPolicyKeys('[mx.example.com]:587'), ['[mx.example.com]:587']);
  assert.deepEqual(tlsPolicyKeys('example.com:submission'), ['example.com:submission']);
  assert.deepEqual(tlsPolicyKeys('192.0.2.1'), ['192.0.2.1']);
  assert.deepEqual(tlsPolicyKeys('com'), ['com']);
});

test('TLS policy lookup: per key across tables, value + key + table + tried', async () => {
  const local = memTable('hash:/etc/postfix/tls_policy', { '.example.com': 'encrypt' });
  const sts = memTable('socketmap:inet:127.0.0.1:8461:postfix', { 'mail.example.com': 'secure match=mx1.example.com' });
  const r = await tlsPolicyLookup([local, sts], 'mail.example.com');
  assert.equal(r.kind, 'found');
  if (r.kind === 'found') {
    assert.equal(r.value, 'secure match=mx1.example.com');
    assert.equal(r.table, 'socketmap:inet:127.0.0.1:8461:postfix');
    assert.equal(r.key, 'mail.example.com');
  }
  const r2 = await tlsPolicyLookup([local, sts], 'other.example.com');
  assert.equal(r2.kind, 'found');
  if (r2.kind === 'found') assert.deepEqual([r2.key, r2.value], ['.example.com', 'encrypt']);
  assert.deepEqual(r2.tried.map((a) => a.key), ['other.example.com', 'other.example.com', '.example.com']);
  const r3 = await tlsPolicyLookup([local], '[other.example.com]:25');
  assert.equal(r3.kind, 'notfound');
  assert.deepEqual(r3.tried.map((a) => a.key), ['[other.example.com]:25']);
});

test('isValidHostname', () => {
  for (const ok of ['example.com', 'a', 'x_y.example', 'a-b.c1']) assert.equal(isValidHostname(ok), true, ok);
  for (const bad of ['', '1.2.3.4', '-a.com', 'a-.com', 'a..b', 'a.com.', '.a.com', '[a]', 'a:25', 'a'.repeat(64) + '.com']) {
    assert.equal(isValidHostname(bad), false, bad);
  }
});

test('parseNexthop', () => {
  assert.deepEqual(parseNexthop('example.com'), { host: 'example.com', bracketed: false });
  assert.deepEqual(parseNexthop('mx.example.com:2525'), { host: 'mx.example.com', port: '2525', bracketed: false });
  assert.deepEqual(parseNexthop('[mx.example.com]'), { host: 'mx.example.com', bracketed: true });
  assert.deepEqual(parseNexthop('[192.0.2.1]:submission'), { host: '192.0.2.1', port: 'submission', bracketed: true });
  assert.deepEqual(parseNexthop('[ipv6:2001:db8::1]:25'), { host: 'ipv6:2001:db8::1', port: '25', bracketed: true });
  for (const bad of ['', '[mx', 'mx]', '[]', '[mx]x', '[mx]:', 'mx:', ':25', 'a:b:c', 'mx:99999', 'mx:0', 'a b', 'a,b', 'mx:2!']) {
    assert.throws(() => parseNexthop(bad), UserError, bad);
  }
});
