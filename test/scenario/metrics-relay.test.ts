/**
 * metrics-relay.test.ts — the Prometheus endpoint of a running daemon,
 * scraped during and after a real relay run of 30 messages: 12 to a TLS
 * receiver verified through a `secure` policy-table entry, 10 to a
 * plaintext receiver, 8 deferred by their receiver. The counters match what
 * the test sent and what the receivers and the DNS server saw (received 30,
 * delivered 22, verified TLS 12, deferred 8, one DNS lookup counted per
 * query the DNS server answered, one outbound connection per connection the
 * receivers accepted, one inbound connection per submission), counters
 * never go down between scrapes, and every scrape passes `promtool check
 * metrics`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSamples, promtoolCheck, sampleValue, type Sample } from '../harness/promtool.ts';
import { observeLab, submitPlan, waitOutcomes } from './observe-lab.ts';

const PLAN = { secure: 12, plain: 10, defer: 8 };
const TOTAL = PLAN.secure + PLAN.plain + PLAN.defer;

function checked(text: string): Sample[] {
  const r = promtoolCheck(text);
  assert.equal(r.code, 0, `promtool check metrics: ${r.output}`);
  return parseSamples(text);
}

/** Counters (`_total`, histogram `_count`/`_sum`/`_bucket`) of `after` are never below those of `before`. */
function assertMonotonic(before: readonly Sample[], after: readonly Sample[]): void {
  const key = (s: Sample) => `${s.name}${JSON.stringify(s.labels)}`;
  const later = new Map(after.map((s) => [key(s), s.value]));
  for (const s of before) {
    if (!/^sealpost_.*(_total|_count|_sum|_bucket)$/.test(s.name)) continue;
    assert.ok((later.get(key(s)) ?? 0) >= s.value, `${key(s)} went down`);
  }
}

test('a scrape during and after a relay run of 30 messages: the counters match what was sent and seen', { timeout: 180_000 }, async () => {
  const o = await observeLab();
  try {
    await o.lab.start();
    // Nothing happened yet: the endpoint answers, passes promtool, counts nothing.
    const first = checked(await o.metrics());
    assert.equal(sampleValue(first, 'sealpost_messages_received_total'), 0);
    let during: Sample[] = [];
    await submitPlan(o.lab, PLAN, async (n) => {
      if (n === TOTAL / 2) during = checked(await o.metrics());
    });
    assert.ok(sampleValue(during, 'sealpost_messages_received_total', { origin: 'smtpd' }) >= TOTAL / 2);
    await waitOutcomes(o.lab, PLAN);
    // The last deferred message reaches deferred/ just after its log line.
    for (let i = 0; i < 200 && o.lab.spool.list('deferred').length < PLAN.defer; i++) await new Promise((r) => setTimeout(r, 25));
    let s = checked(await o.metrics());
    // The submitting client's connections are closed by now; wait for the server side to notice.
    for (let i = 0; i < 200 && sampleValue(s, 'sealpost_smtp_connections_in_open') > 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      s = checked(await o.metrics());
    }
    assertMonotonic(first, during);
    assertMonotonic(during, s);

    // Mail flow.
    assert.equal(sampleValue(s, 'sealpost_messages_received_total', { origin: 'smtpd' }), TOTAL);
    assert.equal(sampleValue(s, 'sealpost_messages_received_total'), TOTAL);
    assert.equal(sampleValue(s, 'sealpost_messages_delivered_total'), PLAN.secure + PLAN.plain);
    assert.equal(sampleValue(s, 'sealpost_messages_deferred_total'), PLAN.defer);
    assert.equal(sampleValue(s, 'sealpost_messages_bounced_total'), 0);
    assert.equal(sampleValue(s, 'sealpost_messages_removed_total', { reason: 'delivered' }), PLAN.secure + PLAN.plain);
    assert.equal(sampleValue(s, 'sealpost_recipients_total', { status: 'sent', transport: 'smtp' }), PLAN.secure + PLAN.plain);
    assert.equal(sampleValue(s, 'sealpost_recipients_total', { status: 'deferred', transport: 'smtp' }), PLAN.defer);
    assert.equal(sampleValue(s, 'sealpost_delivery_latency_seconds_count', { transport: 'smtp' }), PLAN.secure + PLAN.plain);
    assert.equal(o.secure.messages.length, PLAN.secure);
    assert.equal(o.plain.messages.length, PLAN.plain);
    assert.equal(o.defer.messages.length, 0);

    // TLS: every message to secure.test went over verified TLS under the table entry; plain.test in plaintext.
    assert.ok(o.secure.messages.every((m) => m.tls));
    assert.ok(o.plain.messages.every((m) => !m.tls));
    assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'verified', policy_source: 'table', level: 'secure', result: 'success' }), PLAN.secure);
    assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'verified' }), PLAN.secure);
    assert.equal(sampleValue(s, 'sealpost_destination_tls_sessions_total', { destination: 'secure.test', trust: 'verified' }), PLAN.secure);
    assert.equal(sampleValue(s, 'sealpost_destination_tls_sessions_total', { destination: 'plain.test', trust: 'none' }), PLAN.plain);
    assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { policy_source: 'default', level: 'may', result: 'plaintext' }), PLAN.plain + PLAN.defer);
    assert.equal(sampleValue(s, 'sealpost_tls_failures_total'), 0);
    assert.equal(sampleValue(s, 'sealpost_destination_recipients_total', { destination: 'defer.test', status: 'deferred' }), PLAN.defer);

    // Connections: in, one per submission; out, one per connection a receiver accepted.
    assert.equal(sampleValue(s, 'sealpost_smtp_connections_in_total'), TOTAL);
    assert.equal(sampleValue(s, 'sealpost_smtp_connections_in_open'), 0);
    assert.equal(sampleValue(s, 'sealpost_smtp_connections_out_total'), o.secure.connections + o.plain.connections + o.defer.connections);

    // DNS: the delivery worker thread's lookups, one per query the DNS server answered, by type.
    for (const type of ['MX', 'A', 'AAAA']) {
      const asked = o.lab.dns.queries.filter((q) => q.type === type).length;
      assert.equal(sampleValue(s, 'sealpost_dns_lookups_total', { type }), asked, `${type} lookups`);
    }
    assert.ok(sampleValue(s, 'sealpost_dns_lookups_total', { type: 'MX', result: 'ok' }) >= 3);
    assert.equal(sampleValue(s, 'sealpost_dns_lookup_duration_seconds_count'), sampleValue(s, 'sealpost_dns_lookups_total'));

    // Queues, read at scrape time: the deferred messages wait in deferred/.
    assert.equal(sampleValue(s, 'sealpost_queue_messages', { queue: 'deferred' }), PLAN.defer);
    assert.equal(sampleValue(s, 'sealpost_queue_messages', { queue: 'incoming' }) + sampleValue(s, 'sealpost_queue_messages', { queue: 'active' }), 0);
    assert.ok(sampleValue(s, 'sealpost_queue_oldest_message_age_seconds', { queue: 'deferred' }) >= 0);
  } finally {
    await o.cleanup();
  }
});
