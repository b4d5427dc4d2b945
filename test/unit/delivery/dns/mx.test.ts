/**
 * mx.test.ts — Postfix's MX logic over the lab DNS server: preference order,
 * deterministic shuffling of equal preferences, implicit MX, null MX,
 * NXDOMAIN, SERVFAIL → temporary, numeric MX names, inet_protocols, the
 * smtp_mx_address_limit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { orderMx, resolveMx } from '../../../../src/delivery/dns/mx.ts';
import type { MxResolution } from '../../../../src/delivery/dns/mx.ts';
import { PacketResolver } from '../../../../src/delivery/dns/resolver.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';

let lab: DnsLab;
let resolver: PacketResolver;

before(async () => {
  lab = await startDnsServer({
    'pref.example': { MX: [[20, 'b.pref.example'], [10, 'a.pref.example']], ad: true },
    'a.pref.example': { A: ['192.0.2.10'] },
    'b.pref.example': { A: ['192.0.2.20'], AAAA: ['2001:db8::20'] },
    'eq.example': { MX: [[10, 'x.eq.example'], [10, 'y.eq.example'], [10, 'z.eq.example']] },
    'x.eq.example': { A: ['192.0.2.1'] },
    'y.eq.example': { A: ['192.0.2.2'] },
    'z.eq.example': { A: ['192.0.2.3'] },
    'implicit.example': { A: ['192.0.2.99'] },
    'noaddr.example': { TXT: ['v=spf1 -all'] },
    'nullmx.example': { MX: [[0, '.']] },
    'broken.example': { servfail: true },
    'dead.example': { drop: true },
    'numeric.example': { MX: [[10, '192.0.2.5'], [20, 'ok.numeric.example']] },
    'ok.numeric.example': { A: ['192.0.2.6'] },
    'allnumeric.example': { MX: [[10, '192.0.2.5']], A: ['192.0.2.7'] },
    'hosttemp.example': { MX: [[10, 'dead.example']] },
    'hostnone.example': { MX: [[10, 'nowhere.example']] },
    'many.example': { MX: [[10, 'm1.many.example'], [20, 'm2.many.example']] },
    'm1.many.example': { A: ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4'] },
    'm2.many.example': { A: ['192.0.2.5', '192.0.2.6', '192.0.2.7'] },
    'sec.example': { MX: [[10, 'mx.sec.example'], [20, 'alias.sec.example']], ad: true },
    'mx.sec.example': { A: ['192.0.2.30'], ad: true },
    'alias.sec.example': { CNAME: 'mx.hoster.example', ad: true },
    'mx.hoster.example': { A: ['192.0.2.31'], AAAA: ['2001:db8::31'] },
  });
  resolver = new PacketResolver([{ host: lab.host, port: lab.port }], 300);
});
after(async () => { await lab.close(); });

function addrs(r: MxResolution): string[] {
  assert.equal(r.kind, 'targets');
  return r.kind === 'targets' ? r.targets.map((t) => `${t.preference} ${t.hostname} ${t.address}`) : [];
}

test('MX hosts are tried in preference order, each with its A/AAAA records', async () => {
  const r = await resolveMx('pref.example', resolver);
  assert.deepEqual(addrs(r), ['10 a.pref.example 192.0.2.10', '20 b.pref.example 192.0.2.20', '20 b.pref.example 2001:db8::20']);
  assert.equal(r.kind === 'targets' && r.implicit, false);
  assert.equal(r.kind === 'targets' && r.mxAuthenticated, true);
});

test('inet_protocols limits the address families', async () => {
  assert.deepEqual(addrs(await resolveMx('pref.example', resolver, { inetProtocols: 'ipv4' })),
    ['10 a.pref.example 192.0.2.10', '20 b.pref.example 192.0.2.20']);
  assert.deepEqual(addrs(await resolveMx('pref.example', resolver, { inetProtocols: 'ipv6' })),
    ['20 b.pref.example 2001:db8::20']);
});

test('equal preferences are shuffled by the injected randomness', async () => {
  const zero = await resolveMx('eq.example', resolver, { random: () => 0 });
  const high = await resolveMx('eq.example', resolver, { random: () => 0.999 });
  assert.deepEqual(addrs(zero), ['10 y.eq.example 192.0.2.2', '10 z.eq.example 192.0.2.3', '10 x.eq.example 192.0.2.1']);
  assert.deepEqual(addrs(high), ['10 x.eq.example 192.0.2.1', '10 y.eq.example 192.0.2.2', '10 z.eq.example 192.0.2.3']);
});

test('orderMx never lets randomness break preference order', () => {
  const recs = [{ preference: 30, exchange: 'c' }, { preference: 10, exchange: 'a' }, { preference: 20, exchange: 'b' }];
  for (const v of [0, 0.3, 0.6, 0.99]) assert.deepEqual(orderMx(recs, () => v).map((r) => r.exchange), ['a', 'b', 'c']);
});

test('no MX record: the domain itself is an implicit MX 0', async () => {
  const r = await resolveMx('implicit.example', resolver);
  assert.deepEqual(addrs(r), ['0 implicit.example 192.0.2.99']);
  assert.equal(r.kind === 'targets' && r.implicit, true);
});

test('no MX and no address: permanent, Postfix text', async () => {
  assert.deepEqual(await resolveMx('noaddr.example', resolver, { inetProtocols: 'ipv4' }), {
    kind: 'notfound', dsn: '5.4.4',
    text: 'Host or domain name not found. Name service error for name=noaddr.example type=A: Host found but no data record of requested type',
  });
});

test('null MX (RFC 7505) is its own result with Postfix text', async () => {
  assert.deepEqual(await resolveMx('nullmx.example', resolver),
    { kind: 'nullmx', dsn: '5.1.0', text: 'Domain nullmx.example does not accept mail (nullMX)' });
});

test('NXDOMAIN is permanent', async () => {
  assert.deepEqual(await resolveMx('nowhere.example', resolver), {
    kind: 'notfound', dsn: '5.4.4',
    text: 'Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found',
  });
});

test('SERVFAIL and timeout on the MX lookup are temporary, never "no MX"', async () => {
  for (const d of ['broken.example', 'dead.example']) {
    assert.deepEqual(await resolveMx(d, resolver), {
      kind: 'tempfail', dsn: '4.4.3',
      text: `Host or domain name not found. Name service error for name=${d} type=MX: Host not found, try again`,
    });
  }
});

test('numeric MX host names are refused with Postfix warning', async () => {
  const warnings: string[] = [];
  const r = await resolveMx('numeric.example', resolver, { warn: (m) => warnings.push(m) });
  assert.deepEqual(addrs(r), ['20 ok.numeric.example 192.0.2.6']);
  assert.deepEqual(warnings, ['numeric domain name in resource data of MX record for numeric.example: 192.0.2.5']);
  const all = await resolveMx('allnumeric.example', resolver);
  assert.equal(all.kind, 'tempfail');
});

test('an MX host whose address lookup fails temporarily defers; none with addresses bounces', async () => {
  assert.equal((await resolveMx('hosttemp.example', resolver)).kind, 'tempfail');
  assert.deepEqual(await resolveMx('hostnone.example', resolver),
    { kind: 'notfound', dsn: '5.4.4', text: 'no MX host for hostnone.example has a valid address record' });
});

test('smtp_mx_address_limit truncates the address list (0 = no limit)', async () => {
  assert.equal(addrs(await resolveMx('many.example', resolver)).length, 5);
  assert.deepEqual(addrs(await resolveMx('many.example', resolver, { addressLimit: 2 })),
    ['10 m1.many.example 192.0.2.1', '10 m1.many.example 192.0.2.2']);
  assert.equal(addrs(await resolveMx('many.example', resolver, { addressLimit: 0 })).length, 7);
});

test('each target records its own AD bit and the CNAME-expanded name (DANE needs both)', async () => {
  const r = await resolveMx('sec.example', resolver);
  assert.ok(r.kind === 'targets');
  assert.equal(r.mxAuthenticated, true);
  assert.deepEqual(r.targets.map((t) => [t.hostname, t.address, t.addressAuthenticated, t.canonicalName]), [
    ['mx.sec.example', '192.0.2.30', true, undefined],
    ['alias.sec.example', '192.0.2.31', false, 'mx.hoster.example'],
    ['alias.sec.example', '2001:db8::31', false, 'mx.hoster.example'],
  ]);
  assert.equal('canonicalName' in r.targets[0]!, false);
});
