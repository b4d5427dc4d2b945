/**
 * dns-client.test.ts — the packet client against the lab DNS server: answers,
 * NXDOMAIN/NODATA as results, SERVFAIL and timeouts as typed errors, TC → TCP,
 * spoofed datagrams ignored, AD bit surfaced, server failover.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dnsPacket from 'dns-packet';
import { DnsClient, DnsServerError, DnsTimeoutError, encodeQuery, matchesQuery } from '../../../../src/delivery/dns/dns-client.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';

let lab: DnsLab;
let client: DnsClient;

before(async () => {
  lab = await startDnsServer({
    'example.com': { MX: [[10, 'mx1.example.com']], A: ['127.0.0.1'] },
    'signed.example': { A: ['192.0.2.1'], ad: true },
    'broken.example': { servfail: true },
    'dead.example': { drop: true },
    'big.example': { A: ['192.0.2.1', '192.0.2.2'], truncate: true },
    'spoofed.example': { A: ['192.0.2.7'], spoof: true },
  });
  client = new DnsClient([{ host: lab.host, port: lab.port }], 2000);
});
after(async () => { await lab.close(); });

test('query sets RD and the EDNS0 DO bit', () => {
  const p = dnsPacket.decode(encodeQuery(4242, 'Example.COM.', 'MX'));
  assert.equal(p.id, 4242);
  assert.equal(p.flag_rd, true);
  assert.equal(p.questions?.[0]?.name, 'Example.COM');
  const opt = p.additionals?.find((a) => a.type === 'OPT');
  assert.ok(opt && opt.type === 'OPT');
  assert.equal(opt.flags & dnsPacket.DNSSEC_OK, dnsPacket.DNSSEC_OK);
});

test('matchesQuery rejects wrong id and wrong question', () => {
  const reply = (id: number, name: string) => dnsPacket.decode(dnsPacket.encode({ type: 'response', id, questions: [{ name, type: 'A', class: 'IN' }] }));
  assert.equal(matchesQuery(reply(1, 'a.example'), 1, 'A.example.', 'A'), true);
  assert.equal(matchesQuery(reply(2, 'a.example'), 1, 'a.example', 'A'), false);
  assert.equal(matchesQuery(reply(1, 'b.example'), 1, 'a.example', 'A'), false);
  assert.equal(matchesQuery(reply(1, 'a.example'), 1, 'a.example', 'MX'), false);
});

test('NOERROR answer with MX data, AD bit clear', async () => {
  const r = await client.query('example.com', 'MX');
  assert.equal(r.rcode, 'NOERROR');
  assert.equal(r.authenticatedData, false);
  assert.deepEqual(r.answers.map((a) => (a.type === 'MX' ? [a.data.preference, a.data.exchange] : null)), [[10, 'mx1.example.com']]);
});

test('NODATA and NXDOMAIN are results, not errors', async () => {
  const nodata = await client.query('example.com', 'AAAA');
  assert.equal(nodata.rcode, 'NOERROR');
  assert.equal(nodata.answers.length, 0);
  const nx = await client.query('nowhere.example', 'A');
  assert.equal(nx.rcode, 'NXDOMAIN');
});

test('AD bit is surfaced', async () => {
  const r = await client.query('signed.example', 'A');
  assert.equal(r.authenticatedData, true);
});

test('SERVFAIL is a DnsServerError', async () => {
  await assert.rejects(client.query('broken.example', 'A'), (e: unknown) => e instanceof DnsServerError && e.rcode === 'SERVFAIL');
});

test('a dead server gives DnsTimeoutError at the per-query deadline', async () => {
  await assert.rejects(client.query('dead.example', 'A', { timeoutMs: 300 }), DnsTimeoutError);
});

test('an AbortSignal ends the query with DnsTimeoutError', async () => {
  await assert.rejects(client.query('dead.example', 'A', { timeoutMs: 10000, signal: AbortSignal.timeout(200) }), DnsTimeoutError);
});

test('a truncated UDP answer is retried over TCP', async () => {
  const before = lab.queries.length;
  const r = await client.query('big.example', 'A');
  assert.deepEqual(r.answers.map((a) => (a.type === 'A' ? a.data : a.type)), ['192.0.2.1', '192.0.2.2']);
  assert.deepEqual(lab.queries.slice(before).map((q) => q.transport), ['udp', 'tcp']);
});

test('mismatched-ID and wrong-question datagrams are ignored', async () => {
  const r = await client.query('spoofed.example', 'A');
  assert.deepEqual(r.answers.map((a) => (a.type === 'A' ? a.data : a.type)), ['192.0.2.7']);
});

test('fails over to the next server when the first does not answer', async () => {
  const dead = await startDnsServer({ 'example.com': { drop: true } });
  try {
    const c = new DnsClient([{ host: dead.host, port: dead.port }, { host: lab.host, port: lab.port }], 2000);
    const r = await c.query('example.com', 'A');
    assert.deepEqual(r.answers.map((a) => (a.type === 'A' ? a.data : a.type)), ['127.0.0.1']);
  } finally {
    await dead.close();
  }
});
