/**
 * resolver.test.ts — found / notfound / tempfail results of PacketResolver
 * against the lab server, merging of A/AAAA, and sealpost_dns_resolvers parsing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PacketResolver, SystemResolver, mergeAddressResults, parseResolverList } from '../../../../src/delivery/dns/resolver.ts';
import { ConfigError } from '../../../../src/lib/errors.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';

let lab: DnsLab;
let resolver: PacketResolver;

before(async () => {
  lab = await startDnsServer({
    'example.com': { MX: [[10, 'mx1.example.com'], [20, 'mx2.example.com']], A: ['192.0.2.1'], AAAA: ['2001:db8::1'], ad: true },
    'v4only.example': { A: ['192.0.2.4'] },
    'half.example': { A: ['192.0.2.5'] },
    'broken.example': { servfail: true },
    'dead.example': { drop: true },
    '_mta-sts.example.com': { TXT: [['v=STSv1; ', 'id=20240101'], 'unrelated'], ad: true },
    '_25._tcp.mx1.example.com': { TLSA: [[3, 1, 1, 'abcd']], ad: true, ttl: 42 },
    'www.example.com': { CNAME: 'example.com', ad: true },
    'alias.example': { CNAME: 'target.example' },
    'target.example': { A: ['192.0.2.77'] },
  });
  resolver = new PacketResolver([{ host: lab.host, port: lab.port }], 300);
});
after(async () => { await lab.close(); });

test('mx: found with records and the AD bit', async () => {
  assert.deepEqual(await resolver.mx('example.com'), {
    status: 'found',
    records: [{ preference: 10, exchange: 'mx1.example.com' }, { preference: 20, exchange: 'mx2.example.com' }],
    authenticated: true,
    ttl: 300,
  });
});

test('mx: NODATA and NXDOMAIN are notfound with the reason', async () => {
  assert.deepEqual(await resolver.mx('v4only.example'), { status: 'notfound', reason: 'NODATA', authenticated: false });
  assert.deepEqual(await resolver.mx('nowhere.example'), { status: 'notfound', reason: 'NXDOMAIN', authenticated: false });
});

test('mx: SERVFAIL and timeout are tempfail', async () => {
  assert.equal((await resolver.mx('broken.example')).status, 'tempfail');
  const t = await resolver.mx('dead.example');
  assert.equal(t.status, 'tempfail');
});

test('addresses respects the families asked for', async () => {
  const both = await resolver.addresses('example.com', ['ipv4', 'ipv6']);
  assert.equal(both.status, 'found');
  assert.deepEqual(both.status === 'found' && both.records, [{ address: '192.0.2.1', family: 4 }, { address: '2001:db8::1', family: 6 }]);
  const v6 = await resolver.addresses('example.com', ['ipv6']);
  assert.deepEqual(v6.status === 'found' && v6.records, [{ address: '2001:db8::1', family: 6 }]);
  assert.deepEqual(await resolver.addresses('v4only.example', ['ipv6']), { status: 'notfound', reason: 'NODATA', authenticated: false });
});

test('mergeAddressResults: found beats tempfail, tempfail beats notfound', () => {
  const found = { status: 'found', records: [{ address: '192.0.2.1', family: 4 }], authenticated: false } as const;
  const temp = { status: 'tempfail', reason: 'x' } as const;
  const nx = { status: 'notfound', reason: 'NXDOMAIN', authenticated: false } as const;
  assert.equal(mergeAddressResults([temp, found]).status, 'found');
  assert.equal(mergeAddressResults([nx, temp]).status, 'tempfail');
  assert.deepEqual(mergeAddressResults([nx, { status: 'notfound', reason: 'NODATA', authenticated: false }]),
    { status: 'notfound', reason: 'NXDOMAIN', authenticated: false });
});

test('parseResolverList accepts ip, ip:port, [ipv6]:port and bare ipv6', () => {
  assert.deepEqual(parseResolverList(['127.0.0.1', '127.0.0.1:5300', '[::1]:5353', '[::1]', '2001:db8::53']), [
    { host: '127.0.0.1', port: 53 },
    { host: '127.0.0.1', port: 5300 },
    { host: '::1', port: 5353 },
    { host: '::1', port: 53 },
    { host: '2001:db8::53', port: 53 },
  ]);
});

test('parseResolverList rejects host names and bad ports with a ConfigError naming the entry', () => {
  for (const bad of ['dns.example', '127.0.0.1:0', '127.0.0.1:70000', '[127.0.0.1]:53', '1.2.3:53']) {
    assert.throws(() => parseResolverList([bad]), (e: unknown) =>
      e instanceof ConfigError && e.message.includes(`"${bad}"`) && e.message.includes('sealpost_dns_resolvers'));
  }
});

test('SystemResolver maps node:dns answers and errors to results', async () => {
  const sys = new SystemResolver(1000, [`${lab.host}:${lab.port}`]);
  const mx = await sys.mx('example.com');
  assert.deepEqual(mx.status === 'found' && mx.records.map((r) => r.exchange).sort(), ['mx1.example.com', 'mx2.example.com']);
  assert.equal(mx.status === 'found' && mx.authenticated, false);
  assert.deepEqual(await sys.mx('nowhere.example'), { status: 'notfound', reason: 'NXDOMAIN', authenticated: false });
  assert.deepEqual(await sys.addresses('v4only.example', ['ipv6']), { status: 'notfound', reason: 'NODATA', authenticated: false });
  assert.equal((await sys.mx('broken.example')).status, 'tempfail');
});

test('SystemResolver: a dead server is a tempfail at our deadline', async () => {
  const r = await new SystemResolver(300, [`${lab.host}:${lab.port}`]).mx('dead.example');
  assert.equal(r.status, 'tempfail');
});

test('txt: multi-string records concatenated without spaces, one string per record', async () => {
  const r = await resolver.txt('_mta-sts.example.com');
  assert.deepEqual(r, { status: 'found', records: ['v=STSv1; id=20240101', 'unrelated'], authenticated: true, ttl: 300 });
  assert.deepEqual(await resolver.txt('v4only.example'), { status: 'notfound', reason: 'NODATA', authenticated: false });
});

test('tlsa: owner and rdata bytes with the AD bit; cname: the target', async () => {
  const r = await resolver.tlsa('_25._tcp.mx1.example.com');
  assert.ok(r.status === 'found');
  assert.equal(r.authenticated, true);
  assert.equal(r.records[0]!.owner, '_25._tcp.mx1.example.com');
  assert.equal(r.records[0]!.rdata.toString('hex'), '030101abcd');
  assert.equal(r.ttl, 42, 'the TTL of the answer (answer-cache.ts keeps it that long)');
  assert.deepEqual(await resolver.cname('www.example.com'), { status: 'found', records: ['example.com'], authenticated: true, ttl: 300 });
  assert.equal((await resolver.cname('example.com')).status, 'notfound');
});

test('addresses behind a CNAME carry the canonical name; the lab sets AD only when asked with DO', async () => {
  const r = await resolver.addresses('alias.example', ['ipv4']);
  assert.deepEqual(r, { status: 'found', records: [{ address: '192.0.2.77', family: 4, canonicalName: 'target.example' }], authenticated: false });
  const sys = new SystemResolver(1000, [`${lab.host}:${lab.port}`]);
  // node:dns sends no DO bit: never authenticated, even for a secure name.
  assert.deepEqual(await sys.txt('_mta-sts.example.com'), { status: 'found', records: ['v=STSv1; id=20240101', 'unrelated'], authenticated: false });
  assert.deepEqual(await sys.tlsa('_25._tcp.mx1.example.com'), { status: 'notfound', reason: 'NODATA', authenticated: false });
  assert.deepEqual(await sys.cname('www.example.com'), { status: 'found', records: ['example.com'], authenticated: false });
  assert.ok(lab.queries.some((q) => q.name === '_mta-sts.example.com' && !q.dnssecOk));
  assert.ok(lab.queries.some((q) => q.name === '_mta-sts.example.com' && q.dnssecOk));
});
