import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { parseEhlo } from '../../../../src/smtp/ehlo.ts';
import { dotStuff } from '../../../../src/smtp/dot-stuff.ts';
import { SmtpChat } from '../../../../src/delivery/smtp/chat.ts';
import { buildCommands, runTransaction } from '../../../../src/delivery/smtp/transaction.ts';
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
    const content = { stuffed: dotStuff(Buffer.from('Subject: x\r\n\r\nhi\r\n')), headersNeedUtf8: false };
    const pending = runTransaction(session, request(), request().recipients, content, T, Date.now);
    // Let the body go out, then answer the final dot.
    await new Promise((r) => setTimeout(r, 100));
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
    const content = { stuffed: dotStuff(Buffer.from('x\r\n')), headersNeedUtf8: false };
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
    const content = { stuffed: dotStuff(Buffer.from('x\r\n')), headersNeedUtf8: false };
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
