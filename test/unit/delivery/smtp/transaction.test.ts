import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { parseEhlo } from '../../../../src/smtp/ehlo.ts';
import { SmtpChat } from '../../../../src/delivery/smtp/chat.ts';
import { buildCommands, runTransaction, type MessageContent } from '../../../../src/delivery/smtp/transaction.ts';
import type { MessageSource } from '../../../../src/delivery/smtp/content.ts';
import type { Session, Timeouts } from '../../../../src/delivery/smtp/session.ts';
import type { DeliveryRequest } from '../../../../src/delivery/types.ts';
import type { ConnectPolicy } from '../../../../src/delivery/tls/types.ts';
import { fixtureApplied } from '../../../harness/policy.ts';

const request = (over: Partial<DeliveryRequest> = {}): DeliveryRequest => ({
  queueId: 'ABC', queueFile: '/nonexistent', sender: 'a@example.org',
  recipients: [
    { index: 0, address: 'x@example.com', origAddress: 'x@example.com' },
    { index: 1, address: 'y@example.com', origAddress: 'y@example.com' },
  ],
  smtputf8: false, eightBitMime: false, requireTls: false, tlsRequiredNo: false, messageSize: 100,
  arrivalTime: 0, activeTime: 0, transport: 'smtp', nexthops: ['example.com'], fallbackRelays: [], ...over,
});

const SETTINGS = { lineLimit: 998, disableMimeOutputConversion: false, mime: {} };

/** Content held in memory, read in pieces of `piece` octets (the queue file's part is content.test.ts's). */
function memContent(text: string | Buffer, piece = 65536): MessageContent {
  const buf = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const source: MessageSource = {
    async *chunks() {
      for (let i = 0; i < buf.length; i += piece) yield buf.subarray(i, i + piece);
    },
    headersNeedUtf8: async () => false,
  };
  return { source, headersNeedUtf8: false, settings: SETTINGS };
}

const T: Timeouts = { connect: 2000, helo: 2000, mail: 2000, rcpt: 2000, dataInit: 2000, dataXfer: 2000, dataDone: 2000, quit: 2000, starttls: 2000, rset: 2000 };
const POLICY: ConnectPolicy = { level: 'none', nexthop: 'example.com', nexthopDomain: 'example.com', match: [], ciphers: '', trustAnchorFiles: [], connectionReuse: false, source: 'test', tlsRequiredNo: false, applied: fixtureApplied('none') };

test('buildCommands: parameters only for what the server offers', () => {
  const full = parseEhlo(['mx', 'SIZE 1000', '8BITMIME', 'DSN', 'SMTPUTF8', 'REQUIRETLS']);
  const req = request({ eightBitMime: true, smtputf8: true, ret: 'FULL', envid: 'id 1', requireTls: true });
  const c = buildCommands(req, [{ index: 0, address: 'x@example.com', origAddress: 'o@example.com', notify: ['DELAY'] }], full, true, { send: true });
  assert.equal(c.mail, 'MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8 REQUIRETLS RET=FULL ENVID=id+201');
  assert.deepEqual(c.rcpts, ['RCPT TO:<x@example.com> NOTIFY=DELAY ORCPT=rfc822;o@example.com']);
  // REQUIRETLS never outside TLS, and only when the session decided to send it (requiretls.ts afterTlsEhlo).
  assert.doesNotMatch(buildCommands(req, [], full, false, { send: true }).mail, /REQUIRETLS/);
  assert.doesNotMatch(buildCommands(req, [], full, true).mail, /REQUIRETLS/, 'REQUIRETLS not active for this next hop (disable)');
  // smtp_proto.c (20250825): REQUIRETLS active but not sent (opportunistic) → RET=HDRS, whatever the sender asked.
  assert.equal(buildCommands(req, [], full, true, { send: false }).mail, 'MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=id+201');
  assert.equal(buildCommands(request({ requireTls: true }), [], full, true, { send: false }).mail, 'MAIL FROM:<a@example.org> SIZE=100 RET=HDRS');
  const bare = buildCommands(req, [{ index: 0, address: 'x@example.com', origAddress: 'o@example.com', notify: ['DELAY'] }], parseEhlo(['mx']), true);
  assert.equal(bare.mail, 'MAIL FROM:<a@example.org>');
  assert.deepEqual(bare.rcpts, ['RCPT TO:<x@example.com>']);
  assert.equal(buildCommands(request({ sender: '' }), [], parseEhlo(['mx']), false).mail, 'MAIL FROM:<>');
});

/** A server that answers nothing until it has seen `until`, then all replies at once. */
async function holdingServer(until: string, replies: string): Promise<{ port: number; received: () => string; close: () => Promise<void> }> {
  let got = '';
  const socks: Socket[] = [];
  const server = createServer((s) => {
    socks.push(s);
    let answered = false;
    s.on('data', (c) => {
      got += c.toString('latin1');
      if (!answered && got.includes(until)) {
        answered = true;
        s.write(replies);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => got,
    close: () => new Promise((r) => {
      for (const s of socks) s.destroy();
      server.close(() => r());
    }),
  };
}

async function sessionTo(port: number, ehlo: string[]): Promise<Session> {
  const socket = await new Promise<Socket>((r) => {
    const s = connect(port, '127.0.0.1', () => r(s));
  });
  return {
    chat: new SmtpChat(socket), server: { hostname: 'mx', address: '127.0.0.1', port, nexthop: 'example.com', mxAuthenticated: false },
    relay: `mx[127.0.0.1]:${port}`, caps: parseEhlo(ehlo), policy: POLICY, tlsUsed: false, tls: { result: { kind: 'plaintext' }, logLines: [] }, authenticated: false, createdAt: 0, useCount: 0,
  };
}

test('RFC 2920: with PIPELINING, MAIL + RCPTs + DATA leave in one group before any reply; replies matched in order', async () => {
  const srv = await holdingServer('DATA\r\n', '250 2.1.0 Ok\r\n550 5.1.1 no x\r\n250 2.1.5 Ok\r\n354 go\r\n');
  const session = await sessionTo(srv.port, ['mx', 'PIPELINING']);
  try {
    const content = memContent('Subject: x\r\n\r\nhi\r\n');
    const pending = runTransaction(session, request(), request().recipients, content, T, Date.now);
    // Let the body go out, then answer the final dot.
    for (let i = 0; i < 200 && !srv.received().endsWith('\r\n.\r\n'); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(srv.received(), 'MAIL FROM:<a@example.org>\r\nRCPT TO:<x@example.com>\r\nRCPT TO:<y@example.com>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n');
    (session.chat.current as Socket).emit('data', Buffer.from('250 2.0.0 Ok: queued as Q\r\n'));
    const r = await pending;
    const x = r.results.get(0);
    const y = r.results.get(1);
    assert.ok(x?.kind === 'trouble' && y?.kind === 'sent');
    assert.equal(x.trouble.reason, 'host mx[127.0.0.1] said: 550 5.1.1 no x (in reply to RCPT TO command)');
    assert.equal(y.reply.text(), '250 2.0.0 Ok: queued as Q');
    assert.equal(r.reusable, true);
  } finally {
    session.chat.destroy();
    await srv.close();
  }
});

test('without PIPELINING the client sends MAIL alone and waits (a holding server never sees RCPT)', async () => {
  const srv = await holdingServer('RCPT', '250 Ok\r\n');
  const session = await sessionTo(srv.port, ['mx']);
  try {
    const content = memContent('x\r\n');
    const r = await runTransaction(session, request(), request().recipients, content, { ...T, mail: 300 }, Date.now);
    assert.equal(srv.received(), 'MAIL FROM:<a@example.org>\r\n');
    assert.equal(r.sessionTrouble?.reason, 'conversation with mx[127.0.0.1] timed out while sending MAIL FROM');
    assert.equal(r.reusable, false);
  } finally {
    await srv.close();
  }
});

test('every recipient rejected: DATA 554 is not sent a body, RSET restores the session', async () => {
  const srv = await holdingServer('DATA\r\n', '250 Ok\r\n550 5.1.1 a\r\n550 5.1.1 b\r\n554 5.5.1 no valid recipients\r\n');
  const session = await sessionTo(srv.port, ['mx', 'PIPELINING']);
  try {
    const content = memContent('x\r\n');
    const pending = runTransaction(session, request(), request().recipients, content, T, Date.now);
    await new Promise((r) => setTimeout(r, 100));
    assert.ok(srv.received().endsWith('DATA\r\nRSET\r\n'), srv.received());
    (session.chat.current as Socket).emit('data', Buffer.from('250 2.0.0 Ok\r\n'));
    const r = await pending;
    assert.equal(r.results.size, 2);
    assert.equal(r.reusable, true);
  } finally {
    session.chat.destroy();
    await srv.close();
  }
});

/** A server that accepts everything and keeps the raw DATA bytes; `stall` stops reading after 354. */
async function dataServer(opts: { stall?: boolean } = {}): Promise<{ port: number; commands: string[]; data: () => Buffer; closed: () => boolean; close: () => Promise<void> }> {
  const commands: string[] = [];
  let data = Buffer.alloc(0);
  let closed = false;
  const socks: Socket[] = [];
  const server = createServer((s) => {
    socks.push(s);
    let buf = Buffer.alloc(0);
    let inData = false;
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        if (inData) {
          data = Buffer.concat([data, buf]);
          buf = Buffer.alloc(0);
          if (data.includes('\r\n.\r\n') || data.subarray(0, 3).equals(Buffer.from('.\r\n'))) {
            inData = false;
            s.write('250 2.0.0 Ok: queued as D\r\n');
          }
          return;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1');
        buf = buf.subarray(nl + 2);
        commands.push(line);
        if (line === 'DATA') {
          inData = true;
          s.write('354 go\r\n');
          if (opts.stall) s.pause();
        } else s.write('250 Ok\r\n');
      }
    });
    s.on('close', () => (closed = true));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    commands,
    data: () => data,
    closed: () => closed,
    close: () => new Promise((r) => {
      for (const s of socks) s.destroy();
      server.close(() => r());
    }),
  };
}

const EIGHT_BIT = Buffer.from(
  'Subject: caf\u00e9\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\u00e9 cr\u00e8me\r\n', 'utf8');

test('MIME downgrade: to a server without 8BITMIME, no SIZE= and no BODY=, the 8bit body goes out as quoted-printable', async () => {
  const srv = await dataServer();
  const session = await sessionTo(srv.port, ['mx', 'SIZE 100000']);
  try {
    const r = await runTransaction(session, request({ eightBitMime: true }), request().recipients, memContent(EIGHT_BIT), T, Date.now);
    assert.equal(r.results.get(0)?.kind, 'sent');
    assert.equal(srv.commands[0], 'MAIL FROM:<a@example.org>');
    const wire = srv.data().toString('latin1');
    assert.match(wire, /Content-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9 cr=C3=A8me\r\n\.\r\n$/);
    assert.equal(/[\x80-\xff]/.test(wire.slice(wire.indexOf('\r\n\r\n'))), false);
  } finally {
    session.chat.destroy();
    await srv.close();
  }
});

test('no downgrade with 8BITMIME, with SMTPUTF8 alone (smtp_proto.c), or with disable_mime_output_conversion = yes', async () => {
  const cases: Array<[string[], boolean, string]> = [
    [['mx', '8BITMIME', 'SIZE'], false, 'MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME'],
    [['mx', 'SMTPUTF8', 'SIZE'], false, 'MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME'],
    [['mx', 'SIZE'], true, 'MAIL FROM:<a@example.org> SIZE=100'],
  ];
  for (const [ehlo, disable, mail] of cases) {
    const srv = await dataServer();
    const session = await sessionTo(srv.port, ehlo);
    try {
      const content = { ...memContent(EIGHT_BIT), settings: { ...SETTINGS, disableMimeOutputConversion: disable } };
      const r = await runTransaction(session, request({ eightBitMime: true }), request().recipients, content, T, Date.now);
      assert.equal(r.results.get(0)?.kind, 'sent');
      assert.equal(srv.commands[0], mail);
      assert.ok(srv.data().equals(Buffer.concat([EIGHT_BIT, Buffer.from('.\r\n')])), ehlo.join(' '));
    } finally {
      session.chat.destroy();
      await srv.close();
    }
  }
});

test('backpressure: while the server does not read, the content is not read ahead', async () => {
  const srv = await dataServer({ stall: true });
  const session = await sessionTo(srv.port, ['mx', '8BITMIME']);
  let taken = 0;
  const piece = Buffer.alloc(65536, 0x61);
  const line = Buffer.from('\r\n');
  const content: MessageContent = {
    source: {
      async *chunks() {
        for (let i = 0; i < 1024; i++) { // 64 MiB
          taken++;
          yield i % 8 === 7 ? line : piece;
        }
      },
      headersNeedUtf8: async () => false,
    },
    headersNeedUtf8: false,
    settings: { ...SETTINGS, lineLimit: 0 },
  };
  try {
    const pending = runTransaction(session, request(), request().recipients, content, { ...T, dataXfer: 1500 }, Date.now);
    await new Promise((r) => setTimeout(r, 800));
    // The kernel's socket buffers hold a few MiB at most; a reader that ignored drain would have taken all.
    assert.ok(taken < 400, `${taken} pieces read while the server stalled`);
    const r = await pending;
    assert.equal(r.sessionTrouble?.reason, `conversation with mx[127.0.0.1] timed out while sending message body`);
  } finally {
    session.chat.destroy();
    await srv.close();
  }
});

test('a queue file that cannot be read during DATA: no final dot, the connection is dropped, 4.3.0 for the recipients', async () => {
  const srv = await dataServer();
  const session = await sessionTo(srv.port, ['mx']);
  const content: MessageContent = {
    source: {
      async *chunks() {
        yield Buffer.from('Subject: x\r\n\r\nfirst part\r\n.\r\n');
        throw new Error('content checksum mismatch');
      },
      headersNeedUtf8: async () => false,
    },
    headersNeedUtf8: false,
    settings: SETTINGS,
  };
  try {
    const r = await runTransaction(session, request(), request().recipients, content, T, Date.now);
    const x = r.results.get(0);
    assert.ok(x?.kind === 'trouble');
    assert.equal(x.trouble.dsn, '4.3.0');
    assert.equal(x.trouble.reason, 'unreadable mail queue entry: content checksum mismatch');
    assert.equal(r.reusable, false);
    for (let i = 0; i < 50 && !srv.closed(); i++) await new Promise((res) => setTimeout(res, 10));
    assert.equal(srv.closed(), true);
    // The receiver saw the (stuffed) first piece and never an end of data.
    assert.equal(srv.data().toString(), 'Subject: x\r\n\r\nfirst part\r\n..\r\n');
  } finally {
    session.chat.destroy();
    await srv.close();
  }
});
