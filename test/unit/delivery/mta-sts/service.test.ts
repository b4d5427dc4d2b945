/**
 * service.test.ts — the MTA-STS policy source (RFC 8461 §5.1) with an
 * injected clock, resolver and HTTPS getter: cache hits, one fetch per
 * domain at a time, id changes, failed refreshes keeping the cached policy,
 * DNS trouble, expiry, proactive refresh, mode none, a restart over the
 * disk cache, and the tool's refresh/forget/list/show.
 */
import { test, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appliedStsFields, StsService } from '../../../../src/delivery/mta-sts/service.ts';
import type { StsServiceOptions } from '../../../../src/delivery/mta-sts/service.ts';
import { MemoryStsCache, StsCache } from '../../../../src/delivery/mta-sts/cache.ts';
import type { StsCacheStore } from '../../../../src/delivery/mta-sts/cache.ts';
import type { HttpsGetRequest, HttpsGetResult } from '../../../../src/delivery/mta-sts/fetch.ts';
import type { LookupResult } from '../../../../src/delivery/dns/resolver.ts';

const DAY = 86_400_000;
const policy = (mode = 'enforce', maxAge = 604800, mx = '*.example.com') => `version: STSv1\nmode: ${mode}\nmx: ${mx}\nmax_age: ${maxAge}\n`;

class World {
  now = 1_700_000_000_000;
  txt = new Map<string, LookupResult<string>>();
  bodies = new Map<string, HttpsGetResult>();
  requests: HttpsGetRequest[] = [];
  gate: Promise<void> | undefined;
  warnings: string[] = [];
  info: string[] = [];

  publish(domain: string, id: string, body = policy()): void {
    this.txt.set(`_mta-sts.${domain}`, { status: 'found', records: [`v=STSv1; id=${id}`], authenticated: false });
    this.bodies.set(`mta-sts.${domain}`, { kind: 'response', status: 200, contentType: 'text/plain', body: Buffer.from(body), address: '192.0.2.1' });
  }

  options(store: StsCacheStore = new MemoryStsCache()): StsServiceOptions {
    return {
      resolver: { txt: async (name) => this.txt.get(name) ?? { status: 'notfound', reason: 'NXDOMAIN', authenticated: false } },
      getter: async (req) => {
        this.requests.push(req);
        if (this.gate) await this.gate;
        return this.bodies.get(req.host) ?? { kind: 'error', stage: 'dns', message: 'host not found' };
      },
      store,
      now: () => this.now,
      fetchTimeoutMs: 1000,
      warn: (t) => this.warnings.push(t),
      info: (t) => this.info.push(t),
    };
  }
}

let w: World;
beforeEach(() => { w = new World(); });

test('first lookup fetches, later ones answer from the cache (the TXT record is still asked)', async () => {
  w.publish('example.com', 'v1');
  const s = new StsService(w.options());
  const a = await s.lookup('Example.COM');
  assert.equal(a.kind, 'policy');
  assert.ok(a.kind === 'policy');
  assert.deepEqual([a.from, a.policy.id, a.policy.mode, a.policy.expiresAt, a.txt], ['fetch', 'v1', 'enforce', w.now + 604800_000, 'v=STSv1; id=v1']);
  assert.deepEqual(w.requests.map((r) => [r.host, r.path, r.timeoutMs, r.maxBytes]), [['mta-sts.example.com', '/.well-known/mta-sts.txt', 1000, 65536]]);
  const b = await s.lookup('example.com');
  assert.ok(b.kind === 'policy' && b.from === 'cache');
  assert.equal(s.fetchCount, 1);
  assert.deepEqual(appliedStsFields(b.policy), {
    type: 'sts', domain: 'example.com', strings: ['version: STSv1', 'mode: enforce', 'mx: *.example.com', 'max_age: 604800'],
    mxHostPatterns: ['*.example.com'], stsMode: 'enforce', stsId: 'v1',
  });
});

test('one fetch per domain at a time: concurrent lookups share it', async () => {
  w.publish('example.com', 'v1');
  w.publish('example.net', 'n1');
  let open!: () => void;
  w.gate = new Promise((r) => { open = r; });
  const s = new StsService(w.options());
  const all = Promise.all([...Array.from({ length: 10 }, () => s.lookup('example.com')), s.lookup('example.net'), s.refresh('example.com')]);
  await new Promise((r) => setTimeout(r, 20));
  open();
  const answers = await all;
  assert.ok(answers.every((a) => a.kind === 'policy'));
  assert.deepEqual(w.requests.map((r) => r.host).sort(), ['mta-sts.example.com', 'mta-sts.example.net']);
});

test('a new id refetches; a failed refetch keeps the cached policy (RFC 8461 §5.1) and says why', async () => {
  w.publish('example.com', 'v1');
  const s = new StsService(w.options());
  await s.lookup('example.com');
  w.publish('example.com', 'v2', policy('testing'));
  const b = await s.lookup('example.com');
  assert.ok(b.kind === 'policy' && b.from === 'fetch' && b.policy.id === 'v2' && b.policy.mode === 'testing');
  w.publish('example.com', 'v3');
  w.bodies.set('mta-sts.example.com', { kind: 'error', stage: 'connect', message: 'ECONNREFUSED' });
  const c = await s.lookup('example.com');
  assert.ok(c.kind === 'policy');
  assert.deepEqual([c.from, c.policy.id, c.refreshFailure?.type], ['cache', 'v2', 'sts-policy-fetch-error']);
  assert.match(w.warnings.at(-1)!, /^MTA-STS policy of example\.com: .*ECONNREFUSED \(sts-policy-fetch-error\); keeping the cached policy id v2$/);
});

test('without a cached policy a failed fetch means no policy, with the RFC 8460 type', async () => {
  w.publish('example.com', 'v1', 'version: STSv1\nmode: enforce\n');
  const s = new StsService(w.options());
  const a = await s.lookup('example.com');
  assert.ok(a.kind === 'none');
  assert.deepEqual([a.why, a.failure?.type], ['fetch-failed', 'sts-policy-invalid']);
  assert.match(w.warnings[0]!, /no "max_age" field \(sts-policy-invalid\); delivering without MTA-STS/);
});

test('no TXT record, several, an invalid one, a DNS failure: a cached policy still applies; without one, none', async () => {
  w.publish('example.com', 'v1');
  const s = new StsService(w.options());
  await s.lookup('example.com');
  const records: Array<LookupResult<string>> = [
    { status: 'notfound', reason: 'NXDOMAIN', authenticated: false },
    { status: 'tempfail', reason: 'SERVFAIL' },
    { status: 'found', records: ['v=STSv1; id=a', 'v=STSv1; id=b'], authenticated: false },
    { status: 'found', records: ['v=STSv1; id=!!'], authenticated: false },
  ];
  for (const r of records) {
    w.txt.set('_mta-sts.example.com', r);
    const a = await s.lookup('example.com');
    assert.ok(a.kind === 'policy' && a.from === 'cache' && a.policy.id === 'v1', JSON.stringify(r));
  }
  assert.equal(s.fetchCount, 1);
  const fresh = new StsService(w.options());
  w.txt.set('_mta-sts.example.com', records[1]!);
  assert.deepEqual(await fresh.lookup('example.com'), { kind: 'none', why: 'dns-error', detail: 'MTA-STS discovery for example.com failed: SERVFAIL' });
  w.txt.set('_mta-sts.example.com', records[2]!);
  const multi = await fresh.lookup('example.com');
  assert.ok(multi.kind === 'none' && multi.why === 'multiple');
  assert.match(w.warnings.at(-1)!, /2 "v=STSv1" TXT records at _mta-sts\.example\.com .* no policy for example\.com/);
});

test('an expired policy is dropped; a policy near its end is refreshed in the background', async () => {
  w.publish('example.com', 'v1', policy('enforce', 86400));
  const store = new MemoryStsCache();
  const s = new StsService(w.options(store));
  await s.lookup('example.com');
  // 13 h later: less than half of max_age left → served from cache, refreshed behind.
  w.now += 13 * 3_600_000;
  const a = await s.lookup('example.com');
  assert.ok(a.kind === 'policy' && a.from === 'cache');
  await s.idle();
  assert.equal(s.fetchCount, 2);
  assert.equal(store.read('example.com')?.fetchedAt, w.now);
  // Past expiry with no TXT record any more: dropped, no policy.
  w.now += 2 * DAY;
  w.txt.delete('_mta-sts.example.com');
  const b = await s.lookup('example.com');
  assert.ok(b.kind === 'none' && b.why === 'no-record');
  assert.equal(store.read('example.com'), undefined);
  assert.match(w.info.join('\n'), /MTA-STS policy of example\.com \(id v1\) expired; dropped from the cache/);
});

test('mode none is cached and answers none', async () => {
  w.publish('example.com', 'off', 'version: STSv1\nmode: none\nmax_age: 86400\n');
  const s = new StsService(w.options());
  const a = await s.lookup('example.com');
  assert.ok(a.kind === 'none' && a.why === 'mode-none' && a.policy?.id === 'off');
  assert.equal((await s.lookup('example.com')).kind, 'none');
  assert.equal(s.fetchCount, 1);
});

test('the disk cache survives a restart: the next service applies it even when the policy host is down', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-sts-svc-'));
  try {
    w.publish('example.com', 'v1');
    await new StsService(w.options(new StsCache(dir))).lookup('example.com');
    w.bodies.clear();
    const again = new StsService(w.options(new StsCache(dir)));
    const a = await again.lookup('example.com');
    assert.ok(a.kind === 'policy' && a.from === 'cache' && a.policy.id === 'v1');
    assert.equal(again.fetchCount, 0);
    // A new id, host down: still the cached policy.
    w.publish('example.com', 'v2');
    w.bodies.clear();
    const b = await again.lookup('example.com');
    assert.ok(b.kind === 'policy' && b.policy.id === 'v1' && b.refreshFailure?.type === 'sts-policy-fetch-error');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the tool: refresh fetches now, forget drops, list and show; non-domains have no policy', async () => {
  w.publish('example.com', 'v1');
  w.publish('example.org', 'o1');
  const s = new StsService(w.options());
  await s.lookup('example.com');
  await s.lookup('example.org');
  const r = await s.refresh('example.com');
  assert.ok(r.kind === 'policy' && r.from === 'fetch');
  assert.equal(s.fetchCount, 3);
  assert.deepEqual(s.list().map((e) => e.domain), ['example.com', 'example.org']);
  assert.equal(s.show('example.org')?.id, 'o1');
  s.forget('example.org');
  assert.equal(s.show('example.org'), undefined);
  assert.deepEqual(s.list().map((e) => e.domain), ['example.com']);
  for (const d of ['[192.0.2.1]', '192.0.2.1', 'localhost', '']) {
    const n = await s.lookup(d);
    assert.ok(n.kind === 'none' && n.why === 'not-a-domain', d);
  }
});

test('a failed fetch is not repeated for the same id within 5 minutes (RFC 8461 §3.3 rate limit); a new id or "fetch now" is', async () => {
  w.txt.set('_mta-sts.example.com', { status: 'found', records: ['v=STSv1; id=v1'], authenticated: false });
  const s = new StsService(w.options());
  const a = await s.lookup('example.com');
  assert.ok(a.kind === 'none' && a.why === 'fetch-failed' && a.failure?.type === 'sts-policy-fetch-error');
  assert.equal(w.requests.length, 1);
  w.now += 60_000;
  const b = await s.lookup('example.com');
  assert.ok(b.kind === 'none' && b.why === 'fetch-failed');
  assert.equal(w.requests.length, 1, 'not fetched again within the retry time');
  w.publish('example.com', 'v2');
  const c = await s.lookup('example.com');
  assert.ok(c.kind === 'policy' && c.policy.id === 'v2', 'a new id is fetched at once');
  assert.equal(w.requests.length, 2);
  // With a cached policy: a failing refresh keeps it, and is not retried at every lookup.
  w.publish('example.com', 'v3');
  w.bodies.delete('mta-sts.example.com');
  const d = await s.lookup('example.com');
  assert.ok(d.kind === 'policy' && d.policy.id === 'v2' && d.refreshFailure !== undefined);
  const e = await s.lookup('example.com');
  assert.ok(e.kind === 'policy' && e.policy.id === 'v2' && e.refreshFailure !== undefined);
  assert.equal(w.requests.length, 3);
  w.now += 300_001;
  await s.lookup('example.com');
  assert.equal(w.requests.length, 4, 'retried after 5 minutes');
  await s.refresh('example.com');
  assert.equal(w.requests.length, 5, '"fetch now" is never held back');
});
