/**
 * Outbound SMTP smuggling through the running daemon: a client sends, inside one DATA,
 * every end-of-data shape a lenient server might honour (`\n.\n`, `\n.\r\n`, `\r.\r\n`,
 * `\r\n.\r`, `\r\n.\n`, `\n.\r`, `\r.\n`) followed by a second envelope. sealpost accepts
 * each as one message (only `\r\n.\r\n` ends DATA) and, with cleanup_replace_stray_cr_lf =
 * yes, relays bytes in which no lenient receiver finds a second end of data: the next hop,
 * which records the raw DATA stream, gets exactly one message per submission.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { RawSmtp } from '../harness/smtp-client.ts';
import { qmgrLab } from './qmgr-lab.ts';

const SHAPES = ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\r\n.\n', '\n.\r', '\r.\n'] as const;

/** Every sequence a lenient server could take for the end of DATA (and the real one). */
const LENIENT_ENDS = ['\r\n.\r\n', ...SHAPES];

/** A next hop that keeps the raw bytes of every DATA stream, up to the standard end. */
async function rawSink(): Promise<{ server: Server; port: number; streams: Buffer[] }> {
  const streams: Buffer[] = [];
  const server = createServer((sock: Socket) => {
    let buf = Buffer.alloc(0);
    let inData = false;
    sock.write('220 sink.test ESMTP\r\n');
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      for (;;) {
        if (inData) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          streams.push(buf.subarray(0, end + 5));
          buf = buf.subarray(end + 5);
          inData = false;
          sock.write('250 2.0.0 Ok: queued\r\n');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1').toUpperCase();
        buf = buf.subarray(nl + 2);
        if (line.startsWith('EHLO')) sock.write('250-sink.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n');
        else if (line.startsWith('DATA')) {
          inData = true;
          // The DATA command's CRLF is the first CRLF of "\r\n.\r\n".
          buf = Buffer.concat([Buffer.from('\r\n'), buf]);
          sock.write('354 go ahead\r\n');
        } else if (line.startsWith('QUIT')) {
          sock.end('221 2.0.0 Bye\r\n');
        } else sock.write('250 2.0.0 Ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.2', () => resolve((server.address() as { port: number }).port)));
  return { server, port, streams };
}

/** How many times a lenient server would end DATA in this raw stream: dots that one of the sequences frames. */
function lenientEnds(stream: string): number {
  let n = 0;
  for (let dot = stream.indexOf('.'); dot >= 0; dot = stream.indexOf('.', dot + 1)) {
    if (LENIENT_ENDS.some((e) => stream.startsWith(e, dot - e.indexOf('.')))) n++;
  }
  return n;
}

test('each end-of-data smuggling shape reaches the next hop as one message with no second end of data', { timeout: 60_000 }, async () => {
  const sink = await rawSink();
  const lab = await qmgrLab({
    zone: { 'one.test': { MX: [[10, 'mx.one.test']] }, 'mx.one.test': { A: ['127.0.0.2'] } },
    receiverPort: sink.port,
  });
  try {
    await lab.start();
    const port = Number(/^127\.0\.0\.1:(\d+) inet/m.exec(readFileSync(join(lab.configDir, 'master.cf'), 'utf8'))![1]);
    for (const shape of SHAPES) {
      const c = await RawSmtp.open(port);
      await c.reply();
      await c.cmd('EHLO client.example');
      assert.match(await c.cmd('MAIL FROM:<alice@sender.test>'), /^250 /);
      assert.match(await c.cmd('RCPT TO:<bob@one.test>'), /^250 /);
      assert.match(await c.cmd('DATA'), /^354 /);
      c.send(`Subject: ${JSON.stringify(shape)}\r\n\r\nfirst${shape}MAIL FROM:<evil@sender.test>\r\nRCPT TO:<victim@one.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n.\r\n`);
      assert.match(await c.reply(), /^250 2\.0\.0 Ok: queued as /, JSON.stringify(shape));
      await c.cmd('QUIT');
    }
    await lab.waitLog(/status=sent/, SHAPES.length);
    assert.equal(sink.streams.length, SHAPES.length, 'one message per submission');
    for (const raw of sink.streams) {
      const text = raw.toString('latin1');
      assert.match(text, /MAIL FROM:<evil@sender\.test>/);
      assert.equal(lenientEnds(text), 1, `only the real end of data in ${JSON.stringify(text)}`);
      assert.ok(text.endsWith('\r\n.\r\n'));
      assert.doesNotMatch(text.slice(0, -2).replace(/\r\n/g, ''), /[\r\n]/, 'no bare CR or LF at all');
    }
  } finally {
    await lab.cleanup();
    await new Promise((r) => sink.server.close(r));
  }
});
