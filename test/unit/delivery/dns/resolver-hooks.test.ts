/**
 * resolver-hooks.test.ts — both resolvers report every lookup to the metrics'
 * DNS hook (reports/observe-hooks.ts): its record type, how it ended (ok,
 * notfound, error, timeout) and a duration, against the lab DNS server.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PacketResolver, SystemResolver } from '../../../../src/delivery/dns/resolver.ts';
import type { DnsLookupResult, DnsQueryType } from '../../../../src/reports/observe-hooks.ts';
import { startDnsServer, type DnsLab } from '../../../harness/dns-server.ts';

let lab: DnsLab;
before(async () => {
  lab = await startDnsServer({
    'example.com': { MX: [[10, 'mx1.example.com']], A: ['192.0.2.1'] },
    'broken.example': { servfail: true },
    'dead.example': { drop: true },
  });
});
after(async () => {
  await lab.close();
});

function recorder(): { calls: Array<[DnsQueryType, DnsLookupResult]>; seconds: number[]; hooks: { lookup: (t: DnsQueryType, r: DnsLookupResult, s: number) => void } } {
  const calls: Array<[DnsQueryType, DnsLookupResult]> = [];
  const seconds: number[] = [];
  return { calls, seconds, hooks: { lookup: (t, r, s) => (calls.push([t, r]), seconds.push(s)) } };
}

test('PacketResolver: one hook call per question with its type and result', async () => {
  const rec = recorder();
  const r = new PacketResolver([{ host: lab.host, port: lab.port }], 300, rec.hooks);
  await r.mx('example.com');
  await r.mx('nowhere.example');
  await r.addresses('example.com', ['ipv4', 'ipv6']);
  await r.txt('broken.example');
  await r.mx('dead.example');
  assert.deepEqual(rec.calls, [
    ['MX', 'ok'],
    ['MX', 'notfound'],
    ['A', 'ok'],
    ['AAAA', 'notfound'],
    ['TXT', 'error'],
    ['MX', 'timeout'],
  ]);
  assert.ok(rec.seconds.every((s) => s >= 0 && Number.isFinite(s)));
});

test('SystemResolver: the same vocabulary, a dead server a timeout', async () => {
  const rec = recorder();
  const ok = new SystemResolver(2000, [`${lab.host}:${lab.port}`], rec.hooks);
  await ok.mx('example.com');
  await ok.txt('nowhere.example');
  assert.deepEqual(rec.calls, [
    ['MX', 'ok'],
    ['TXT', 'notfound'],
  ]);
  const deadRec = recorder();
  const dead = new SystemResolver(200, [`${lab.host}:${lab.port}`], deadRec.hooks);
  await dead.cname('dead.example');
  assert.deepEqual(deadRec.calls, [['CNAME', 'timeout']]);
});
