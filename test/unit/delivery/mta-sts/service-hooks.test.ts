/**
 * service-hooks.test.ts — the MTA-STS policy service reports to the metrics'
 * hooks (reports/observe-hooks.ts): each lookup's cache result (miss, hit,
 * stale, refreshed on a new id), each fetch with its result (ok, fetch-error,
 * invalid) and the number of cached policies after a change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StsService } from '../../../../src/delivery/mta-sts/service.ts';
import { MemoryStsCache } from '../../../../src/delivery/mta-sts/cache.ts';
import type { HttpsGetResult } from '../../../../src/delivery/mta-sts/fetch.ts';
import type { LookupResult } from '../../../../src/delivery/dns/resolver.ts';
import type { MtaStsHooks } from '../../../../src/reports/observe-hooks.ts';

const policy = (maxAge: number) => `version: STSv1\nmode: enforce\nmx: *.example.com\nmax_age: ${maxAge}\n`;

test('cache lookups, fetches and the cache size reach the hooks', async () => {
  let now = 1_700_000_000_000;
  const txt = new Map<string, LookupResult<string>>();
  const bodies = new Map<string, HttpsGetResult>();
  const publish = (domain: string, id: string, body: string) => {
    txt.set(`_mta-sts.${domain}`, { status: 'found', records: [`v=STSv1; id=${id}`], authenticated: false });
    bodies.set(`mta-sts.${domain}`, { kind: 'response', status: 200, contentType: 'text/plain', body: Buffer.from(body), address: '192.0.2.1' });
  };
  const events: string[] = [];
  const hooks: MtaStsHooks = {
    cacheLookup: (r) => events.push(`cache ${r}`),
    policyFetch: (r, s) => events.push(`fetch ${r}${s >= 0 ? '' : ' negative'}`),
    cachedPolicies: (n) => events.push(`size ${n}`),
  };
  const s = new StsService({
    resolver: { txt: async (name) => txt.get(name) ?? { status: 'notfound', reason: 'NXDOMAIN', authenticated: false } },
    getter: async (req) => bodies.get(req.host) ?? { kind: 'error', stage: 'dns', message: 'host not found' },
    store: new MemoryStsCache(),
    now: () => now,
    refreshMarginMs: 3_600_000,
    hooks,
  });
  publish('example.com', 'v1', policy(86400));
  await s.lookup('example.com'); // no entry: fetched
  await s.lookup('example.com'); // fresh
  now += 86_400_000 - 60_000; // within the refresh margin: answered from the cache, refreshed behind
  await s.lookup('example.com');
  await s.idle();
  publish('example.com', 'v2', 'not a policy');
  await s.lookup('example.com'); // a new id: fetched again, the body is invalid
  await s.lookup('nothing.example'); // no record, nothing cached
  bodies.delete('mta-sts.example.net');
  txt.set('_mta-sts.example.net', { status: 'found', records: ['v=STSv1; id=n1'], authenticated: false });
  await s.lookup('example.net'); // the policy host does not exist
  assert.deepEqual(events, [
    'cache miss', 'fetch ok', 'size 1',
    'cache hit',
    'cache stale', 'fetch ok', 'size 1',
    'cache refreshed', 'fetch invalid',
    'cache miss',
    'cache miss', 'fetch fetch-error',
  ]);
});
