/**
 * observe-hooks.test.ts — the HookRelay the daemon hands out once (a swap of
 * its target reaches every holder; a connection's close goes to the metrics
 * it opened on), and a worker thread's hook calls as messages: structured
 * clone, replayed on the main thread's metrics, nothing else callable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SealpostMetrics } from '../../../src/reports/metrics.ts';
import { applyHookMessage, forwardingHooks, HookRelay, NO_HOOKS, type HookMessage } from '../../../src/reports/observe-hooks.ts';
import { bareMessageId, receivedEvent, smtpdOrigin } from '../../../src/reports/received-event.ts';
import { parseSamples, sampleValue } from '../../harness/promtool.ts';

async function samples(m: SealpostMetrics) {
  return parseSamples(await m.text());
}

test('a HookRelay forwards to its current target; a close reaches the metrics the connection was opened on', async () => {
  const relay = new HookRelay();
  assert.equal(relay.target, NO_HOOKS);
  relay.dns.lookup('MX', 'ok', 0.01); // goes nowhere
  const first = new SealpostMetrics({ defaultMetrics: false });
  relay.target = first.hooks;
  relay.dns.lookup('MX', 'ok', 0.01);
  const close = relay.smtpd.connectionOpened('smtp');
  const second = new SealpostMetrics({ defaultMetrics: false });
  relay.target = second.hooks;
  close();
  relay.tlsRpt.reportDelivered('https', false);
  relay.mtaSts.cacheLookup('stale');
  const a = await samples(first);
  const b = await samples(second);
  assert.equal(sampleValue(a, 'sealpost_dns_lookups_total'), 1);
  assert.equal(sampleValue(a, 'sealpost_smtp_connections_in_total', { service: 'smtp' }), 1);
  assert.equal(sampleValue(a, 'sealpost_smtp_connections_in_open', { service: 'smtp' }), 0);
  assert.equal(sampleValue(b, 'sealpost_smtp_connections_in_open', { service: 'smtp' }), 0);
  assert.equal(sampleValue(b, 'sealpost_tlsrpt_reports_delivered_total', { method: 'https', result: 'error' }), 1);
  assert.equal(sampleValue(b, 'sealpost_mta_sts_cache_lookups_total', { result: 'stale' }), 1);
  assert.equal(sampleValue(b, 'sealpost_dns_lookups_total'), 0);
});

test('a worker\'s hook calls of one turn cross as one plain message and are replayed on the main thread\'s metrics', async () => {
  const posted: HookMessage[] = [];
  const pending: Array<() => void> = [];
  const w = forwardingHooks((m) => posted.push(structuredClone(m)), (flush) => pending.push(flush));
  w.dns.lookup('TLSA', 'timeout', 5);
  w.dns.lookup('A', 'ok', 0.002);
  w.mtaSts.policyFetch('invalid', 0.2);
  w.mtaSts.cachedPolicies(3);
  w.tlsRpt.reportGenerated();
  w.smtpd.connectionOpened('smtp')(); // a worker has no listener: not forwarded
  assert.equal(posted.length, 0, 'nothing posted before the turn ends');
  assert.equal(pending.length, 1, 'one flush scheduled for the turn');
  pending.shift()!();
  w.dns.lookup('MX', 'notfound', 0.01);
  pending.shift()!();
  assert.deepEqual(posted.map((p) => p.calls.length), [5, 1]);
  const m = new SealpostMetrics({ defaultMetrics: false });
  for (const p of posted) applyHookMessage(m.hooks, p);
  applyHookMessage(m.hooks, { kind: 'hook', calls: [{ call: 'constructor' as never, args: [] }] });
  const s = await samples(m);
  assert.equal(sampleValue(s, 'sealpost_dns_lookups_total', { type: 'TLSA', result: 'timeout' }), 1);
  assert.equal(sampleValue(s, 'sealpost_dns_lookups_total', { type: 'MX', result: 'notfound' }), 1);
  assert.equal(sampleValue(s, 'sealpost_dns_lookup_duration_seconds_count', { type: 'A' }), 1);
  assert.equal(sampleValue(s, 'sealpost_mta_sts_policy_fetches_total', { result: 'invalid' }), 1);
  assert.equal(sampleValue(s, 'sealpost_mta_sts_cached_policies'), 3);
  assert.equal(sampleValue(s, 'sealpost_tlsrpt_reports_generated_total'), 1);
  assert.equal(sampleValue(s, 'sealpost_smtp_connections_in_total'), 0);
});

test('received events: origin from the master.cf service, Message-ID without brackets, none for <>', () => {
  assert.equal(smtpdOrigin('smtp'), 'smtpd');
  assert.equal(smtpdOrigin('127.0.0.1:2525'), 'smtpd');
  assert.equal(smtpdOrigin('submission'), 'submission');
  assert.equal(smtpdOrigin('submissions'), 'submission');
  assert.equal(bareMessageId('<a.b@c.example>'), 'a.b@c.example');
  assert.equal(bareMessageId('<>'), undefined);
  assert.equal(bareMessageId(undefined), undefined);
  assert.deepEqual(receivedEvent({ queueId: 'Q1', origin: 'pickup', sender: 's@x', size: 10, nrcpt: 2, messageId: '<m@x>', time: 5 }), {
    kind: 'received', time: 5, queueId: 'Q1', origin: 'pickup', sender: 's@x', size: 10, nrcpt: 2, messageId: 'm@x',
  });
  assert.ok(!('messageId' in receivedEvent({ queueId: 'Q2', origin: 'smtpd', sender: '', size: 1, nrcpt: 1, messageId: '<>' })));
});
