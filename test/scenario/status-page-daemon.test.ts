/**
 * status-page-daemon.test.ts — the status page of a running daemon, loaded
 * in Debian's headless Chromium (JavaScript off) after real mail went
 * through it: verified TLS under a policy-table entry, opportunistic TLS to
 * a self-signed server (Untrusted), plaintext, a `secure` destination whose
 * certificate is not trusted (deferred for a TLS reason) and deferrals by
 * the receiver. The queue table, the qshape table, the deferrals (with the
 * reasons the mail log gave) and the TLS posture table show the test's
 * numbers. With SEALPOST_UPDATE_SCREENSHOT=1 the page is saved as
 * docs/img/status-page.png, the picture the README shows.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tableCells, withPage } from '../harness/browser.ts';
import { observeLab, submitPlan, waitOutcomes } from './observe-lab.ts';

const PLAN = { secure: 6, plain: 4, defer: 3 };

const pct = (n: number, d: number): string => `${((n / d) * 100).toFixed(1)}%`;

test('the status page of a running daemon shows its queue, deferrals and TLS posture with the test\'s numbers', { timeout: 180_000 }, async () => {
  const o = await observeLab({
    // A self-signed certificate: Untrusted under the default `may`, not verified under `secure`.
    extraReceivers: (pki) => [
      { host: '127.0.0.5', name: 'mx.untrusted.test', tls: { key: pki.selfSigned.key, cert: pki.selfSigned.cert } },
      { host: '127.0.0.6', name: 'mx.partner.test', tls: { key: pki.selfSigned.key, cert: pki.selfSigned.cert } },
    ],
    extraZone: {
      'untrusted.test': { MX: [[10, 'mx.untrusted.test']] },
      'mx.untrusted.test': { A: ['127.0.0.5'] },
      'partner.test': { MX: [[10, 'mx.partner.test']] },
      'mx.partner.test': { A: ['127.0.0.6'] },
    },
    policyEntries: ['{partner.test = secure}'],
    mainCf: ['myhostname = mx.origin.test'],
  });
  try {
    await o.lab.start();
    await submitPlan(o.lab, PLAN);
    for (const r of ['a@untrusted.test', 'b@untrusted.test', 'c@partner.test']) await o.lab.submit('sender@origin.test', [r]);
    await waitOutcomes(o.lab, PLAN);
    await o.lab.waitLog(/: to=<[ab]@untrusted\.test>, .*status=sent/, 2);
    const [partnerLine] = await o.lab.waitLog(/: to=<c@partner\.test>, .*status=deferred/);
    const partnerReason = /status=deferred \((.*)\)$/.exec(partnerLine!)![1]!;
    const [deferLine] = await o.lab.waitLog(/: to=<u0@defer\.test>, .*status=deferred/);
    const deferReason = /status=deferred \((.*)\)$/.exec(deferLine!)![1]!;
    for (let i = 0; i < 200 && o.lab.spool.list('deferred').length < PLAN.defer + 1; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(o.lab.spool.list('deferred').length, PLAN.defer + 1);
    assert.ok(o.extra[0]!.messages.every((m) => m.tls));
    assert.equal(o.extra[1]!.messages.length, 0, 'nothing to partner.test without a trusted certificate');

    await withPage(
      async (page) => {
        const res = await page.goto(o.url);
        assert.equal(res?.status(), 200);
        assert.equal(await page.title(), 'sealpost status: mx.origin.test');
        const queues = Object.fromEntries((await tableCells(page, '#queue-counts')).slice(1).map((r) => [r[0], r[1]]));
        assert.deepEqual(queues, { maildrop: '0', incoming: '0', active: '0', deferred: String(PLAN.defer + 1), hold: '0' });
        // qshape: every waiting recipient is younger than 5 minutes.
        const shape = await tableCells(page, '#queue-shape');
        assert.deepEqual(shape[1]!.slice(0, 3), ['TOTAL', '4', '4']);
        assert.deepEqual(Object.fromEntries(shape.slice(2).map((r) => [r[0], r.slice(1, 3)])), { 'defer.test': ['3', '3'], 'partner.test': ['1', '1'] });
        const deferrals = Object.fromEntries((await tableCells(page, '#deferrals')).slice(1).map((r) => [r[0], r.slice(1, 4)]));
        assert.deepEqual(deferrals, { 'defer.test': [deferReason, '3', '3'], 'partner.test': [partnerReason, '1', '1'] });
        // The TLS posture of the last 24 hours, counted by the daemon's posture store.
        const outcomes = PLAN.secure + PLAN.plain + PLAN.defer + 3;
        const finals = PLAN.secure + PLAN.plain + 2;
        const posture = Object.fromEntries((await tableCells(page, '#posture')).slice(1).map((r) => [r[0], r.slice(1, 9)]));
        assert.deepEqual(posture.TOTAL, [String(finals), String(finals), String(outcomes), pct(PLAN.secure, outcomes), pct(2, outcomes), pct(PLAN.plain, outcomes), pct(1, outcomes), pct(PLAN.defer, outcomes)]);
        assert.deepEqual(posture['secure.test'], ['6', '6', '6', '100.0%', '0.0%', '0.0%', '0.0%', '0.0%']);
        assert.deepEqual(posture['plain.test'], ['4', '4', '4', '0.0%', '0.0%', '100.0%', '0.0%', '0.0%']);
        assert.deepEqual(posture['untrusted.test'], ['2', '2', '2', '0.0%', '100.0%', '0.0%', '0.0%', '0.0%']);
        assert.deepEqual(posture['partner.test'], ['0', '0', '1', '0.0%', '0.0%', '0.0%', '100.0%', '0.0%']);
        assert.deepEqual(posture['defer.test'], ['0', '0', '3', '0.0%', '0.0%', '0.0%', '0.0%', '100.0%']);
        const seg = await page.$$eval('#posture-picture rect.seg[data-destination="secure.test"]', (rs) => rs.map((r) => r.getAttribute('data-category')));
        assert.deepEqual(seg, ['verified-table']);
        // The README's picture is refreshed only on request, so a test run leaves the working tree clean.
        const shot = await page.screenshot({ fullPage: true });
        assert.deepEqual([...shot.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47], 'a PNG image');
        if (process.env.SEALPOST_UPDATE_SCREENSHOT === '1') writeFileSync('docs/img/status-page.png', shot);
        // The deferred destination's explain link: `tls explain` for its queued recipient, with the table entry.
        await page.click('#deferrals tr[data-domain="partner.test"] a');
        const explain = await page.textContent('#explain');
        assert.match(explain!, /^recipient: <c@partner\.test>/);
        assert.match(explain!, /secure/);
      },
      { javaScriptEnabled: false, viewport: { width: 1100, height: 800 } },
    );
  } finally {
    await o.cleanup();
  }
});
