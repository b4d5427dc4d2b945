/**
 * status-page-browser.test.ts — the observability listener as the daemon
 * builds it (reports/observe.ts from a main.cf), over a real spool with
 * deferred, active and held mail and a real event bus fed with a known run,
 * loaded in Debian's headless Chromium: the queue table, the qshape table,
 * the deferrals with their reasons and explain links, the TLS posture table
 * and its SVG picture, all checked against the test's numbers, without
 * JavaScript. (status-page-daemon.test.ts does the same with a running daemon's real mail.)
 * Then: /metrics passes promtool; the listener is read-only; off loopback it
 * refuses to start without credentials and TLS; with them it serves HTTPS and
 * answers 401 without credentials.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { EventBus } from '../../src/reports/events.ts';
import { startObservability, type Observability } from '../../src/reports/observe.ts';
import { createSpool, type Spool } from '../../src/queue/spool.ts';
import { tableCells, withPage } from '../harness/browser.ts';
import { tempDir } from '../harness/cli.ts';
import { publishMessage } from '../harness/delivery-events.ts';
import { makePki } from '../harness/pki.ts';
import { parseSamples, promtoolCheck, sampleValue } from '../harness/promtool.ts';

const MIN = 60_000;
let t: { dir: string; cleanup: () => void };
let obs: Observability;
let spool: Spool;
const NOW = Date.now();

async function queued(queue: 'incoming' | 'deferred' | 'hold' | 'active', ageMin: number, recipients: string[], reason?: string): Promise<string> {
  const id = await spool.writeMessage({ arrivalTime: NOW - ageMin * MIN, sender: 'sender@origin.test', recipients: recipients.map((address) => ({ address })) }, Buffer.from('Subject: t\r\n\r\nbody\r\n'));
  if (queue !== 'incoming') await spool.move(id, 'incoming', queue);
  if (reason) for (let i = 0; i < recipients.length; i++) await spool.setDelayReason(id, { index: i, address: recipients[i]!, reason, status: '4.7.5' });
  return id;
}

function knownRun(bus: EventBus): void {
  const T = NOW - 2 * 60 * MIN;
  for (let i = 0; i < 6; i++) publishMessage(bus, { queueId: `B${i}`, arrival: T, groups: [{ session: { domain: 'bank.example', time: T + i * 1000, source: 'dane', trust: 'Verified' }, recipients: [`u${i}@bank.example`], status: 'sent' }] });
  for (let i = 0; i < 2; i++) publishMessage(bus, { queueId: `H${i}`, arrival: T, groups: [{ session: { domain: 'hospital.example', time: T + 5000, source: 'mta-sts', trust: 'Verified' }, recipients: [`d${i}@hospital.example`], status: 'sent' }] });
  publishMessage(bus, { queueId: 'O1', arrival: T, groups: [{ session: { domain: 'legacy.example', time: T + 100, trust: 'Anonymous' }, recipients: ['x@legacy.example', 'y@legacy.example'], status: 'sent' }] });
  publishMessage(bus, { queueId: 'P1', arrival: T, removed: false, groups: [{ session: { domain: 'partner.example', time: T + 200, source: 'table', level: 'secure', failure: { type: 'certificate-not-trusted', reason: 'Server certificate not verified' } }, recipients: ['p1@partner.example', 'p2@partner.example'], status: 'deferred' }] });
}

before(async () => {
  t = tempDir();
  writeFileSync(
    join(t.dir, 'main.cf'),
    [`queue_directory = ${t.dir}/queue`, `data_directory = ${t.dir}/data`, 'myhostname = mx.origin.test', 'sealpost_http_listen = 127.0.0.1:0', 'smtp_tls_policy_maps = inline:{ partner.example=secure }', ''].join('\n'),
  );
  spool = await createSpool(join(t.dir, 'queue'), { fsync: false });
  // The queue: partner.example waits for a verified certificate, slow.example for a timeout; one active, one held.
  await queued('deferred', 7, ['p1@partner.example', 'p2@partner.example'], 'Server certificate not verified');
  await queued('deferred', 95, ['p3@partner.example'], 'Server certificate not verified');
  await queued('deferred', 30, ['s1@slow.example'], 'connect to mx.slow.example[192.0.2.9]:25: Connection timed out');
  await queued('active', 1, ['n1@new.example']);
  await queued('hold', 600, ['h1@held.example']);
  const bus = new EventBus();
  obs = await startObservability({ config: loadConfig({ configDir: t.dir }), bus, spool, warn: (m) => assert.fail(m), startedAt: NOW - 3600_000 });
  knownRun(bus);
});

after(async () => {
  await obs?.stop();
  t?.cleanup();
});

test('the status page in headless Chromium shows the queue, the deferrals and the TLS posture with the test\'s numbers', async () => {
  assert.ok(obs.url?.startsWith('http://127.0.0.1:'));
  await withPage(
    async (page) => {
      const res = await page.goto(obs.url!);
      assert.equal(res?.status(), 200);
      assert.equal(await page.title(), 'sealpost status: mx.origin.test');
      const queues = Object.fromEntries((await tableCells(page, '#queue-counts')).slice(1).map((r) => [r[0], `${r[1]} ${r[2]}`]));
      assert.deepEqual(queues, { maildrop: '0 -', active: '1 1m', incoming: '0 -', deferred: '3 1h 35m', hold: '1 10h 00m' });
      const shape = await tableCells(page, '#queue-shape');
      assert.deepEqual(shape[0]!.slice(0, 4), ['destination', 'T', '5', '10']);
      // TOTAL: 5 recipients waiting (hold is not shaped): [0,5) 1, [5,10) 2, [20,40) 1, [80,160) 1.
      assert.deepEqual(shape[1], ['TOTAL', '5', '1', '2', '0', '1', '0', '1', '0', '0', '0', '0']);
      assert.deepEqual(shape[2], ['partner.example', '3', '0', '2', '0', '0', '0', '1', '0', '0', '0', '0']);
      const deferrals = await tableCells(page, '#deferrals');
      assert.deepEqual(deferrals[1]!.slice(0, 5), ['partner.example', 'Server certificate not verified', '3', '2', '1h 35m']);
      assert.deepEqual(deferrals[2]!.slice(0, 4), ['slow.example', 'connect to mx.slow.example[192.0.2.9]:25: Connection timed out', '1', '1']);
      const posture = Object.fromEntries((await tableCells(page, '#posture')).slice(1).map((r) => [r[0], r.slice(1, 9)]));
      assert.deepEqual(posture.TOTAL, ['9', '10', '12', '66.7%', '16.7%', '0.0%', '16.7%', '0.0%']);
      assert.deepEqual(posture['bank.example'], ['6', '6', '6', '100.0%', '0.0%', '0.0%', '0.0%', '0.0%']);
      assert.deepEqual(posture['partner.example'], ['0', '0', '2', '0.0%', '0.0%', '0.0%', '100.0%', '0.0%']);
      assert.deepEqual(posture['legacy.example'], ['1', '2', '2', '0.0%', '100.0%', '0.0%', '0.0%', '0.0%']);
      // The picture is inline SVG: bank.example's bar is one DANE segment of the whole width.
      const seg = await page.$$eval('#posture-picture rect.seg[data-destination="bank.example"]', (rs) => rs.map((r) => [r.getAttribute('data-category'), r.getAttribute('width')]));
      assert.deepEqual(seg, [['verified-dane', '560.00']]);
      // (The README's picture comes from a real daemon: status-page-daemon.test.ts.)
      // The explain link of the deferred destination runs `tls explain` for one of its queued recipients.
      await page.click('#deferrals tr[data-domain="partner.example"] a');
      const explain = await page.textContent('#explain');
      assert.match(explain!, /^recipient: <p[13]@partner\.example>/);
      assert.match(explain!, /partner\.example=secure|secure/);
    },
    { javaScriptEnabled: false },
  );
});

test('the posture picture is well-formed XML (Chromium\'s parser) and its widths are the shares', async () => {
  const svg = await (await fetch(new URL('/posture.svg?since=24h', obs.url))).text();
  assert.ok(!/<script|href=|url\(/i.test(svg));
  await withPage(async (page) => {
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'image/svg+xml');
      if (doc.getElementsByTagName('parsererror').length > 0) return { error: doc.documentElement.textContent ?? 'parse error' };
      const rects = Array.from(doc.querySelectorAll('rect.seg')).map((r) => ({ d: r.getAttribute('data-destination'), c: r.getAttribute('data-category'), n: Number(r.getAttribute('data-count')), w: Number(r.getAttribute('width')) }));
      return { root: doc.documentElement.nodeName, rects };
    }, svg);
    assert.ok(!('error' in parsed), JSON.stringify(parsed));
    if ('error' in parsed) return;
    assert.equal(parsed.root, 'svg');
    const total = parsed.rects.filter((r) => r.d === 'TOTAL');
    for (const r of total) assert.equal(r.w, Math.round((r.n / 12) * 560 * 100) / 100, `${r.c}`);
    assert.deepEqual(total.map((r) => [r.c, r.n]), [['verified-dane', 6], ['verified-mta-sts', 2], ['anonymous', 2], ['deferred-tls', 2]]);
  });
});

test('/metrics passes promtool and counts the run; the listener is read-only', async () => {
  const res = await fetch(new URL('/metrics', obs.url));
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const check = promtoolCheck(text);
  assert.equal(check.code, 0, check.output);
  const s = parseSamples(text);
  assert.equal(sampleValue(s, 'sealpost_messages_received_total'), 10);
  assert.equal(sampleValue(s, 'sealpost_messages_delivered_total'), 9);
  assert.equal(sampleValue(s, 'sealpost_tls_sessions_total', { trust: 'verified' }), 8);
  assert.equal(sampleValue(s, 'sealpost_queue_messages', { queue: 'deferred' }), 3);
  const post = await fetch(new URL('/', obs.url), { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  assert.equal((await fetch(new URL('/nothing', obs.url))).status, 404);
  assert.equal((await fetch(new URL('/explain?domain=%3Cscript%3E', obs.url))).status, 400);
});

test('off loopback the listener refuses to start without credentials and TLS; with them it is HTTPS with authentication', async () => {
  const d = tempDir();
  try {
    const base = [`queue_directory = ${t.dir}/queue`, `data_directory = ${d.dir}/data`, 'sealpost_tls_proof_enable = no'];
    writeFileSync(join(d.dir, 'main.cf'), [...base, 'sealpost_http_listen = 0.0.0.0:0', ''].join('\n'));
    await assert.rejects(startObservability({ config: loadConfig({ configDir: d.dir }), bus: new EventBus(), spool, warn: () => undefined }), {
      message: /^sealpost_http_listen = 0\.0\.0\.0:0 is not a loopback address: set sealpost_http_auth_file and sealpost_http_tls_cert_file and sealpost_http_tls_key_file/,
    });
    const pki = makePki(d.dir, ['localhost']);
    writeFileSync(join(d.dir, 'http_auth'), '# postmaster\nadmin:s3cret\nprometheus-token-1\n', { mode: 0o600 });
    writeFileSync(
      join(d.dir, 'main.cf'),
      [...base, 'sealpost_http_listen = 127.0.0.1:0', `sealpost_http_auth_file = ${d.dir}/http_auth`, `sealpost_http_tls_cert_file = ${pki.server.cert}`, `sealpost_http_tls_key_file = ${pki.server.key}`, ''].join('\n'),
    );
    const o = await startObservability({ config: loadConfig({ configDir: d.dir }), bus: new EventBus(), spool, warn: () => undefined });
    try {
      assert.match(o.url!, /^https:\/\/127\.0\.0\.1:\d+\/$/);
      const ca = readFileSync(pki.caCert);
      const get = (path: string, auth?: string) =>
        new Promise<number>((resolve, reject) => {
          const u = new URL(path, o.url);
          const req = httpsRequest({ host: '127.0.0.1', port: u.port, path: u.pathname, ca, servername: 'localhost', headers: auth ? { authorization: auth } : {} }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end();
        });
      assert.equal(await get('/metrics'), 401);
      assert.equal(await get('/metrics', `Basic ${Buffer.from('admin:wrong').toString('base64')}`), 401);
      assert.equal(await get('/metrics', `Basic ${Buffer.from('admin:s3cret').toString('base64')}`), 200);
      assert.equal(await get('/', 'Bearer prometheus-token-1'), 200);
      await withPage(
        async (page) => {
          const res = await page.goto(o.url!);
          assert.equal(res?.status(), 200);
          assert.equal(await page.textContent('h1'), 'sealpost on ' + loadConfig({ configDir: d.dir }).get('myhostname'));
        },
        { ignoreHTTPSErrors: true, httpCredentials: { username: 'admin', password: 's3cret' } },
      );
    } finally {
      await o.stop();
    }
  } finally {
    d.cleanup();
  }
});
