/**
 * reuse.test.ts — the connection cache's keys: a cached connection is reused
 * only for the same transport, next hop and effective policy shape
 * (delivery/smtp/reuse.ts), and smtp_tls_connection_reuse is on by default.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { cacheKey, policyShape, sameEffectivePolicy } from '../../../../src/delivery/smtp/reuse.ts';
import type { ConnectPolicy } from '../../../../src/delivery/tls/types.ts';

const base: ConnectPolicy = Object.freeze({
  nexthop: 'example.com',
  nexthopDomain: 'example.com',
  source: 'smtp_tls_security_level',
  tlsRequiredNo: false,
  applied: Object.freeze({ source: 'default', type: 'no-policy-found', domain: 'example.com', strings: [], mxHostPatterns: [], level: 'encrypt', configuredLevel: 'encrypt' }),
  level: 'encrypt',
  match: [],
  ciphers: 'DEFAULT',
  trustAnchorFiles: [],
  connectionReuse: true,
}) as ConnectPolicy;

test('equal policies give equal keys; the next hop and the transport are part of the key', () => {
  assert.equal(cacheKey('smtp', 'example.com', base), cacheKey('smtp', 'example.com', { ...base }));
  assert.notEqual(cacheKey('smtp', 'example.com', base), cacheKey('smtp', 'example.net', base));
  assert.notEqual(cacheKey('smtp', 'example.com', base), cacheKey('relay', 'example.com', base));
});

test('every field that decides what a connection had to prove changes the shape', () => {
  const variants: Partial<ConnectPolicy>[] = [
    { level: 'verify' },
    { match: ['hostname'] },
    { minProtocol: 'TLSv1.3' },
    { maxProtocol: 'TLSv1.2' },
    { ciphers: 'HIGH' },
    { servername: 'mx.example.com' },
    { trustAnchorFiles: ['/etc/ta.pem'] },
    { tlsRequiredNo: true },
    { configuredLevel: 'dane' },
    { applied: { ...base.applied, source: 'mta-sts', type: 'sts', strings: ['version: STSv1', 'mode: enforce'], mxHostPatterns: ['mx.example.com'] } },
    { applied: { ...base.applied, source: 'dane', type: 'tlsa', strings: ['3 1 1 ab12'] } },
    { applied: { ...base.applied, strings: ['3 1 1 cd34'] } },
  ];
  for (const v of variants) {
    const other = { ...base, ...v } as ConnectPolicy;
    assert.notEqual(policyShape(other), policyShape(base), JSON.stringify(v));
    assert.equal(sameEffectivePolicy(base, other), false, JSON.stringify(v));
  }
  assert.equal(sameEffectivePolicy(base, { ...base }), true);
});

test('smtp_tls_connection_reuse defaults to yes in sealpost (Postfix: no); an explicit no wins', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-reuse-'));
  try {
    writeFileSync(join(dir, 'main.cf'), '');
    assert.equal(loadConfig({ configDir: dir }).getBool('smtp_tls_connection_reuse'), true);
    writeFileSync(join(dir, 'main.cf'), 'smtp_tls_connection_reuse = no\n');
    assert.equal(loadConfig({ configDir: dir }).getBool('smtp_tls_connection_reuse'), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
