/**
 * tls-report-daemon.test.ts — `sealpost tls report` over what a running
 * daemon really delivered: 5 messages over verified TLS (policy-table entry
 * `secure`), 3 in plaintext (main.cf default `may`, no STARTTLS), 2 deferred
 * by their receiver, 1 deferred because its `secure` destination shows an
 * untrusted certificate. The daemon is stopped first (its posture store
 * appends every minute and at stop; the report reads what survived), then
 * the text table, the JSON and the SVG picture must show exactly those
 * numbers, shares and reasons.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withPage } from '../harness/browser.ts';
import { observeLab, submitPlan, waitOutcomes } from './observe-lab.ts';

const PLAN = { secure: 5, plain: 3, defer: 2 };
const OUTCOMES = PLAN.secure + PLAN.plain + PLAN.defer + 1;
const pct = (n: number, d = OUTCOMES): string => `${((n / d) * 100).toFixed(1)}%`;

interface JsonRow {
  destination: string;
  messages: number;
  recipients: number;
  outcomes: number;
  counts: Record<string, number>;
  verifiedShare: number;
  topReasons: Array<{ reason: string; count: number }>;
}

test('tls report text, JSON and SVG show what the daemon delivered, and how', { timeout: 180_000 }, async () => {
  const o = await observeLab({
    extraReceivers: (pki) => [{ host: '127.0.0.6', name: 'mx.partner.test', tls: { key: pki.selfSigned.key, cert: pki.selfSigned.cert } }],
    extraZone: { 'partner.test': { MX: [[10, 'mx.partner.test']] }, 'mx.partner.test': { A: ['127.0.0.6'] } },
    policyEntries: ['{partner.test = secure}'],
  });
  try {
    await o.lab.start();
    await submitPlan(o.lab, PLAN);
    await o.lab.submit('sender@origin.test', ['p@partner.test']);
    await waitOutcomes(o.lab, PLAN);
    const [partnerLine] = await o.lab.waitLog(/: to=<p@partner\.test>, .*status=deferred/);
    const tlsReason = /status=deferred \((.*)\)$/.exec(partnerLine!)![1]!;
    const [deferLine] = await o.lab.waitLog(/: to=<u0@defer\.test>, .*status=deferred/);
    const deferReason = /status=deferred \((.*)\)$/.exec(deferLine!)![1]!;
    await o.lab.stop();

    // The text table: totals first, then destinations by outcomes.
    const text = await o.tls('report', ['--since', '2h']);
    assert.equal(text.code, 0, text.stderr);
    const lines = text.stdout.split('\n');
    assert.match(lines[0]!, /^TLS posture from \d{4}-\d\d-\d\d \d\d:\d\d to \d{4}-\d\d-\d\d \d\d:\d\d UTC \(shares are of recipient outcomes: sent, deferred or bounced\)$/);
    assert.deepEqual(lines[2]!.split(/\s{2,}/), ['DESTINATION', 'MSGS', 'RCPTS', 'OUTCOMES', 'VERIFIED', 'TRUSTED', 'UNTRUSTED', 'ANON', 'PLAIN', 'TLS-DEFER', 'TLS-BOUNCE', 'OTHER-FAIL', 'VERIFIED VIA']);
    const rows = lines.slice(3, 8).map((l) => l.trim().split(/\s{2,}/));
    const z = '0.0%';
    assert.deepEqual(rows, [
      ['TOTAL', '8', '8', String(OUTCOMES), pct(5), z, z, z, pct(3), pct(1), z, pct(2), 'table 5'],
      ['secure.test', '5', '5', '5', '100.0%', z, z, z, z, z, z, z, 'table 5'],
      ['plain.test', '3', '3', '3', z, z, z, z, '100.0%', z, z, z, '-'],
      ['defer.test', '0', '0', '2', z, z, z, z, z, z, z, '100.0%', '-'],
      ['partner.test', '0', '0', '1', z, z, z, z, z, '100.0%', z, z, '-'],
    ]);
    assert.equal(lines[8], '');
    assert.equal(lines[9], 'top reasons (deferred or bounced):');
    assert.deepEqual(lines.slice(10, 12).map((l) => l.trim().split(/\s{2,}/)), [
      ['defer.test', '2', deferReason],
      ['partner.test', '1', tlsReason],
    ]);

    // JSON: every count.
    const j = await o.tls('report', ['--since', '2h', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { unit: string; total: JsonRow; destinations: JsonRow[] };
    assert.equal(doc.unit, 'recipient outcome');
    const nonzero = (r: JsonRow) => Object.fromEntries(Object.entries(r.counts).filter(([, n]) => n > 0));
    assert.deepEqual([doc.total.messages, doc.total.recipients, doc.total.outcomes], [8, 8, OUTCOMES]);
    assert.deepEqual(nonzero(doc.total), { 'verified-table': 5, plaintext: 3, 'deferred-tls': 1, 'deferred-other': 2 });
    assert.equal(doc.total.verifiedShare, 5 / OUTCOMES);
    const by = Object.fromEntries(doc.destinations.map((r) => [r.destination, nonzero(r)]));
    assert.deepEqual(by, {
      'secure.test': { 'verified-table': 5 },
      'plain.test': { plaintext: 3 },
      'defer.test': { 'deferred-other': 2 },
      'partner.test': { 'deferred-tls': 1 },
    });
    assert.deepEqual(doc.destinations.find((r) => r.destination === 'partner.test')!.topReasons, [{ reason: tlsReason, count: 1 }]);

    // The SVG picture: well-formed (Chromium's XML parser), one bar per destination, segment widths the shares.
    const svgFile = join(o.lab.dir, 'posture.svg');
    const s = await o.tls('report', ['--since', '2h', '--svg', svgFile]);
    assert.equal(s.code, 0, s.stderr);
    const svg = readFileSync(svgFile, 'utf8');
    assert.ok(!/<script|href=|url\(/i.test(svg), 'self-contained, nothing to load');
    const parsed = await withPage((page) =>
      page.evaluate((t) => {
        const d = new DOMParser().parseFromString(t, 'image/svg+xml');
        if (d.getElementsByTagName('parsererror').length > 0) return undefined;
        return Array.from(d.querySelectorAll('rect.seg')).map((r) => [r.getAttribute('data-destination'), r.getAttribute('data-category'), Number(r.getAttribute('data-count')), Number(r.getAttribute('width'))] as const);
      }, svg),
    );
    assert.ok(parsed, 'the SVG parses as XML');
    const bars = Object.fromEntries(['TOTAL', 'secure.test', 'plain.test', 'defer.test', 'partner.test'].map((d) => [d, parsed.filter((r) => r[0] === d).map((r) => [r[1], r[2]])]));
    assert.deepEqual(bars, {
      TOTAL: [['verified-table', 5], ['plaintext', 3], ['deferred-tls', 1], ['deferred-other', 2]],
      'secure.test': [['verified-table', 5]],
      'plain.test': [['plaintext', 3]],
      'defer.test': [['deferred-other', 2]],
      'partner.test': [['deferred-tls', 1]],
    });
    const total = parsed.filter((r) => r[0] === 'TOTAL');
    const full = parsed.find((r) => r[0] === 'secure.test')![3];
    for (const r of total) assert.ok(Math.abs(r[3] - (r[2] / OUTCOMES) * full) < 0.01, `${r[1]} width is its share`);
  } finally {
    await o.cleanup();
  }
});
