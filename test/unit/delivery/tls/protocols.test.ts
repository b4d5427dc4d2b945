/**
 * protocols.test.ts — protocol lists (both syntaxes) → Node min/max.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMainCfProtocols, parseTableProtocols } from '../../../../src/delivery/tls/protocols.ts';

test('>= and <= bounds, names and hex', () => {
  assert.deepEqual(parseMainCfProtocols('>=TLSv1'), { min: 'TLSv1', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols('>=TLSv1.2'), { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols('<=TLSv1.2'), { min: 'TLSv1', max: 'TLSv1.2' });
  assert.deepEqual(parseMainCfProtocols('>=TLSv1.1, <=TLSv1.2'), { min: 'TLSv1.1', max: 'TLSv1.2' });
  assert.deepEqual(parseMainCfProtocols('>=0x0303'), { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols('>=0304'), { min: 'TLSv1.3', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols(''), { min: 'TLSv1', max: 'TLSv1.3' });
});

test('legacy include/exclude forms', () => {
  assert.deepEqual(parseMainCfProtocols('!SSLv2, !SSLv3'), { min: 'TLSv1', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols('!SSLv2 !SSLv3 !TLSv1 !TLSv1.1'), { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols('TLSv1.2 TLSv1.3'), { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.deepEqual(parseMainCfProtocols('tlsv1.2'), { min: 'TLSv1.2', max: 'TLSv1.2' });
  // A hole: the highest contiguous run (stricter, never weaker).
  assert.deepEqual(parseMainCfProtocols('!TLSv1.1'), { min: 'TLSv1.2', max: 'TLSv1.3' });
});

test('separators: main.cf takes whitespace, commas, colons; the table only colons', () => {
  assert.deepEqual(parseMainCfProtocols('!SSLv2:!SSLv3:!TLSv1'), { min: 'TLSv1.1', max: 'TLSv1.3' });
  assert.deepEqual(parseTableProtocols('!SSLv2:!SSLv3:!TLSv1:!TLSv1.1'), { min: 'TLSv1.2', max: 'TLSv1.3' });
  assert.ok('error' in parseTableProtocols('!SSLv2 !SSLv3'));
});

test('errors', () => {
  assert.deepEqual(parseMainCfProtocols('>=TLSv9'), { error: 'Invalid TLS protocol list ">=TLSv9": unknown protocol "TLSv9"' });
  assert.deepEqual(parseMainCfProtocols('QUIC'), { error: 'Invalid TLS protocol list "QUIC": unknown protocol "QUIC"' });
  assert.deepEqual(parseMainCfProtocols('>=TLSv1.3 <=TLSv1.2'), { error: 'Invalid TLS protocol list ">=TLSv1.3 <=TLSv1.2": no protocol left enabled' });
  assert.ok('error' in parseMainCfProtocols('SSLv3'));
});
