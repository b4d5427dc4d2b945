import assert from 'node:assert/strict';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventBus } from '../../../src/reports/events.ts';
import { DestinationLabels, SealpostMetrics, protocolLabel } from '../../../src/reports/metrics.ts';
import { SpoolQueueGauge } from '../../../src/reports/queue-gauge.ts';
import { tempDir } from '../../harness/cli.ts';
import { publishMessage } from '../../harness/delivery-events.ts';
import { parseSamples, promtoolCheck, sampleValue } from '../../harness/promtool.ts';

const T0 = Date.UTC(2026, 11, 4, 10, 0, 0);

function run(metrics: SealpostMetrics): EventBus {
  const bus = new EventBus();
  bus.subscribe(metrics.subscriber);
  // A DANE-verified delivery of two recipients, an MTA-STS one, an opportunistic untrusted one,
  // a table "secure" deferral (certificate not trusted), a plaintext one and a bounce.
  publishMessage(bus, { queueId: 'A1', arrival: T0, groups: [{ session: { domain: 'bank.example', time: T0 + 1500, source: 'dane', trust: 'Verified' }, recipients: ['a@bank.example', 'b@bank.example'], status: 'sent' }] });
  publishMessage(bus, { queueId: 'A2', arrival: T0, groups: [{ session: { domain: 'sts.example', time: T0 + 40_000, source: 'mta-sts', trust: 'Verified' }, recipients: ['c@sts.example'], status: 'sent' }] });
  publishMessage(bus, { queueId: 'A3', arrival: T0, groups: [{ session: { domain: 'opp.example', time: T0 + 200, trust: 'Untrusted', protocol: 'TLSv1.2' }, recipients: ['d@opp.example'], status: 'sent' }] });
  publishMessage(bus, {
    queueId: 'A4',
    arrival: T0,
    groups: [{ session: { domain: 'partner.example', time: T0 + 300, source: 'table', level: 'secure', failure: { type: 'certificate-not-trusted', reason: 'Server certificate not verified' } }, recipients: ['e@partner.example'], status: 'deferred' }],
  });
  publishMessage(bus, { queueId: 'A4', arrival: T0, removed: false, groups: [{ session: { domain: 'partner.example', time: T0 + 600_000, source: 'table', level: 'secure', failure: { type: 'certificate-not-trusted', reason: 'Server certificate not verified' } }, recipients: ['e@partner.example'], status: 'deferred' }] });
  publishMessage(bus, { queueId: 'A5', arrival: T0, groups: [{ session: { domain: 'plain.example', time: T0 + 100, plaintext: true }, recipients: ['f@plain.example'], status: 'sent' }] });
  publishMessage(bus, { queueId: 'A6', arrival: T0, groups: [{ session: { domain: 'gone.example', time: T0 + 100, trust: 'Trusted', reused: true }, recipients: ['g@gone.example'], status: 'bounced' }] });
  // A plaintext session on a cached connection: only its outcomes' conn_use=2 says so.
  publishMessage(bus, { queueId: 'A7', arrival: T0, groups: [{ session: { domain: 'plain.example', time: T0 + 100, plaintext: true }, recipients: ['h@plain.example', 'i@plain.example'], status: 'sent', connUse: 2 }] });
  return bus;
}

test('delivery events feed the counters the issue lists, and the text passes promtool check metrics', async () => {
  const metrics = new SealpostMetrics({ version: '0.1.0' });
  run(metrics);
  const text = await metrics.text();
  const s = parseSamples(text);
  // A4 was published twice (one message, two deferrals): received counts both publications.
  assert.equal(sampleValue(s, 'sealpost_messages_received_total'), 8);
  assert.equal(sampleValue(s, 'sealpost_messages_delivered_total'), 5); // A1 A2 A3 A5 A7 (A6 bounced, A4 waits)
  assert.equal(sampleValue(s, 'sealpost_messages_deferred_total'), 1); // A4 once, however many attempts
  assert.equal(sampleValue(s, 'sealpost_messages_bounced_total'), 1);
  assert.equal(sampleValue(s, 'sealpost_recipients_total', { status: 'sent', transport: 'smtp' }), 7);
  assert.equal(sampleValue(s, 'sealpost_recipients_total', { status: 'deferred' }), 2);
  assert.equal(sampleValue(s, 'sealpost_recipients_total', { status: 'bounced' }), 1);
  assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'verified' }), 2);
  assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'verified', policy_source: 'dane', level: 'dane', protocol: 'TLSv1.3', result: 'success' }), 1);
  assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'untrusted', protocol: 'TLSv1.2' }), 1);
  assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'none', result: 'plaintext' }), 2);
  assert.equal(sampleValue(s, 'sealpost_tls_failures_total', { result_type: 'certificate-not-trusted', enforced: 'yes' }), 2);
  // Latency: seven sent recipients; 1.5 s, 1.5 s, 40 s, 0.2 s, 0.1 s, 0.1 s, 0.1 s.
  assert.equal(sampleValue(s, 'sealpost_delivery_latency_seconds_count'), 7);
  assert.equal(sampleValue(s, 'sealpost_delivery_latency_seconds_bucket', { le: '2.5' }), 6);
  assert.equal(sampleValue(s, 'sealpost_delivery_latency_seconds_bucket', { le: '60' }), 7);
  // Every session connected except the two on cached connections (TLS reused; plaintext conn_use=2).
  assert.equal(sampleValue(s, 'sealpost_smtp_connections_out_total'), 6);
  assert.equal(sampleValue(s, 'sealpost_build_info', { version: '0.1.0' }), 1);
  assert.ok(/^process_cpu_user_seconds_total /m.test(text), 'default process metrics are there');
  const check = promtoolCheck(text);
  assert.equal(check.code, 0, check.output);
});

test('no label holds a recipient; destinations beyond the listed and the limit count as "other"', async () => {
  const metrics = new SealpostMetrics({ destinations: ['partner.example', '.bank.example'], destinationLimit: 1, defaultMetrics: false });
  run(metrics);
  const bus = new EventBus();
  bus.subscribe(metrics.subscriber);
  publishMessage(bus, { queueId: 'B1', arrival: T0, groups: [{ session: { domain: 'mx1.bank.example', time: T0, source: 'dane', trust: 'Verified' }, recipients: ['h@mx1.bank.example'], status: 'sent' }] });
  const text = await metrics.text();
  assert.ok(!text.includes('@'), 'no address in any label');
  const dest = new Set(parseSamples(text).filter((x) => x.name === 'sealpost_destination_recipients_total').map((x) => x.labels.destination));
  // bank.example was first (the one free label), partner.example is listed, .bank.example covers mx1.bank.example.
  assert.deepEqual([...dest].sort(), ['bank.example', 'mx1.bank.example', 'other', 'partner.example']);
  assert.equal(sampleValue(parseSamples(text), 'sealpost_destination_recipients_total', { destination: 'other' }), 6);
});

test('DestinationLabels and protocolLabel keep label values in closed sets', () => {
  const l = new DestinationLabels([], 2);
  assert.equal(l.label('a.example'), 'a.example');
  assert.equal(l.label('b.example'), 'b.example');
  assert.equal(l.label('c.example'), 'other');
  assert.equal(l.label('a.example'), 'a.example');
  assert.equal(l.label('bad label"}'), 'other');
  assert.equal(protocolLabel('TLSv1.3'), 'TLSv1.3');
  assert.equal(protocolLabel('TLSv9 evil'), 'other');
  assert.equal(protocolLabel(undefined), 'none');
});

test('hooks count DNS lookups, MTA-STS cache and fetches, TLS-RPT reports and inbound connections', async () => {
  const metrics = new SealpostMetrics({ defaultMetrics: false });
  const h = metrics.hooks;
  h.dns.lookup('MX', 'ok', 0.004);
  h.dns.lookup('TLSA', 'timeout', 5);
  h.mtaSts.cacheLookup('hit');
  h.mtaSts.cacheLookup('miss');
  h.mtaSts.policyFetch('ok', 0.3);
  h.mtaSts.cachedPolicies(7);
  h.tlsRpt.reportGenerated();
  h.tlsRpt.reportDelivered('mailto', true);
  h.tlsRpt.reportDelivered('https', false);
  h.smtpd.connectionOpened('smtp');
  const closed = h.smtpd.connectionOpened('smtp');
  closed();
  closed(); // a second report of the same close changes nothing
  const text = await metrics.text();
  const s = parseSamples(text);
  assert.equal(sampleValue(s, 'sealpost_dns_lookups_total', { type: 'MX', result: 'ok' }), 1);
  assert.equal(sampleValue(s, 'sealpost_dns_lookup_duration_seconds_bucket', { type: 'MX', le: '0.005' }), 1);
  assert.equal(sampleValue(s, 'sealpost_dns_lookup_duration_seconds_bucket', { type: 'TLSA', le: '2.5' }), 0);
  assert.equal(sampleValue(s, 'sealpost_mta_sts_cache_lookups_total', { result: 'miss' }), 1);
  assert.equal(sampleValue(s, 'sealpost_mta_sts_cached_policies'), 7);
  assert.equal(sampleValue(s, 'sealpost_tlsrpt_reports_delivered_total', { method: 'https', result: 'error' }), 1);
  assert.equal(sampleValue(s, 'sealpost_smtp_connections_in_total', { service: 'smtp' }), 2);
  assert.equal(sampleValue(s, 'sealpost_smtp_connections_in_open', { service: 'smtp' }), 1);
  assert.equal(promtoolCheck(text).code, 0, promtoolCheck(text).output);
});

test('the queue gauge counts files per queue (not tmp.*) and ages the oldest by its creation time', async () => {
  const t = tempDir();
  try {
    for (const q of ['maildrop', 'incoming', 'active', 'deferred', 'hold']) mkdirSync(join(t.dir, q));
    for (const id of ['A1', 'A2', 'A3']) writeFileSync(join(t.dir, 'deferred', id), 'x');
    writeFileSync(join(t.dir, 'deferred', 'tmp.1.1'), 'x');
    writeFileSync(join(t.dir, 'hold', 'B1'), 'x');
    // A deferred file's mtime is its next attempt (in the future): the age must not come from it.
    utimesSync(join(t.dir, 'deferred', 'A1'), new Date(Date.now() + 3600_000), new Date(Date.now() + 3600_000));
    const now = Date.now() + 90_000;
    const metrics = new SealpostMetrics({ queueGauge: new SpoolQueueGauge(t.dir, { now: () => now }), now: () => now, defaultMetrics: false });
    const s = parseSamples(await metrics.text());
    assert.equal(sampleValue(s, 'sealpost_queue_messages', { queue: 'deferred' }), 3);
    assert.equal(sampleValue(s, 'sealpost_queue_messages', { queue: 'hold' }), 1);
    assert.equal(sampleValue(s, 'sealpost_queue_messages', { queue: 'incoming' }), 0);
    const age = sampleValue(s, 'sealpost_queue_oldest_message_age_seconds', { queue: 'deferred' });
    assert.ok(age >= 89 && age < 120, `oldest deferred age ${age}`);
    assert.equal(sampleValue(s, 'sealpost_queue_oldest_message_age_seconds', { queue: 'incoming' }), 0);
  } finally {
    t.cleanup();
  }
});

test('the queue gauge over a big queue (times read in bulk by a worker thread): the same counts and ages', async () => {
  const t = tempDir();
  try {
    for (const q of ['maildrop', 'incoming', 'active', 'deferred', 'hold']) mkdirSync(join(t.dir, q));
    for (let i = 0; i < 1_200; i++) writeFileSync(join(t.dir, 'deferred', `D${i}`), 'x');
    // Next attempts in the future: never the age of a deferred file.
    for (let i = 0; i < 1_200; i += 7) utimesSync(join(t.dir, 'deferred', `D${i}`), new Date(Date.now() + 3600_000), new Date(Date.now() + 3600_000));
    const now = Date.now() + 90_000;
    const gauge = new SpoolQueueGauge(t.dir, { now: () => now });
    const figures = await gauge.read();
    assert.equal(figures.deferred.messages, 1_200);
    const age = (now - figures.deferred.oldest!) / 1000;
    assert.ok(age >= 89 && age < 120, `oldest deferred age ${age}`);
    assert.equal(figures.hold.messages, 0);
  } finally {
    t.cleanup();
  }
});
