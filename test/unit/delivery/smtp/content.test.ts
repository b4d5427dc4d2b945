import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNK, dataStream, eightBitCapable, mimeDowngradeWanted, queueContent, type MessageSource } from '../../../../src/delivery/smtp/content.ts';
import { encodeQueueFile } from '../../../../src/queue/queue-file.ts';
import { parseEhlo } from '../../../../src/smtp/ehlo.ts';
import { tempDir } from '../../../harness/cli.ts';

const SETTINGS = { lineLimit: 998, disableMimeOutputConversion: false, mime: {} };

function queueFile(dir: string, name: string, content: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, encodeQueueFile({
    arrivalTime: 0, sender: 's@example.org', recipients: [{ address: 'r@example.com' }],
    smtputf8: false, eightBitMime: false, requireTls: false, tlsRequiredNo: false,
  }, content));
  return path;
}

async function all(it: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; pieces: number }> {
  const parts: Buffer[] = [];
  for await (const p of it) parts.push(p);
  return { bytes: Buffer.concat(parts), pieces: parts.length };
}

test('queueContent: the content in pieces, the same bytes every time the file is opened again', async () => {
  const t = tempDir();
  try {
    const body = Buffer.alloc(3 * CHUNK + 17, 0x78);
    const content = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), body]);
    const source = queueContent(queueFile(t.dir, 'Q1', content));
    const first = await all(source.chunks());
    assert.ok(first.bytes.equals(content));
    assert.equal(first.pieces, 4);
    assert.ok((await all(source.chunks())).bytes.equals(content));
    // With reuse every piece is the same memory: copied as it comes, the content is intact.
    const copies: Buffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    for await (const piece of source.chunks(true)) {
      copies.push(Buffer.from(piece));
      seen.add(piece.buffer);
    }
    assert.ok(Buffer.concat(copies).equals(content));
    assert.equal(seen.size, 1);
    assert.equal(await source.headersNeedUtf8(), false);
    assert.equal(await queueContent(queueFile(t.dir, 'Q2', Buffer.from('Subject: caf\u00e9\r\n\r\nx\r\n', 'utf8'))).headersNeedUtf8(), true);
    // 8-bit bytes in the body only: the header section is ASCII.
    assert.equal(await queueContent(queueFile(t.dir, 'Q3', Buffer.from('Subject: x\r\n\r\ncaf\u00e9\r\n', 'utf8'))).headersNeedUtf8(), false);
  } finally {
    t.cleanup();
  }
});

test('queueContent: a corrupt or truncated content throws after the last piece, a missing file at once', async () => {
  const t = tempDir();
  try {
    const path = queueFile(t.dir, 'Q', Buffer.from('Subject: x\r\n\r\nhello\r\n'));
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] = 0x58; // "hello" → "helXo"
    writeFileSync(path, bytes);
    await assert.rejects(all(queueContent(path).chunks()), /content checksum mismatch/);
    writeFileSync(path, bytes.subarray(0, bytes.length - 4));
    await assert.rejects(all(queueContent(path).chunks()), /truncated file/);
    await assert.rejects(all(queueContent(join(t.dir, 'gone')).chunks()), /ENOENT/);
  } finally {
    t.cleanup();
  }
});

function source(text: string, piece = 7): MessageSource {
  const buf = Buffer.from(text, 'utf8');
  return {
    async *chunks() {
      for (let i = 0; i < buf.length; i += piece) yield buf.subarray(i, i + piece);
    },
    headersNeedUtf8: async () => false,
  };
}

test('dataStream: downgrade, then line breaking and stuffing; the first broken line is reported once', async () => {
  const text = `Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n.\u00e9\r\n${'z'.repeat(40)}\r\n${'w'.repeat(40)}`;
  let told = 0;
  const plain = await all(dataStream(source(text), { settings: { ...SETTINGS, lineLimit: 32 }, downgrade: false, onLineBroken: () => told++ }));
  assert.equal(plain.bytes.toString('utf8'),
    `Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n..\u00e9\r\n${'z'.repeat(32)}\r\n ${'z'.repeat(8)}\r\n${'w'.repeat(32)}\r\n ${'w'.repeat(8)}\r\n.\r\n`);
  assert.equal(told, 1);
  const converted = await all(dataStream(source(text), { settings: SETTINGS, downgrade: true }));
  assert.equal(converted.bytes.toString('latin1'),
    `Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n..=C3=A9\r\n${'z'.repeat(40)}\r\n${'w'.repeat(40)}\r\n.\r\n`);
});

test('downgrade decision (smtp_proto.c SMTP_MIME_DOWNGRADE)', () => {
  assert.equal(mimeDowngradeWanted(SETTINGS, parseEhlo(['mx'])), true);
  assert.equal(mimeDowngradeWanted(SETTINGS, parseEhlo(['mx', '8BITMIME'])), false);
  assert.equal(mimeDowngradeWanted(SETTINGS, parseEhlo(['mx', 'SMTPUTF8'])), false);
  assert.equal(eightBitCapable(parseEhlo(['mx', 'SMTPUTF8'])), true);
  assert.equal(mimeDowngradeWanted({ ...SETTINGS, disableMimeOutputConversion: true }, parseEhlo(['mx'])), false);
});
