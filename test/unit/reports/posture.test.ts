import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventBus } from '../../../src/reports/events.ts';
import { classify, PostureStore, readPosture, POSTURE_DIR } from '../../../src/reports/posture.ts';
import { BAR_WIDTH } from '../../../src/reports/posture-render.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { publishMessage, session } from '../../harness/delivery-events.ts';

const HOUR = 3_600_000;
const NOW = Date.now();
const T0 = Math.floor(NOW / HOUR) * HOUR - 3 * HOUR; // three hours ago, on the hour

test('classify reads only typed fields: trust, policy source, enforced failures', () => {
  const at = (s: Parameters<typeof session>[0], status: 'sent' | 'deferred' | 'bounced' = 'sent') => classify({ status, session: session(s) });
  assert.equal(at({ domain: 'a.example', time: 0, source: 'dane', trust: 'Verified' }), 'verified-dane');
  assert.equal(at({ domain: 'a.example', time: 0, source: 'mta-sts', trust: 'Verified' }), 'verified-mta-sts');
  assert.equal(at({ domain: 'a.example', time: 0, source: 'table', level: 'secure', trust: 'Verified' }), 'verified-table');
  assert.equal(at({ domain: 'a.example', time: 0, trust: 'Trusted' }), 'trusted');
  assert.equal(at({ domain: 'a.example', time: 0, trust: 'Anonymous' }), 'anonymous');
  assert.equal(at({ domain: 'a.example', time: 0, plaintext: true }), 'plaintext');
  const fail = { type: 'certificate-host-mismatch' as const, reason: 'Server certificate not verified' };
  assert.equal(at({ domain: 'a.example', time: 0, source: 'table', failure: fail }, 'deferred'), 'deferred-tls');
  // An MTA-STS testing failure did not stop the delivery: a later deferral is not "for a TLS reason".
  assert.equal(at({ domain: 'a.example', time: 0, source: 'mta-sts', failure: { ...fail, enforced: false } }, 'deferred'), 'deferred-other');
  assert.equal(classify({ status: 'bounced', session: undefined }), 'bounced-other');
});

/** A known run: 10 outcomes at bank.example, 4 at partner.example, 2 at plain.example. */
function knownRun(bus: EventBus): void {
  for (let i = 0; i < 4; i++) {
    publishMessage(bus, { queueId: `D${i}`, messageId: `m${i}@origin.test`, arrival: T0 + i * 1000, groups: [{ session: { domain: 'bank.example', time: T0 + i * 1000 + 500, source: 'dane', trust: 'Verified' }, recipients: [`a${i}@bank.example`, `b${i}@bank.example`], status: 'sent' }] });
  }
  publishMessage(bus, { queueId: 'S1', arrival: T0, groups: [{ session: { domain: 'bank.example', time: T0 + HOUR + 10, source: 'mta-sts', trust: 'Verified' }, recipients: ['c@bank.example'], status: 'sent' }] });
  publishMessage(bus, { queueId: 'U1', arrival: T0, groups: [{ session: { domain: 'bank.example', time: T0 + HOUR + 20, trust: 'Untrusted' }, recipients: ['d@bank.example'], status: 'sent' }] });
  const notVerified = { type: 'certificate-not-trusted' as const, reason: 'Server certificate not verified' };
  for (let k = 0; k < 3; k++) {
    publishMessage(bus, { queueId: 'P1', arrival: T0, removed: false, groups: [{ session: { domain: 'partner.example', time: T0 + k * 600_000, source: 'table', level: 'secure', failure: notVerified }, recipients: ['e@partner.example'], status: 'deferred' }] });
  }
  publishMessage(bus, { queueId: 'P2', arrival: T0, groups: [{ session: { domain: 'partner.example', time: T0 + 2 * HOUR, source: 'table', level: 'secure', trust: 'Verified' }, recipients: ['f@partner.example'], status: 'sent' }] });
  publishMessage(bus, { queueId: 'L1', arrival: T0, groups: [{ session: { domain: 'plain.example', time: T0 + 5, plaintext: true }, recipients: ['g@plain.example', 'h@plain.example'], status: 'sent' }] });
}

async function storeWithRun(dataDir: string): Promise<void> {
  const bus = new EventBus();
  const store = new PostureStore({ dataDir, retentionMs: 400 * 24 * HOUR });
  await store.open();
  bus.subscribe(store.subscriber);
  knownRun(bus);
  await store.close();
}

test('the store survives a restart: a new reader sums the appended hours per domain', async () => {
  const t = tempDir();
  try {
    await storeWithRun(t.dir);
    const got = await readPosture(t.dir, { from: T0, to: NOW });
    const bank = got.get('bank.example')!;
    assert.equal(bank.outcomes, 10);
    assert.equal(bank.recipients, 10);
    assert.equal(bank.messages, 6);
    assert.equal(bank.byCategory['verified-dane'], 8);
    assert.equal(bank.byCategory['verified-mta-sts'], 1);
    assert.equal(bank.byCategory.untrusted, 1);
    const partner = got.get('partner.example')!;
    assert.deepEqual([partner.outcomes, partner.recipients, partner.messages, partner.byCategory['deferred-tls'], partner.byCategory['verified-table']], [4, 1, 1, 3, 1]);
    assert.deepEqual(partner.reasons, { 'Server certificate not verified': 3 });
    // A window of the first hour only.
    const first = await readPosture(t.dir, { from: T0, to: T0 + HOUR });
    assert.equal(first.get('bank.example')!.outcomes, 8);
    assert.equal(first.get('partner.example')!.outcomes, 3);
  } finally {
    t.cleanup();
  }
});

test('closed days are compacted to one line per hour and domain, and days past the retention are deleted', async () => {
  const t = tempDir();
  try {
    const dir = join(t.dir, POSTURE_DIR);
    mkdirSync(dir, { recursive: true });
    const old = new Date(NOW - 10 * 24 * HOUR).toISOString().slice(0, 10);
    const ancient = new Date(NOW - 500 * 24 * HOUR).toISOString().slice(0, 10);
    const line = (n: number) => JSON.stringify({ h: `${old}T05`, d: 'x.example', c: { outcomes: n, recipients: n, messages: 1, plaintext: n }, r: {} });
    writeFileSync(join(dir, `${old}.jsonl`), [line(2), line(3), '{"h":"torn'].join('\n'));
    writeFileSync(join(dir, `${ancient}.jsonl`), line(1) + '\n');
    const store = new PostureStore({ dataDir: t.dir, retentionMs: 400 * 24 * HOUR });
    await store.open();
    await store.close();
    assert.ok(!existsSync(join(dir, `${ancient}.jsonl`)), 'expired day deleted');
    const lines = readFileSync(join(dir, `${old}.jsonl`), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]!).c.outcomes, 5);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  } finally {
    t.cleanup();
  }
});

async function reportDir(): Promise<{ dir: string; cleanup: () => void }> {
  const t = tempDir();
  writeFileSync(join(t.dir, 'main.cf'), `data_directory = ${t.dir}/data\nqueue_directory = ${t.dir}/queue\n`);
  await storeWithRun(join(t.dir, 'data'));
  return t;
}

test('tls report: the text table puts TOTAL first, shares of outcomes per destination, top reasons', async () => {
  const t = await reportDir();
  try {
    const r = await sealpost(['tls', 'report', '-c', t.dir, '--since', '24h']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^TLS posture from \d{4}-\d{2}-\d{2} \d{2}:\d{2} to .* UTC/);
    assert.match(lines[2]!, /^DESTINATION\s+MSGS\s+RCPTS\s+OUTCOMES\s+VERIFIED\s+TRUSTED\s+UNTRUSTED\s+ANON\s+PLAIN\s+TLS-DEFER\s+TLS-BOUNCE\s+OTHER-FAIL\s+VERIFIED VIA$/);
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `))!.trim().split(/\s{2,}/);
    assert.deepEqual(row('TOTAL').slice(0, 5), ['TOTAL', '8', '13', '16', '62.5%']);
    assert.deepEqual(row('bank.example'), ['bank.example', '6', '10', '10', '90.0%', '0.0%', '10.0%', '0.0%', '0.0%', '0.0%', '0.0%', '0.0%', 'dane 8, mta-sts 1']);
    assert.deepEqual(row('partner.example').slice(0, 5), ['partner.example', '1', '1', '4', '25.0%']);
    assert.equal(row('partner.example')[9], '75.0%');
    assert.equal(row('plain.example')[8], '100.0%');
    // Order: TOTAL, then by outcomes.
    const order = lines.filter((l) => /^(TOTAL|\S+\.example) /.test(l)).map((l) => l.split(' ')[0]);
    assert.deepEqual(order, ['TOTAL', 'bank.example', 'partner.example', 'plain.example']);
    assert.match(r.stdout, /top reasons \(deferred or bounced\):\n {2}partner\.example\s+3 {2}Server certificate not verified\n/);
  } finally {
    t.cleanup();
  }
});

test('tls report --json has every count and share; --from/--to select hours', async () => {
  const t = await reportDir();
  try {
    const r = await sealpost(['tls', 'report', '-c', t.dir, '--json', '--since', '1d']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.unit, 'recipient outcome');
    assert.equal(j.total.outcomes, 16);
    const bank = j.destinations.find((d: { destination: string }) => d.destination === 'bank.example');
    assert.equal(bank.counts['verified-dane'], 8);
    assert.equal(bank.shares['verified-dane'], 0.8);
    assert.equal(bank.verifiedShare, 0.9);
    const from = new Date(T0).toISOString().slice(0, 16);
    const to = new Date(T0 + HOUR).toISOString().slice(0, 16);
    const w = JSON.parse((await sealpost(['tls', 'report', '-c', t.dir, '--json', '--from', from, '--to', to])).stdout);
    assert.equal(w.total.outcomes, 13); // first hour: 8 bank + 3 partner + 2 plain
    const bad = await sealpost(['tls', 'report', '-c', t.dir, '--since', 'yesterday']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /bad --since value "yesterday"/);
    const both = await sealpost(['tls', 'report', '-c', t.dir, '--since', '1h', '--from', '2026-01-01']);
    assert.match(both.stderr, /--since cannot be combined with --from\/--to/);
  } finally {
    t.cleanup();
  }
});

test('tls report --svg writes a self-contained picture whose segment widths are the shares', async () => {
  const t = await reportDir();
  try {
    const file = join(t.dir, 'posture.svg');
    const r = await sealpost(['tls', 'report', '-c', t.dir, '--svg', file]);
    assert.equal(r.code, 0, r.stderr);
    const svg = readFileSync(file, 'utf8');
    assert.ok(svg.startsWith('<?xml'));
    assert.ok(!/<script|href=|@import|url\(/i.test(svg), 'nothing external, no script');
    const segs = [...svg.matchAll(/<rect class="seg" data-destination="([^"]+)" data-category="([^"]+)" data-count="(\d+)" x="[\d.]+" y="[\d.]+" width="([\d.]+)"/g)];
    const bank = segs.filter((m) => m[1] === 'bank.example');
    assert.deepEqual(bank.map((m) => [m[2], Number(m[3]), Number(m[4])]), [
      ['verified-dane', 8, 0.8 * BAR_WIDTH],
      ['verified-mta-sts', 1, 0.1 * BAR_WIDTH],
      ['untrusted', 1, 0.1 * BAR_WIDTH],
    ]);
    const total = segs.filter((m) => m[1] === 'TOTAL');
    assert.equal(Math.round(total.reduce((n, m) => n + Number(m[4]), 0)), BAR_WIDTH);
    assert.equal(Number(total.find((m) => m[2] === 'deferred-tls')![4]), (BAR_WIDTH * 3) / 16);
  } finally {
    t.cleanup();
  }
});
