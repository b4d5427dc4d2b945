import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import {
  decodeEnvelope,
  decodeQueueFile,
  encodeQueueFile,
  envelopePrefixLength,
  FORCED_EXPIRE_OFFSET,
  HEADER_LENGTH,
  headerSectionLength,
  countedMessageSize,
  QueueFileFormatError,
  statusOffset,
} from '../../../src/queue/queue-file.ts';
import type { EnvelopeInput } from '../../../src/queue/queue-file.ts';

const content = Buffer.from('Subject: hi\r\nFrom: a@example.org\r\n\r\nbody \xff line\r\n', 'latin1');
const env: EnvelopeInput = {
  arrivalTime: 1732766112345,
  sender: 'alice@example.org',
  recipients: [
    { address: 'bob@example.com', orcpt: 'rfc822;Bob@example.com', notify: ['FAILURE', 'DELAY'] },
    { address: 'carol@example.net', origAddress: 'carol@old.example.net' },
  ],
  envid: 'ENV1',
  ret: 'HDRS',
  smtputf8: true,
  eightBitMime: true,
  requireTls: true,
  tlsRequiredNo: false,
  client: { name: 'mail.example.org', address: '192.0.2.1', port: 4711, helo: 'mail.example.org', protocol: 'ESMTPSA', saslUser: 'alice' },
};

test('fixed header bytes: magic, version, lengths, checksums', () => {
  const f = encodeQueueFile(env, content);
  assert.deepEqual([...f.subarray(0, 8)], [0x53, 0x50, 0x51, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(f.readUInt16BE(8), 1);
  assert.equal(f.readUInt16BE(10), 64);
  assert.equal(f.readUInt32BE(12), 2);
  const envLen = f.readUInt32BE(16);
  assert.equal(f.readBigUInt64BE(24), BigInt(content.length));
  assert.equal(f.readUInt32BE(32), crc32(content));
  assert.equal(f.readUInt32BE(36), crc32(f.subarray(0, 36)));
  assert.equal(String.fromCharCode(f[FORCED_EXPIRE_OFFSET]!), '-');
  assert.equal(f.subarray(HEADER_LENGTH, HEADER_LENGTH + 2).toString(), 'PP');
  assert.equal(f.length, HEADER_LENGTH + 2 + envLen + content.length);
  // Content is stored raw, at the end.
  assert.ok(f.subarray(f.length - content.length).equals(content));
  assert.equal(envelopePrefixLength(f.subarray(0, 64)), HEADER_LENGTH + 2 + envLen);
});

test('round trip keeps every envelope field and the raw content', () => {
  const { envelope: e, content: c } = decodeQueueFile(encodeQueueFile(env, content));
  assert.ok(c.equals(content));
  assert.equal(e.arrivalTime, env.arrivalTime);
  assert.equal(e.sender, env.sender);
  assert.deepEqual(e.recipients, [
    { index: 0, address: 'bob@example.com', origAddress: 'bob@example.com', orcpt: 'rfc822;Bob@example.com', notify: ['FAILURE', 'DELAY'], status: 'pending' },
    { index: 1, address: 'carol@example.net', origAddress: 'carol@old.example.net', status: 'pending' },
  ]);
  assert.equal(e.envid, 'ENV1');
  assert.equal(e.ret, 'HDRS');
  assert.equal(e.smtputf8, true);
  assert.equal(e.eightBitMime, true);
  assert.equal(e.requireTls, true);
  assert.equal(e.tlsRequiredNo, false);
  assert.deepEqual(e.client, env.client);
  assert.equal(e.forcedExpire, false);
  assert.equal(e.messageSize, content.length - 4); // four CRLFs counted as one byte each
  assert.equal(e.headerLength, 'Subject: hi\r\nFrom: a@example.org\r\n\r\n'.length);
});

test('encoding is deterministic', () => {
  assert.ok(encodeQueueFile(env, content).equals(encodeQueueFile({ ...env }, Buffer.from(content))));
});

test('status and forced-expire bytes are flipped in place and decoded', () => {
  const f = encodeQueueFile(env, content);
  f[statusOffset(1)] = 0x44; // 'D'
  f[FORCED_EXPIRE_OFFSET] = 0x45; // 'E'
  const e = decodeEnvelope(f, f.length);
  assert.equal(e.recipients[0]!.status, 'pending');
  assert.equal(e.recipients[1]!.status, 'done');
  assert.equal(e.forcedExpire, true);
});

test('truncation anywhere is detected', () => {
  const f = encodeQueueFile(env, content);
  for (const cut of [0, 10, 63, 64, 65, 100, f.length - content.length, f.length - 1]) {
    assert.throws(() => decodeQueueFile(f.subarray(0, cut)), QueueFileFormatError, `cut at ${cut}`);
  }
  // Envelope-only reads detect a short file from its length alone.
  assert.throws(() => decodeEnvelope(f, f.length - 1), /truncated file/);
  assert.throws(() => decodeEnvelope(f, f.length + 1), /trailing garbage/);
});

test('a flipped bit in header, envelope or content is detected', () => {
  const f = encodeQueueFile(env, content);
  const envStart = HEADER_LENGTH + 2;
  for (const [at, why] of [[3, /magic/], [13, /header checksum/], [envStart + 5, /envelope checksum/], [f.length - 3, /content checksum/], [statusOffset(0), /status byte/], [FORCED_EXPIRE_OFFSET, /forced-expire/]] as const) {
    const g = Buffer.from(f);
    g[at] = g[at]! ^ 0x01;
    assert.throws(() => decodeQueueFile(g), why, `byte ${at}`);
  }
});

test('an unknown version is refused', () => {
  const f = encodeQueueFile(env, content);
  f.writeUInt16BE(2, 8);
  f.writeUInt32BE(crc32(f.subarray(0, 36)), 36);
  assert.throws(() => decodeQueueFile(f), /unsupported queue file version 2/);
});

test('message_size counts CRLF as one byte; header section ends at the empty line', () => {
  assert.equal(countedMessageSize(Buffer.from('a\r\nb\r\n')), 4);
  assert.equal(countedMessageSize(Buffer.from('a\nb\r')), 4);
  assert.equal(headerSectionLength(Buffer.from('A: 1\nB: 2\n\nbody\n')), 11);
  assert.equal(headerSectionLength(Buffer.from('A: 1\r\n\r\nbody')), 8);
  assert.equal(headerSectionLength(Buffer.from('A: 1\n')), 5);
  assert.equal(headerSectionLength(Buffer.from('\nbody')), 1);
});

test('null sender and a recipient with no options encode compactly', () => {
  const { envelope: e } = decodeQueueFile(encodeQueueFile({ arrivalTime: 0, sender: '', recipients: [{ address: 'x@y' }] }, Buffer.alloc(0)));
  assert.equal(e.sender, '');
  assert.equal(e.smtputf8, false);
  assert.equal(e.client, undefined);
  assert.equal(e.envid, undefined);
  assert.equal(e.messageSize, 0);
});
