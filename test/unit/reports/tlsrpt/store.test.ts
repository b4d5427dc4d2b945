import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../../harness/cli.ts';
import { EventBus } from '../../../../src/reports/events.ts';
import { TlsRptStore, nextUtcMidnight } from '../../../../src/reports/tlsrpt/store.ts';
import { readPeriods } from '../../../../src/reports/tlsrpt/journal.ts';
import { classify } from '../../../../src/reports/tlsrpt/aggregate.ts';
import { danePolicy, noPolicy, session, stsPolicy } from './fixtures/records.ts';

const NOON = Date.UTC(2026, 11, 1, 12);

test('classify: reused connections, report mail, TLS off and missing domains do not count', () => {
  assert.deepEqual(classify(session({ reused: true })), { counts: false, why: 'reused' });
  assert.deepEqual(classify(session(), true), { counts: false, why: 'exempt' });
  assert.deepEqual(classify({ ...session(), policy: { ...stsPolicy(), source: 'tls-required-no' } }), { counts: false, why: 'exempt' });
  assert.deepEqual(classify(session({ policy: noPolicy(), plaintext: true })), { counts: false, why: 'no-tls' });
  // The plaintext retry after a failed handshake at may: that handshake has its own record.
  assert.deepEqual(classify(session({ policy: noPolicy(), plaintext: true, failure: 'validation-failure' })), { counts: false, why: 'no-tls' });
  assert.deepEqual(classify(session({ policy: noPolicy('') })), { counts: false, why: 'no-domain' });
  assert.deepEqual(classify(session({ policy: noPolicy('192.0.2.1') })), { counts: false, why: 'no-domain' });
  assert.deepEqual(classify(session({ policy: noPolicy('2001:db8::1') })), { counts: false, why: 'no-domain' });
  const ok = classify(session());
  assert.ok(ok.counts && ok.failure === undefined && ok.policy.domain === 'sts.example');
  const pt = classify(session({ policy: noPolicy(), plaintext: true, failure: 'starttls-not-supported' }));
  assert.ok(pt.counts && pt.failure?.resultType === 'starttls-not-supported' && pt.failure.reasonCode === '');
  const f = classify(session({ failure: 'certificate-expired', mx: 'MX1.sts.example', ip: '127.0.0.5' }));
  assert.ok(f.counts);
  assert.deepEqual(f.failure, { resultType: 'certificate-expired', sendingIp: '127.0.0.1', mxHostname: 'MX1.sts.example', mxHelo: 'MX1.sts.example', receivingIp: '127.0.0.5', reasonCode: 'Server certificate not verified' });
});

test('the subscriber counts tls-session events only, groups failures, and writes one batch per turn', async () => {
  const t = tempDir();
  try {
    const batches: number[] = [];
    const store = await TlsRptStore.open({ dir: t.dir, clock: () => NOON, onFlushed: (n) => batches.push(n) });
    const bus = new EventBus();
    bus.subscribe(store.subscriber());
    for (let i = 0; i < 5; i++) bus.publish({ kind: 'tls-session', queueId: 'Q', record: session() });
    for (let i = 0; i < 3; i++) bus.publish({ kind: 'tls-session', queueId: 'Q', record: session({ failure: 'certificate-expired' }) });
    bus.publish({ kind: 'tls-session', queueId: 'Q', record: session({ failure: 'certificate-expired', ip: '127.0.0.7' }) });
    bus.publish({ kind: 'tls-session', queueId: 'R', record: session(), tlsRptExempt: true });
    bus.publish({ kind: 'tls-session', queueId: 'Q', record: session({ policy: danePolicy(), reused: true }) });
    bus.publish({ kind: 'removed', time: NOON, queueId: 'Q', reason: 'delivered' });
    await store.flush();
    assert.deepEqual(batches, [9], 'nine sessions in one write');
    assert.deepEqual(store.skipped, { reused: 1, exempt: 1, 'no-tls': 0, 'no-domain': 0 });
    await store.close();
    const [p] = await readPeriods(t.dir);
    assert.equal(p!.closed, undefined);
    const [totals] = p!.total.forDomain('sts.example');
    assert.equal(totals!.success, 5);
    assert.equal(totals!.failure, 4);
    assert.deepEqual([...totals!.details.values()].map((d) => [d.detail.receivingIp, d.count]).sort(), [['127.0.0.7', 1], ['127.0.0.9', 3]]);
  } finally {
    t.cleanup();
  }
});

test('reopening continues the current day in a new journal generation; a past day is closed at its midnight', async () => {
  const t = tempDir();
  try {
    let now = NOON;
    const s1 = await TlsRptStore.open({ dir: t.dir, clock: () => now });
    s1.record(session());
    await s1.close();
    const s2 = await TlsRptStore.open({ dir: t.dir, clock: () => now });
    s2.record(session({ policy: danePolicy() }));
    await s2.close();
    const [p] = await readPeriods(t.dir);
    assert.deepEqual(readdirSync(p!.dir).sort(), ['journal.0', 'journal.1']);
    assert.deepEqual(p!.total.domains(), ['dane.example', 'sts.example']);
    now = NOON + 86_400_000;
    const s3 = await TlsRptStore.open({ dir: t.dir, clock: () => now, maxDelayMs: 3_600_000, random: () => 0.5 });
    await s3.close();
    const [closed] = await readPeriods(t.dir);
    assert.deepEqual(closed!.closed, { start: NOON, end: nextUtcMidnight(NOON), notBefore: nextUtcMidnight(NOON) + 1_800_000 });
    assert.deepEqual(readdirSync(closed!.dir).sort(), ['closed', 'snapshot'], 'compacted on close');
    assert.equal(closed!.total.sessions, 2);
  } finally {
    t.cleanup();
  }
});

test('a record after midnight closes the day; closePeriod() closes early with notBefore = end', async () => {
  const t = tempDir();
  try {
    let now = NOON;
    const store = await TlsRptStore.open({ dir: t.dir, clock: () => now, maxDelayMs: 1000, random: () => 0.999 });
    store.record(session());
    await store.flush();
    now = nextUtcMidnight(NOON) + 5000;
    store.record(session({ failure: 'validation-failure' }));
    await store.flush();
    await store.closePeriod(now + 1000);
    store.record(session({ policy: danePolicy() }));
    await store.close();
    const periods = await readPeriods(t.dir);
    assert.equal(periods.length, 3);
    assert.deepEqual(periods.map((p) => p.closed?.end), [nextUtcMidnight(NOON), now + 1000, undefined]);
    assert.equal(periods[0]!.closed!.notBefore, nextUtcMidnight(NOON) + 999);
    assert.equal(periods[1]!.closed!.notBefore, now + 1000);
    assert.deepEqual(periods.map((p) => p.total.sessions), [1, 1, 1]);
    assert.equal(periods[1]!.start, nextUtcMidnight(NOON));
  } finally {
    t.cleanup();
  }
});

test('a torn last batch is ignored with a warning; handled domains are remembered', async () => {
  const t = tempDir();
  try {
    const store = await TlsRptStore.open({ dir: t.dir, clock: () => NOON });
    store.record(session());
    await store.close();
    const [p] = await readPeriods(t.dir);
    const j = join(p!.dir, 'journal.0');
    const whole = readFileSync(j, 'utf8');
    const { appendFileSync } = await import('node:fs');
    appendFileSync(j, whole.slice(0, 20));
    const warnings: string[] = [];
    const again = await TlsRptStore.open({ dir: t.dir, clock: () => NOON, onWarning: (w) => warnings.push(w) });
    const [q] = await again.periods();
    assert.equal(q!.total.sessions, 1);
    assert.match(warnings[0]!, /journal\.0: incomplete last batch ignored/);
    await again.markHandled(q!, 'sts.example');
    await again.close();
    const [r] = await readPeriods(t.dir);
    assert.deepEqual([...r!.handled], ['sts.example']);
  } finally {
    t.cleanup();
  }
});
