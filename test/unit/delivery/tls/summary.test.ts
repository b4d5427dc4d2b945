/**
 * summary.test.ts — the TLS summary line, cipher bits, smtp_tls_loglevel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cipherBits, formatSummary, tlsLogLevel } from '../../../../src/delivery/tls/summary.ts';
import type { Config } from '../../../../src/config/types.ts';

test('cipher bits as OpenSSL reports them', () => {
  assert.deepEqual(cipherBits('TLS_AES_256_GCM_SHA384'), { cipherBits: 256, cipherAlgBits: 256 });
  assert.deepEqual(cipherBits('TLS_AES_128_GCM_SHA256'), { cipherBits: 128, cipherAlgBits: 128 });
  assert.deepEqual(cipherBits('TLS_CHACHA20_POLY1305_SHA256'), { cipherBits: 256, cipherAlgBits: 256 });
  assert.deepEqual(cipherBits('ECDHE-RSA-AES256-GCM-SHA384'), { cipherBits: 256, cipherAlgBits: 256 });
  assert.deepEqual(cipherBits('ECDHE-ECDSA-AES128-SHA'), { cipherBits: 128, cipherAlgBits: 128 });
  assert.deepEqual(cipherBits('DES-CBC3-SHA'), { cipherBits: 112, cipherAlgBits: 168 });
  assert.deepEqual(cipherBits('NULL-SHA256'), { cipherBits: 0, cipherAlgBits: 0 });
});

test('summary line: Postfix format, established/reused', () => {
  const ev = { trust: 'Verified' as const, protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256, logLines: [], summaryExtra: ' key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256' };
  const s = { hostname: 'mx.example.com', address: '192.0.2.25', port: 25, mxAuthenticated: false };
  assert.equal(
    formatSummary(ev, s, false),
    'Verified TLS connection established to mx.example.com[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature RSA-PSS (2048 bits) server-digest SHA256',
  );
  const { summaryExtra: _x, ...plain } = ev;
  assert.equal(formatSummary({ ...plain, trust: 'Anonymous' }, s, true), 'Anonymous TLS connection reused to mx.example.com[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)');
});

test('smtp_tls_loglevel: the first number counts (3.12 "1,trace")', () => {
  const cfg = (v: string) => ({ get: () => v }) as unknown as Config;
  assert.equal(tlsLogLevel(cfg('0')), 0);
  assert.equal(tlsLogLevel(cfg('2')), 2);
  assert.equal(tlsLogLevel(cfg('1,trace')), 1);
  assert.equal(tlsLogLevel(cfg('')), 0);
});
