import { test } from 'node:test';
import assert from 'node:assert/strict';
import { answerExpiry as tlsaExpiry, cachingTlsa, cachingTxt } from '../../../../src/delivery/dns/answer-cache.ts';
import type { LookupResult, PolicyResolver, TlsaRdata } from '../../../../src/delivery/dns/resolver.ts';

const FOUND = (ttl?: number): LookupResult<TlsaRdata> => ({ status: 'found', records: [{ owner: 'x', rdata: Buffer.from('030101ab', 'hex') }], authenticated: true, ...(ttl !== undefined ? { ttl } : {}) });

function fakeResolver(answers: Map<string, LookupResult<TlsaRdata>>): PolicyResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    txt: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }),
    cname: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }),
    tlsa: async (name) => {
      asked.push(name);
      return answers.get(name) ?? { status: 'notfound', reason: 'NXDOMAIN', authenticated: true };
    },
  };
}

test('tlsaExpiry: 1 s + TTL clamped to [1, 100] s; NXDOMAIN/NODATA 2 s; errors are not kept (tls_dane.c)', () => {
  const t = 1_000_000;
  assert.equal(tlsaExpiry(FOUND(300), t), t + 101_000);
  assert.equal(tlsaExpiry(FOUND(30), t), t + 31_000);
  assert.equal(tlsaExpiry(FOUND(0), t), t + 2_000);
  assert.equal(tlsaExpiry(FOUND(), t), t + 2_000);
  assert.equal(tlsaExpiry({ status: 'notfound', reason: 'NODATA', authenticated: true }, t), t + 2_000);
  assert.equal(tlsaExpiry({ status: 'tempfail', reason: 'SERVFAIL' }, t), undefined);
});

test('cachingTlsa: answers from the cache while fresh, asks again after, never keeps an error', async () => {
  let now = 0;
  const answers = new Map<string, LookupResult<TlsaRdata>>([['_25._tcp.mx.a', FOUND(30)], ['_25._tcp.mx.bad', { status: 'tempfail', reason: 'SERVFAIL' }]]);
  const r = fakeResolver(answers);
  const c = cachingTlsa(r, () => now);
  assert.deepEqual(await c.tlsa('_25._tcp.mx.a'), FOUND(30));
  now = 30_999;
  await c.tlsa('_25._TCP.MX.A.'); // the same name, another spelling
  assert.deepEqual(r.asked, ['_25._tcp.mx.a']);
  now = 31_001;
  await c.tlsa('_25._tcp.mx.a');
  assert.equal(r.asked.length, 2);
  await c.tlsa('_25._tcp.mx.bad');
  await c.tlsa('_25._tcp.mx.bad');
  assert.equal(r.asked.filter((n) => n === '_25._tcp.mx.bad').length, 2, 'a lookup error is asked again');
  await c.tlsa('_25._tcp.mx.none');
  now += 1_999;
  await c.tlsa('_25._tcp.mx.none');
  assert.equal(r.asked.filter((n) => n === '_25._tcp.mx.none').length, 1, 'NXDOMAIN is kept for 2 s');
  now += 2;
  await c.tlsa('_25._tcp.mx.none');
  assert.equal(r.asked.filter((n) => n === '_25._tcp.mx.none').length, 2);
});

test('cachingTlsa: concurrent questions for one name share one lookup; the oldest name goes beyond the limit; txt passes through', async () => {
  const r = fakeResolver(new Map([['a', FOUND(100)], ['b', FOUND(100)], ['c', FOUND(100)]]));
  const c = cachingTlsa(r, () => 0, 2);
  await Promise.all([c.tlsa('a'), c.tlsa('a'), c.tlsa('a')]);
  assert.deepEqual(r.asked, ['a']);
  await c.tlsa('b');
  await c.tlsa('c'); // a is dropped
  await c.tlsa('c');
  await c.tlsa('a');
  assert.deepEqual(r.asked, ['a', 'b', 'c', 'a']);
  assert.equal((await c.txt('x')).status, 'notfound');
});

test('cachingTxt: TXT answers kept by the same rules; forget() drops one name; the other lookups pass through', async () => {
  const asked: string[] = [];
  const base = {
    mx: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }) as const,
    addresses: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }) as const,
    tlsa: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }) as const,
    cname: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }) as const,
    txt: async (name: string): Promise<LookupResult<string>> => {
      asked.push(name);
      return { status: 'found', records: ['v=STSv1; id=1;'], authenticated: false, ttl: 300 };
    },
  };
  let now = 0;
  const c = cachingTxt(base, () => now);
  await c.txt('_mta-sts.example.com');
  now = 100_999;
  await c.txt('_mta-sts.example.com');
  assert.deepEqual(asked, ['_mta-sts.example.com'], 'TTL 300 is kept 1 s + 100 s');
  c.forget('_mta-sts.example.com');
  await c.txt('_mta-sts.example.com');
  assert.equal(asked.length, 2);
  now = 300_000;
  await c.txt('_mta-sts.example.com');
  assert.equal(asked.length, 3);
  assert.equal((await c.mx('example.com')).status, 'notfound');
});
