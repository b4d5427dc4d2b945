/**
 * queue-file.ts streaming encoder: ContentCounter gives the same facts as the whole-content
 * functions in any chunking, and a head written with a reserve (padded envelope) decodes to
 * the same envelope as encodeQueueFile() writes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import {
  ContentCounter,
  countedMessageSize,
  decodeQueueFile,
  encodeQueueFile,
  encodeQueueFileHead,
  envelopeReserve,
  headerSectionLength,
} from '../../../src/queue/queue-file.ts';

const env = {
  arrivalTime: 1732766112345,
  sender: 'alice@example.org',
  recipients: [{ address: 'bob@example.com' }, { address: 'jörg@example.net', notify: ['FAILURE' as const] }],
  client: { name: 'unknown', address: '192.0.2.1' },
};

test('ContentCounter: the same length, CRC, message_size and header_length in any chunking', () => {
  const contents = ['Subject: x\r\n\r\nbody\r\n', '\r\nno header\r\n', '\nbare\n\nlf\n', 'a\r\nb\n\r\nc', 'no line end', '', 'x\r\r\n\r\n'];
  for (const c of contents) {
    const b = Buffer.from(c);
    for (const step of [1, 2, 3, 100]) {
      const k = new ContentCounter();
      for (let i = 0; i < b.length; i += step) k.push(b.subarray(i, i + step));
      assert.deepEqual(k.facts(), { contentLength: b.length, contentCrc: crc32(b) >>> 0, messageSize: countedMessageSize(b), headerLength: headerSectionLength(b) }, `${JSON.stringify(c)} / ${step}`);
    }
  }
});

test('a head written with a reserve decodes like encodeQueueFile(), flags raised after the reserve', () => {
  const content = Buffer.from('Subject: x\r\n\r\nbody\r\n');
  const k = new ContentCounter();
  k.push(content);
  const final = { ...env, smtputf8: true, eightBitMime: true, requireTls: true, tlsRequiredNo: true };
  const reserve = envelopeReserve(env);
  const file = Buffer.concat([encodeQueueFileHead(final, k.facts(), reserve), content]);
  const a = decodeQueueFile(file);
  const b = decodeQueueFile(encodeQueueFile(final, content));
  assert.deepEqual({ ...a.envelope, contentOffset: 0, fileLength: 0 }, { ...b.envelope, contentOffset: 0, fileLength: 0 });
  assert.deepEqual(a.content, content);
  assert.equal(file.length - content.length, 64 + 2 + reserve);
  assert.throws(() => encodeQueueFileHead({ ...final, sender: `${'x'.repeat(100)}@example.org` }, k.facts(), reserve), /does not fit/);
});
