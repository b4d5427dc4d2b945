/**
 * maillog-subscriber.test.ts — the mail log as a subscriber of the event
 * stream: the TLS summary line and the certificate lines derived from a
 * session record (never carried as text), the `to=` line with its tls=
 * field, `removed`, and the programs the lines go under.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TlsSessionRecord } from '../../../src/delivery/outcome.ts';
import { EventBus } from '../../../src/reports/events.ts';
import { memoryMailLog } from '../../../src/reports/maillog.ts';
import { mailLogSubscriber } from '../../../src/reports/maillog-subscriber.ts';

const record = (over: Partial<TlsSessionRecord> = {}): TlsSessionRecord => ({
  time: 1_000,
  nexthop: 'example.com',
  policy: { source: 'table', type: 'no-policy-found', domain: 'example.com', strings: [], mxHostPatterns: [], level: 'verify', configuredLevel: 'verify' },
  server: { hostname: 'mx.example.com', address: '192.0.2.25', port: 25 },
  tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256, trust: 'Verified', reused: false, summaryExtra: ' key-exchange X25519' },
  result: { kind: 'success' },
  logLines: [],
  ...over,
});

function setup() {
  const log = memoryMailLog();
  const bus = new EventBus((err) => {
    throw err;
  });
  bus.subscribe(mailLogSubscriber({ log, resolutionLimit: () => 2 }));
  return { log, bus };
}

test('tls-session: certificate lines, then the summary line derived from the record, under the delivering program', () => {
  const { log, bus } = setup();
  const failed = record({
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256, trust: 'Trusted', reused: false },
    result: { kind: 'failure', type: 'certificate-host-mismatch', reason: 'Server certificate not verified', enforced: true },
    logLines: ['mx.example.com[192.0.2.25]:25: certificate name mismatch: CommonName other.example'],
  });
  bus.publish({ kind: 'tls-session', queueId: 'Q1', record: failed, program: 'sealpost/relay/smtp', tlsLogLevel: 1 });
  bus.publish({ kind: 'tls-session', queueId: 'Q1', record: record({ tls: { ...record().tls!, reused: true } }) });
  assert.deepEqual(log.lines, [
    'sealpost/relay/smtp: mx.example.com[192.0.2.25]:25: certificate name mismatch: CommonName other.example',
    'sealpost/relay/smtp: Trusted TLS connection established to mx.example.com[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)',
    'sealpost/smtp: Verified TLS connection reused to mx.example.com[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519',
  ]);
});

test('tls-session: no summary line below smtp_tls_loglevel 1, none without a handshake', () => {
  const { log, bus } = setup();
  bus.publish({ kind: 'tls-session', queueId: 'Q1', record: record(), program: 'sealpost/smtp', tlsLogLevel: 0 });
  const { tls: _tls, ...plain } = record();
  bus.publish({ kind: 'tls-session', queueId: 'Q1', record: { ...plain, result: { kind: 'plaintext', type: 'starttls-not-supported' } }, program: 'sealpost/smtp', tlsLogLevel: 1 });
  assert.deepEqual(log.lines, []);
});

test('outcome: the to= line with delays, tls= and dsn, under its program; removed: qmgr, except a postsuper deletion', () => {
  const { log, bus } = setup();
  bus.publish({
    kind: 'outcome', time: 3_500, queueId: 'Q1', transport: 'smtp', nexthop: 'example.com', recipient: 'bob@example.com', origRecipient: 'bob@example.com',
    status: 'sent', dsn: '2.0.0', reason: '250 2.0.0 Ok', relay: 'mx.example.com[192.0.2.25]:25', arrivalTime: 1_000,
    program: 'sealpost/smtp', activeTime: 1_500, timing: { started: 2_000, connected: 2_500, finished: 3_500 }, connUse: 2, tls: 'verify', session: record(),
  });
  bus.publish({ kind: 'removed', time: 4_000, queueId: 'Q1', reason: 'delivered' });
  bus.publish({ kind: 'removed', time: 4_000, queueId: 'Q2', reason: 'deleted' });
  assert.deepEqual(log.lines, [
    'sealpost/smtp: Q1: to=<bob@example.com>, relay=mx.example.com[192.0.2.25]:25, conn_use=2, delay=2.5, delays=0.5/0.5/0.5/1, tls=verify, dsn=2.0.0, status=sent (250 2.0.0 Ok)',
    'sealpost/qmgr: Q1: removed',
  ]);
});
