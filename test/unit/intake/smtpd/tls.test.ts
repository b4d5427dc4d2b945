import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cipherList, parseProtocols } from '../../../../src/intake/smtpd/tls.ts';

test('parseProtocols: Postfix syntax to a Node version range', () => {
  assert.deepEqual(parseProtocols('>=TLSv1'), { minVersion: 'TLSv1', maxVersion: 'TLSv1.3' });
  assert.deepEqual(parseProtocols('>=TLSv1.2'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
  assert.deepEqual(parseProtocols('!SSLv2, !SSLv3, !TLSv1, !TLSv1.1'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
  assert.deepEqual(parseProtocols('>=TLSv1.2 <=TLSv1.2'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  assert.deepEqual(parseProtocols('TLSv1.2:TLSv1.3'), { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3' });
  assert.throws(() => parseProtocols('!TLSv1.2'), /contiguous range/);
  assert.throws(() => parseProtocols('>=TLSv9'), /unknown protocol "TLSv9"/);
});

test('cipherList: grades and exclusions', () => {
  assert.equal(cipherList('high', []), 'HIGH:!aNULL:!MD5');
  assert.match(cipherList('medium', ['RC4']), /:!RC4$/);
  assert.throws(() => cipherList('super', []), /unknown cipher grade/);
});
