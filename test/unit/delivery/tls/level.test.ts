/**
 * level.test.ts — level names, order, predicates, dane without TLSA.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daneWithoutTlsa, LEVELS, levelRank, mustMatch, mustPkix, parseLevel, tlsRequired } from '../../../../src/delivery/tls/level.ts';

test("Postfix's strength order and predicates", () => {
  assert.deepEqual(LEVELS, ['none', 'may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure']);
  for (let i = 1; i < LEVELS.length; i++) assert.ok(levelRank(LEVELS[i]!) > levelRank(LEVELS[i - 1]!));
  assert.deepEqual(LEVELS.filter(tlsRequired), ['encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure']);
  assert.deepEqual(LEVELS.filter(mustMatch), ['fingerprint', 'dane', 'dane-only', 'verify', 'secure']);
  assert.deepEqual(LEVELS.filter(mustPkix), ['verify', 'secure']);
  assert.equal(parseLevel('Dane-Only'), 'dane-only');
  assert.equal(parseLevel('halfdane'), undefined);
  assert.equal(parseLevel('toString'), undefined);
});

test('dane/dane-only without TLSA records (smtp_tls_policy.c dane_incompat)', () => {
  assert.deepEqual(daneWithoutTlsa('dane', 'example.com', false), { kind: 'level', level: 'may', warning: 'example.com: dane configured with dnssec lookups disabled' });
  assert.deepEqual(daneWithoutTlsa('dane-only', 'example.com', false), {
    kind: 'invalid',
    deferral: { reason: 'client TLS configuration problem', dsn: '4.7.5' },
    warning: 'example.com: dane-only configured with dnssec lookups disabled',
  });
  assert.deepEqual(daneWithoutTlsa('dane', 'example.com', true), { kind: 'level', level: 'may' });
  assert.deepEqual(daneWithoutTlsa('dane-only', 'example.com', true, false), { kind: 'invalid', deferral: { reason: 'non DNSSEC destination', dsn: '4.7.5' } });
  assert.deepEqual(daneWithoutTlsa('dane-only', 'example.com', true, true), { kind: 'invalid', deferral: { reason: 'no TLSA records found', dsn: '4.7.5' } });
});
