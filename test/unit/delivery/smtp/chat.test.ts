import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { ChatFailure, SmtpChat } from '../../../../src/delivery/smtp/chat.ts';

/** A stand-in socket: what the test emits as 'data' is what the server "sent". */
function fakeSocket(): Socket & { written: string[] } {
  const s = new PassThrough() as unknown as Socket & { written: string[] };
  s.written = [];
  (s as unknown as { write: (d: string | Buffer) => boolean }).write = (d) => {
    s.written.push(d.toString());
    return true;
  };
  return s;
}

test('replies arrive in order, split across chunks; a multi-line reply is one value', async () => {
  const s = fakeSocket();
  const chat = new SmtpChat(s);
  s.emit('data', Buffer.from('250-mx\r\n250 PIPE'));
  s.emit('data', Buffer.from('LINING\r\n354 go\r\n'));
  assert.equal((await chat.reply(100)).text(), '250-mx 250 PIPELINING');
  assert.equal((await chat.reply(100)).code, 354);
});

test('timeout and lost connection are ChatFailure values of their kind', async () => {
  const s = fakeSocket();
  const chat = new SmtpChat(s);
  await assert.rejects(chat.reply(30), (e: unknown) => e instanceof ChatFailure && e.kind === 'timeout');
  const s2 = fakeSocket();
  const chat2 = new SmtpChat(s2);
  const p = chat2.reply(1000);
  s2.emit('close');
  await assert.rejects(p, (e: unknown) => e instanceof ChatFailure && e.kind === 'lost');
  await assert.rejects(chat2.write('NOOP\r\n', 100), (e: unknown) => e instanceof ChatFailure);
});

test('a malformed reply poisons the session (protocol)', async () => {
  const s = fakeSocket();
  const chat = new SmtpChat(s);
  s.emit('data', Buffer.from('hello there\r\n'));
  await assert.rejects(chat.reply(100), (e: unknown) => e instanceof ChatFailure && e.kind === 'protocol');
});

test('RFC 3207 §6: detach() discards queued replies and partial input received before the handshake', async () => {
  const raw = fakeSocket();
  const chat = new SmtpChat(raw);
  raw.emit('data', Buffer.from('220 ready\r\n250 injected\r\n250-part'));
  assert.equal((await chat.reply(100)).code, 220);
  assert.equal(chat.idle, false);
  const handed = chat.detach();
  assert.equal(handed, raw);
  raw.emit('data', Buffer.from('ial\r\n')); // after detach: not ours any more
  const tls = fakeSocket();
  chat.upgrade(tls);
  tls.emit('data', Buffer.from('250 after tls\r\n'));
  assert.equal((await chat.reply(100)).text(), '250 after tls');
  assert.equal(chat.idle, true);
});

test('the transcript keeps commands and replies but never AUTH secrets', async () => {
  const s = fakeSocket();
  const chat = new SmtpChat(s);
  await chat.write('EHLO me\r\n', 100);
  await chat.write('AUTH PLAIN AHVzZXIAc2VjcmV0\r\n', 100, true);
  s.emit('data', Buffer.from('235 ok\r\n'));
  await chat.reply(100);
  assert.deepEqual(chat.transcript, ['C: EHLO me', 'C: (authentication data)', 'S: 235 ok']);
  assert.equal(s.written[1], 'AUTH PLAIN AHVzZXIAc2VjcmV0\r\n');
});

test('RFC 3207 §6: junk behind the 220 in the same read does not take the 220 away; detach() discards it', async () => {
  const raw = fakeSocket();
  const chat = new SmtpChat(raw);
  raw.emit('data', Buffer.from('220 2.0.0 Ready to start TLS\r\ngarbage\r\n'));
  assert.equal((await chat.reply(100)).code, 220);
  chat.detach();
  const tls = fakeSocket();
  chat.upgrade(tls);
  tls.emit('data', Buffer.from('250 after tls\r\n'));
  assert.equal((await chat.reply(100)).text(), '250 after tls');
  assert.equal(chat.idle, true);
});

test('a malformed line behind good replies fails the read after them, also when the connection then closes', async () => {
  const s = fakeSocket();
  const chat = new SmtpChat(s);
  s.emit('data', Buffer.from('250 one\r\n250 two\r\nnot a reply\r\n250 never\r\n'));
  assert.equal(chat.broken, true, 'broken: no further reply can be trusted');
  assert.equal((await chat.reply(100)).text(), '250 one');
  s.emit('close');
  assert.equal((await chat.reply(100)).text(), '250 two');
  await assert.rejects(chat.reply(100), (e: unknown) => e instanceof ChatFailure && e.kind === 'protocol' && /not a reply/.test(e.message));
});

test('a malformed line arriving while a read waits fails that read', async () => {
  const s = fakeSocket();
  const chat = new SmtpChat(s);
  const p = chat.reply(1000);
  s.emit('data', Buffer.from('junk\r\n'));
  await assert.rejects(p, (e: unknown) => e instanceof ChatFailure && e.kind === 'protocol');
});
