/**
 * Outbound smuggling defence that does not depend on intake: queue files are written
 * directly (bypassing cleanup and cleanup_replace_stray_cr_lf) with every end-of-data
 * smuggling shape in the content — `\n.\n`, `\n.\r\n`, `\r.\r\n`, `\r\n.\r`, `\r\n.\n`,
 * `\n.\r`, `\r.\n` — followed by a second envelope, and delivered by the SMTP client to a
 * receiver that records the raw DATA stream. The client's output transform turns every
 * lone CR or LF into CRLF (and stuffs the dot after it): the raw bytes hold no bare CR, no
 * bare LF and exactly one end of data, the real one; the smuggled commands stay text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { deliveryLab, outcomeOf } from '../harness/smtp-receiver.ts';

const SHAPES = ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\r\n.\n', '\n.\r', '\r.\n'] as const;

/** A receiver that keeps every DATA stream's raw bytes, up to and including the standard end. */
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
        } else if (line.startsWith('QUIT')) sock.end('221 2.0.0 Bye\r\n');
        else sock.write('250 2.0.0 Ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.2', () => resolve((server.address() as { port: number }).port)));
  return { server, port, streams };
}

test('whatever the queue file holds, the next hop gets no bare CR or LF and no early end of data', { timeout: 60_000 }, async () => {
  const sink = await rawSink();
  const lab = await deliveryLab({ 'one.test': { MX: [[10, 'mx.one.test']] }, 'mx.one.test': { A: ['127.0.0.2'] } }, sink.port);
  try {
    for (const shape of SHAPES) {
      const content = Buffer.from(`Subject: smuggle\r\n\r\nfirst${shape}MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@one.test>\r\nDATA\r\nSubject: second\r\n\r\nsecond\r\n.\r\nlast line`, 'latin1');
      const o = outcomeOf(await lab.deliver({ recipients: ['bob@one.test'], nexthops: ['one.test'], content }));
      assert.equal(o.status, 'sent', `${JSON.stringify(shape)}: ${o.reason}`);
      const raw = sink.streams.at(-1)!.toString('latin1');
      // The stream as the receiver saw it after the DATA command's CRLF.
      const wire = raw.slice(2);
      assert.equal(/\r(?!\n)|(?<!\r)\n/.test(wire), false, `bare CR or LF for ${JSON.stringify(shape)}: ${JSON.stringify(wire)}`);
      assert.equal(raw.indexOf('\r\n.\r\n'), raw.length - 5, `early end of data for ${JSON.stringify(shape)}: ${JSON.stringify(wire)}`);
      assert.match(wire, /\r\n\.\.\r\nMAIL FROM:<evil@attacker\.test>\r\n/);
      assert.ok(wire.endsWith('\r\n..\r\nlast line\r\n.\r\n'), JSON.stringify(wire));
    }
    assert.equal(sink.streams.length, SHAPES.length);
  } finally {
    await lab.close();
    await new Promise((r) => sink.server.close(r));
  }
});
