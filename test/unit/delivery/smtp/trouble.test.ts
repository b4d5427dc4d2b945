import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseReply, SmtpReply } from '../../../../src/smtp/reply.ts';
import {
  applySoftBounce, connectFailed, decide, errnoText, leftOver, noConnection, requireTlsTrouble, siteDeferral, softBounceVerdict, softDsn, hostSaid, refusedToTalk, saslFailed, sizeExceeded, smtputf8NotOffered, streamFailure, tlsTrouble,
} from '../../../../src/delivery/smtp/trouble.ts';
import * as trouble from '../../../../src/delivery/smtp/trouble.ts';

const server = { hostname: 'mx.example.com', address: '192.0.2.1', port: 25 };
const reply = (text: string): SmtpReply => {
  const r = parseReply(text);
  assert.ok(r instanceof SmtpReply);
  return r;
};

test('decide: soft errors move on to the next server, defer at the last; hard errors bounce anywhere', () => {
  const soft = connectFailed('mx', '192.0.2.1', 25, 'Connection refused');
  assert.deepEqual(decide(soft, false), { action: 'keep' });
  assert.deepEqual(decide(soft, true), { action: 'deferred', dsn: '4.4.1' });
  const hard = hostSaid(server, reply('550 5.1.1 no such user'), 'RCPT TO command', 'recipient');
  assert.deepEqual(decide(hard, false), { action: 'bounced', dsn: '5.1.1' });
  assert.deepEqual(decide(hard, true), { action: 'bounced', dsn: '5.1.1' });
});

test('decide: soft_bounce turns a bounce into a 4.x.x deferral', () => {
  const hard = hostSaid(server, reply('554 5.7.1 rejected'), 'MAIL FROM command', 'message');
  assert.deepEqual(softBounceVerdict(decide(hard, true), true), { action: 'deferred', dsn: '4.7.1' });
});

test('decide: a final trouble (TLS decision without nextHost) is never kept for the next server', () => {
  const t = tlsTrouble('mx[192.0.2.1]:25', { reason: 'x', dsn: '4.7.5', nextHost: false, throttle: false });
  assert.deepEqual(decide(t, false), { action: 'deferred', dsn: '4.7.5' });
  const n = tlsTrouble('mx[192.0.2.1]:25', { reason: 'x', dsn: '4.7.5', nextHost: true, throttle: true });
  assert.deepEqual(decide(n, false), { action: 'keep' });
  assert.equal(n.throttle, true);
});

test('Postfix texts: connect, lost connection, timeout', () => {
  assert.equal(connectFailed('mx.example.com', '192.0.2.1', 25, errnoText('ECONNREFUSED', 'x')).reason, 'connect to mx.example.com[192.0.2.1]:25: Connection refused');
  assert.equal(errnoText('ETIMEDOUT', 'x'), 'Connection timed out');
  assert.equal(errnoText('EWHATEVER', 'fallback'), 'fallback');
  const lost = streamFailure('lost', server, 'sending message body');
  assert.deepEqual([lost.reason, lost.dsn, lost.relay, lost.scope], ['lost connection with mx.example.com[192.0.2.1] while sending message body', '4.4.2', 'mx.example.com[192.0.2.1]:25', 'session']);
  assert.equal(streamFailure('timeout', server, 'receiving the initial server greeting').reason, 'conversation with mx.example.com[192.0.2.1] timed out while receiving the initial server greeting');
});

test('host said / refused to talk: the reply in Postfix log form, DSN from the enhanced code or the reply class', () => {
  const t = hostSaid(server, reply('550-5.1.1 first\r\n550 5.1.1 second'), 'RCPT TO command', 'recipient');
  assert.equal(t.reason, 'host mx.example.com[192.0.2.1] said: 550-5.1.1 first 550 5.1.1 second (in reply to RCPT TO command)');
  assert.equal(t.dsn, '5.1.1');
  assert.equal(hostSaid(server, reply('452 too many recipients'), 'RCPT TO command', 'recipient').dsn, '4.0.0');
  const r = refusedToTalk(server, reply('554 5.3.2 go away'), true);
  assert.equal(r.reason, 'host mx.example.com[192.0.2.1] refused to talk to me: 554 5.3.2 go away');
  assert.equal(r.dsn, '4.3.2'); // smtp_skip_5xx_greeting
  assert.equal(refusedToTalk(server, reply('554 5.3.2 go away'), false).dsn, '5.3.2');
});

test('size, SMTPUTF8 and SASL texts', () => {
  assert.equal(sizeExceeded(server, 2000, 1000).reason, 'message size 2000 exceeds size limit 1000 of server mx.example.com[192.0.2.1]');
  assert.equal(sizeExceeded(server, 2000, 1000).dsn, '5.3.4');
  assert.equal(smtputf8NotOffered(server).reason, 'SMTPUTF8 is required, but was not offered by host mx.example.com[192.0.2.1]');
  assert.equal(smtputf8NotOffered(server).dsn, '5.6.7');
  const s = saslFailed(server, reply('535 5.7.8 bad'), true);
  assert.deepEqual([s.dsn, s.reason], ['4.7.8', 'SASL authentication failed; server mx.example.com[192.0.2.1] said: 535 5.7.8 bad']);
  assert.equal(saslFailed(server, reply('535 5.7.8 bad'), false).dsn, '5.7.8');
});

test('a 2xx/3xx reply reported as a failure is a "Protocol error", 5.5.0 (smtp_trouble.c vsmtp_fill_dsn)', () => {
  const t = hostSaid(server, reply('354 go ahead'), 'MAIL FROM command', 'message');
  assert.deepEqual([t.dsn, t.reason], ['5.5.0', 'Protocol error: host mx.example.com[192.0.2.1] said: 354 go ahead (in reply to MAIL FROM command)']);
});

test('failVerdict: a soft error tries the next host; only soft errors throttle (smtp_bulk_fail)', () => {
  const { failVerdict } = trouble;
  assert.deepEqual(failVerdict('4.7.5', true), { nextHost: true, throttle: true });
  assert.deepEqual(failVerdict('4.7.5', false), { nextHost: true, throttle: false });
  assert.deepEqual(failVerdict('5.7.1', true), { nextHost: false, throttle: false });
});

test('soft_bounce: one 5.x.x → 4.x.x rewrite, applied to bounces only, text unchanged', () => {
  assert.equal(softDsn('5.1.1'), '4.1.1');
  assert.equal(softDsn('4.4.1'), '4.4.1');
  const bounced = { status: 'bounced' as const, dsn: '5.7.1', reason: 'no' };
  assert.deepEqual(applySoftBounce(bounced, true), { status: 'deferred', dsn: '4.7.1', reason: 'no' });
  assert.equal(applySoftBounce(bounced, false), bounced);
  const sent = { status: 'sent' as const, dsn: '2.0.0' };
  assert.equal(applySoftBounce(sent, true), sent);
  // Applying it twice changes nothing more (it is applied once, by the queue manager).
  assert.deepEqual(applySoftBounce(applySoftBounce(bounced, true), true), { status: 'deferred', dsn: '4.7.1', reason: 'no' });
});

test('leftOver: nothing tried → "server unavailable"; a relayhost/fallback lookup failure is 4.3.5 with a warning, never a bounce', () => {
  assert.deepEqual(leftOver(undefined, undefined, []).trouble.reason, 'server unavailable or unable to receive mail');
  const nx = noConnection('Host or domain name not found. Name service error for name=relay.example type=A: Host not found', '5.4.4');
  const thr = { ...nx, throttle: true };
  assert.deepEqual(leftOver(nx, { hop: '[relay.example]', fallback: false }, ['[relay.example]']), { trouble: { ...thr, dsn: '4.3.5' }, warning: 'relayhost configuration problem' });
  assert.deepEqual(leftOver(nx, { hop: '[backup.example]', fallback: true }, []), { trouble: { ...thr, dsn: '4.3.5' }, warning: 'smtp_fallback_relay configuration problem' });
  // An MX destination that does not exist bounces.
  assert.deepEqual(leftOver(nx, { hop: 'nosuch.example', fallback: false }, ['[relay.example]']), { trouble: thr });
});

test('leftOver throttles the destination, as smtp_connect.c smtp_sess_fail() does: an invalid TLS policy, a lookup failure, nothing tried', () => {
  for (const last of [noConnection('client TLS configuration problem', '4.7.5'), noConnection('no TLSA records found', '4.7.5'), noConnection('Host or domain name not found. Name service error for name=x.example type=MX: Host not found, try again', '4.4.3'), undefined]) {
    const left = leftOver(last, undefined, []).trouble;
    assert.equal(left.throttle, true, left.reason);
    assert.equal(decide(left, true).action, 'deferred');
    assert.deepEqual(siteDeferral(left, [{ status: 'deferred', dsn: left.dsn }], false), { reason: left.reason, dsn: left.dsn });
  }
});

test('siteDeferral: only when a throttling failure deferred and nothing got through (soft_bounce counts bounces as deferrals)', () => {
  const t = connectFailed('mx', '192.0.2.1', 25, 'Connection refused');
  const deferred = { status: 'deferred' as const, dsn: '4.4.1' };
  const bounced = { status: 'bounced' as const, dsn: '5.1.1' };
  assert.deepEqual(siteDeferral(t, [deferred], false), { reason: t.reason, dsn: '4.4.1' });
  assert.equal(siteDeferral(undefined, [deferred], false), undefined);
  assert.equal(siteDeferral(t, [deferred, bounced], false), undefined);
  assert.deepEqual(siteDeferral(t, [deferred, bounced], true), { reason: t.reason, dsn: '4.4.1' });
});

test('decide: a REQUIRETLS failure (SMTP_MISC_FAIL_SOFT_NON_FINAL) tries the next server, bounces at the last, never throttles', () => {
  const t = requireTlsTrouble('mx[192.0.2.1]:25', { dsn: '5.7.30', text: 'Sender requested REQUIRETLS, but ...', nextMx: true }, 'mx');
  assert.deepEqual(decide(t, false), { action: 'keep' });
  assert.deepEqual(decide(t, true), { action: 'bounced', dsn: '5.7.30' });
  assert.deepEqual([t.throttle, t.scope, t.remoteMta], [false, 'site', 'mx']);
  // soft_bounce still applies at the end (the queue manager's one rewrite).
  assert.deepEqual(softBounceVerdict(decide(t, true), true), { action: 'deferred', dsn: '4.7.30' });
  // A policy configuration error (4.7.10, nextMx false) defers at once.
  const e = requireTlsTrouble('none', { dsn: '4.7.10', text: 'REQUIRETLS policy configuration error. The last attempted server was mx', nextMx: false });
  assert.deepEqual(decide(e, false), { action: 'deferred', dsn: '4.7.10' });
});
