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

for (const blocking of [false, true]) test(`queueContent (${blocking ? 'blocking calls' : 'thread pool'}): the content in pieces, the same bytes every time the file is opened again`, async () => {
  const t = tempDir();
  try {
    const body = Buffer.alloc(3 * CHUNK + 17, 0x78);
    const content = Buffer.concat([Buffer.from('Subject: big\r\n\r\n'), body]);
    const source = queueContent(queueFile(t.dir, 'Q1', content), blocking);
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
    assert.equal(await queueContent(queueFile(t.dir, 'Q2', Buffer.from('Subject: caf\u00e9\r\n\r\nx\r\n', 'utf8')), blocking).headersNeedUtf8(), true);
    // 8-bit bytes in the body only: the header section is ASCII.
    assert.equal(await queueContent(queueFile(t.dir, 'Q3', Buffer.from('Subject: x\r\n\r\ncaf\u00e9\r\n', 'utf8')), blocking).headersNeedUtf8(), false);
    // A small message: one piece; an envelope longer than a piece (many recipients) is read whole.
    const small = Buffer.from('Subject: s\r\n\r\nhi\r\n');
    assert.ok((await all(queueContent(queueFile(t.dir, 'Q4', small), blocking).chunks())).bytes.equals(small));
    const many = join(t.dir, 'Q5');
    writeFileSync(many, encodeQueueFile({
      arrivalTime: 0, sender: 's@example.org', recipients: Array.from({ length: 4000 }, (_, i) => ({ address: `recipient-number-${i}@example.com` })),
      smtputf8: false, eightBitMime: false, requireTls: false, tlsRequiredNo: false,
    }, content));
    for (const reuse of [false, true]) {
      const copies: Buffer[] = [];
      for await (const piece of queueContent(many, blocking).chunks(reuse)) copies.push(Buffer.from(piece));
      assert.ok(Buffer.concat(copies).equals(content));
    }
  } finally {
    t.cleanup();
  }
});

for (const blocking of [false, true]) test(`queueContent (${blocking ? 'blocking calls' : 'thread pool'}): a corrupt or truncated content throws after the last piece, a missing file at once`, async () => {
  const t = tempDir();
  try {
    const path = queueFile(t.dir, 'Q', Buffer.from('Subject: x\r\n\r\nhello\r\n'));
    const bytes = readFileSync(path);
    bytes[bytes.length - 3] = 0x58; // "hello" → "helXo"
    writeFileSync(path, bytes);
    await assert.rejects(all(queueContent(path, blocking).chunks()), /content checksum mismatch/);
    writeFileSync(path, bytes.subarray(0, bytes.length - 4));
    await assert.rejects(all(queueContent(path, blocking).chunks()), /truncated file/);
    writeFileSync(path, bytes.subarray(0, 40));
    await assert.rejects(all(queueContent(path, blocking).chunks()), /truncated header/);
    await assert.rejects(all(queueContent(join(t.dir, 'gone'), blocking).chunks()), /ENOENT/);
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

test('dataStream: a small last piece goes out with the end of data in one piece, intact when the source reuses its buffer', async () => {
  // A source that reads every piece into one buffer and scribbles over it when asked for the next.
  function reusing(pieces: readonly Buffer[]): MessageSource {
    return {
      async *chunks() {
        const shared = Buffer.alloc(Math.max(...pieces.map((p) => p.length)));
        for (const p of pieces) {
          p.copy(shared);
          yield shared.subarray(0, p.length);
          shared.fill(0x23);
        }
      },
      headersNeedUtf8: async () => false,
    };
  }
  // What a socket does: takes a copy of each piece before asking for the next.
  async function copies(it: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; pieces: number }> {
    const parts: Buffer[] = [];
    for await (const p of it) parts.push(Buffer.from(p));
    return { bytes: Buffer.concat(parts), pieces: parts.length };
  }
  const small = Buffer.from('Subject: s\r\n\r\n.dot\r\nlast line without end');
  const one = await copies(dataStream(reusing([small]), { settings: SETTINGS, downgrade: false }));
  assert.equal(one.pieces, 1);
  assert.equal(one.bytes.toString(), 'Subject: s\r\n\r\n..dot\r\nlast line without end\r\n.\r\n');
  const big = Buffer.from(`${'a'.repeat(78)}\r\n`.repeat(512)); // 40 KiB
  const parts = [Buffer.from('a\r\n'), big, Buffer.from('b\r\n'), Buffer.from('c\r')];
  const many = await copies(dataStream(reusing(parts), { settings: SETTINGS, downgrade: false }));
  assert.equal(many.bytes.toString(), `a\r\n${big.toString()}b\r\nc\r\n.\r\n`);
  assert.equal(many.pieces, 4); // a, the big piece, b, then c with the end of data
});

test('downgrade decision (smtp_proto.c SMTP_MIME_DOWNGRADE)', () => {
  assert.equal(mimeDowngradeWanted(SETTINGS, parseEhlo(['mx'])), true);
  assert.equal(mimeDowngradeWanted(SETTINGS, parseEhlo(['mx', '8BITMIME'])), false);
  assert.equal(mimeDowngradeWanted(SETTINGS, parseEhlo(['mx', 'SMTPUTF8'])), false);
  assert.equal(eightBitCapable(parseEhlo(['mx', 'SMTPUTF8'])), true);
  assert.equal(mimeDowngradeWanted({ ...SETTINGS, disableMimeOutputConversion: true }, parseEhlo(['mx'])), false);
});
