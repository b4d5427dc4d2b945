/**
 * wire.test.ts — the DNS reply parser from bytes: header flags, question,
 * answer records, compression pointers (and loops), truncation, rdata decoders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import {
  RR_TYPE, WireError, chaseCname, decodeA, decodeAAAA, decodeCname, decodeMx, decodeTxt, parseReply, readName, txtText,
} from '../../../../src/delivery/dns/wire.ts';

function reply(answers: dnsPacket.Answer[], flags = 0): Buffer {
  return dnsPacket.encode({ type: 'response', id: 77, flags, questions: [{ name: 'mx.example.com', type: 'A', class: 'IN' }], answers });
}

test('header: id, QR, AD, TC and rcode from the flag bits', () => {
  const r = parseReply(reply([], dnsPacket.AUTHENTIC_DATA | dnsPacket.TRUNCATED_RESPONSE | 3));
  assert.equal(r.header.id, 77);
  assert.equal(r.header.response, true);
  assert.equal(r.header.authenticatedData, true);
  assert.equal(r.header.truncated, true);
  assert.equal(r.header.rcode, 3);
  assert.deepEqual(r.question, { name: 'mx.example.com', type: RR_TYPE.A, class: 1 });
});

test('answers: owner names (compressed), types, ttl and rdata bounds', () => {
  const msg = reply([
    { name: 'mx.example.com', type: 'CNAME', ttl: 60, class: 'IN', data: 'mx.provider.net' },
    { name: 'mx.provider.net', type: 'A', ttl: 120, class: 'IN', data: '192.0.2.9' },
  ]);
  const r = parseReply(msg);
  assert.equal(r.answers.length, 2);
  assert.equal(r.answers[0]!.name, 'mx.example.com');
  assert.equal(r.answers[0]!.type, RR_TYPE.CNAME);
  assert.equal(decodeCname(msg, r.answers[0]!), 'mx.provider.net');
  assert.equal(r.answers[1]!.ttl, 120);
  assert.equal(decodeA(r.answers[1]!.rdata), '192.0.2.9');
  assert.equal(chaseCname(msg, r.answers, 'MX.example.com.'), 'mx.provider.net');
  assert.equal(chaseCname(msg, r.answers, 'other.example'), 'other.example');
});

test('MX, AAAA and multi-string TXT rdata', () => {
  const msg = reply([
    { name: 'example.com', type: 'MX', ttl: 1, class: 'IN', data: { preference: 10, exchange: 'mx.example.com' } },
    { name: 'example.com', type: 'AAAA', ttl: 1, class: 'IN', data: '2001:db8::25' },
    { name: 'example.com', type: 'TXT', ttl: 1, class: 'IN', data: [Buffer.from('v=STSv1; '), Buffer.from('id=abc')] },
    { name: 'example.com', type: 'MX', ttl: 1, class: 'IN', data: { preference: 0, exchange: '.' } },
  ]);
  const r = parseReply(msg);
  assert.deepEqual(decodeMx(msg, r.answers[0]!), { preference: 10, exchange: 'mx.example.com' });
  assert.equal(decodeAAAA(r.answers[1]!.rdata), '2001:db8::25');
  assert.equal(decodeAAAA(Buffer.alloc(16)), '::');
  assert.equal(decodeAAAA(Buffer.from('20010db8000000010000000000000001', 'hex')), '2001:db8:0:1::1');
  // RFC 8461 §3.1: the strings of one record are concatenated without spaces.
  assert.equal(txtText(decodeTxt(r.answers[2]!.rdata)), 'v=STSv1; id=abc');
  assert.deepEqual(decodeMx(msg, r.answers[3]!), { preference: 0, exchange: '' });
});

test('truncated messages and rdata are WireErrors, never RangeErrors', () => {
  const msg = reply([{ name: 'example.com', type: 'A', ttl: 1, class: 'IN', data: '192.0.2.1' }]);
  for (const cut of [5, 12, 20, msg.length - 2]) {
    assert.throws(() => parseReply(msg.subarray(0, cut)), WireError, `cut at ${cut}`);
  }
  assert.throws(() => decodeA(Buffer.from([1, 2, 3])), WireError);
  assert.throws(() => decodeTxt(Buffer.from([5, 0x61])), WireError);
});

test('compression pointers: forward pointers and loops are refused', () => {
  // A name at offset 12 pointing to itself.
  const loop = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 12])]);
  assert.throws(() => readName(loop, 12), WireError);
  const forward = Buffer.concat([Buffer.alloc(12), Buffer.from([0xc0, 14, 0])]);
  assert.throws(() => readName(forward, 12), WireError);
  const labels = Buffer.concat([Buffer.alloc(12), Buffer.from([1, 0x61, 0, 0xc0, 12])]);
  assert.deepEqual(readName(labels, 15), { name: 'a', next: 17 });
  assert.deepEqual(readName(Buffer.from([0]), 0), { name: '.', next: 1 });
});

test('odd label bytes are escaped, names over 255 octets refused', () => {
  const odd = Buffer.from([3, 0x61, 0x2e, 0x00, 0]);
  assert.equal(readName(odd, 0).name, 'a\\.\\000');
  const long = Buffer.concat([...Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([63]), Buffer.alloc(63, 0x61)])), Buffer.from([0])]);
  assert.throws(() => readName(long, 0), WireError);
});
