/**
 * netstring.test.ts — netstring framing, byte by byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeNetstring, NetstringDecoder, NetstringError } from '../../../src/maps/netstring.ts';

test('encode', () => {
  assert.equal(encodeNetstring('postfix example.com').toString(), '19:postfix example.com,');
  assert.equal(encodeNetstring('').toString(), '0:,');
  assert.equal(encodeNetstring('é').toString('latin1'), '2:\xc3\xa9,');
});

test('decode frames split across chunks and several frames in one chunk', () => {
  const d = new NetstringDecoder(100);
  d.push(Buffer.from('1'));
  assert.equal(d.next(), undefined);
  d.push(Buffer.from('2:OK secure m'));
  assert.equal(d.next(), undefined);
  d.push(Buffer.from('x'));
  assert.equal(d.next(), undefined);
  d.push(Buffer.from(',9:NOTFOUND ,0:,'));
  assert.equal(d.next()!.toString(), 'OK secure mx');
  assert.equal(d.next()!.toString(), 'NOTFOUND ');
  assert.equal(d.next()!.toString(), '');
  assert.equal(d.next(), undefined);
  assert.equal(d.pending, 0);
});

test('malformed input throws NetstringError', () => {
  const bad = ['x:abc,', ':abc,', '3:abcX', '01:a,', '12345678901:'];
  for (const text of bad) {
    const d = new NetstringDecoder(1e12);
    d.push(Buffer.from(text));
    assert.throws(() => d.next(), NetstringError, text);
  }
});

test('a length over the limit throws before the body arrives', () => {
  const d = new NetstringDecoder(10);
  d.push(Buffer.from('11:'));
  assert.throws(() => d.next(), /exceeds the limit of 10/);
});
