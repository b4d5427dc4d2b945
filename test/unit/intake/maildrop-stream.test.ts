/**
 * maildrop.ts streaming: SendmailInput gives normaliseInput()'s bytes whatever the chunking
 * (long lines stream, a CRLF split across chunks is still one line end), and MaildropStream
 * writes a maildrop file with the header rules of sendmail -t.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { MaildropStream, normaliseInput, SendmailInput } from '../../../src/intake/maildrop.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';

function streamed(input: Buffer, step: number, ignoreDots: boolean): Buffer {
  const s = new SendmailInput({ ignoreDots });
  const out: Buffer[] = [];
  for (let i = 0; i < input.length; i += step) out.push(...s.push(input.subarray(i, i + step)));
  out.push(...s.end());
  return Buffer.concat(out);
}

test('SendmailInput equals normaliseInput in any chunking: From_ line, lone dot, CRLF and LF, CR split, long lines', () => {
  const long = 'L'.repeat(70 * 1024);
  const cases = [
    'From a@b Sat Nov 28\nSubject: x\n\nl1\r\n.\nl2\n',
    'Subject: x\r\n\r\nbody with a bare\rCR\r\r\nand CRCRLF\r\n',
    `Subject: long\n\n${long}\r\nafter\n${long}`,
    `From ${long}\nSubject: y\n\nz\n`,
    'Subject: no final line end\n\nlast',
    '',
  ];
  for (const c of cases) {
    for (const ignoreDots of [false, true]) {
      const want = normaliseInput(Buffer.from(c), { ignoreDots });
      for (const step of [1, 2, 7, 4096, 1 << 20]) {
        if (step === 1 && c.length > 10000) continue;
        assert.deepEqual(streamed(Buffer.from(c), step, ignoreDots), want, `${JSON.stringify(c.slice(0, 40))} -i=${ignoreDots} pieces of ${step}`);
      }
    }
  }
});

test('MaildropStream: header collected first, Bcc-free header written, separator added, body streamed', async () => {
  const t = tempDir();
  try {
    const spool = await createSpool(join(t.dir, 'q'));
    const m = new MaildropStream({ ignoreDots: false });
    const input = Buffer.from('To: a@x\nBcc: secret@x\nSubject: s\nbody line 1\nbody line 2\n.\nnot read\n');
    assert.equal(m.collect(input.subarray(0, 20)), false);
    assert.equal(m.collect(input.subarray(20)), true);
    assert.equal(m.headerBytes().toString(), 'To: a@x\r\nBcc: secret@x\r\nSubject: s\r\n');
    const env = { arrivalTime: Date.now(), sender: 'me@x', recipients: [{ address: 'a@x' }] };
    await m.open(spool, env, Buffer.from('To: a@x\r\nSubject: s\r\n'));
    assert.equal(m.inputEnded, true);
    await m.drain();
    const id = await m.finish(env);
    const { content, envelope } = await spool.readMessage('maildrop', id);
    assert.equal(content.toString(), 'To: a@x\r\nSubject: s\r\n\r\nbody line 1\r\nbody line 2\r\n');
    assert.equal(envelope.messageSize, content.length - 5);
  } finally {
    t.cleanup();
  }
});
