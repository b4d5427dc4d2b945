import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PacketResolver } from '../../../../src/delivery/dns/resolver.ts';
import { applyAddressPreference, openSocket, resolveHop } from '../../../../src/delivery/smtp/connect.ts';
import type { ConnectSettings } from '../../../../src/delivery/smtp/connect.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';
import { closedPort } from '../../../harness/smtp-receiver.ts';

let dns: DnsLab;
let resolver: PacketResolver;
before(async () => {
  dns = await startDnsServer({
    'example.com': { MX: [[20, 'mx2.example.com'], [10, 'mx1.example.com']] },
    'mx1.example.com': { A: ['192.0.2.1', '192.0.2.2'], AAAA: ['2001:db8::1'] },
    'mx2.example.com': { A: ['192.0.2.3'] },
    'host.example': { A: ['192.0.2.9'] },
    'nomx.example': { A: ['192.0.2.10'] },
    'null.example': { MX: [[0, '.']] },
    'broken.example': { servfail: true },
  });
  resolver = new PacketResolver([{ host: '127.0.0.1', port: dns.port }], 1000);
});
after(async () => dns.close());

const settings = (over: Partial<ConnectSettings> = {}): ConnectSettings => ({
  defaultPort: 25, inetProtocols: 'ipv4', addressLimit: 5, addressPreference: 'any', hostLookup: ['dns'],
  bindAddress: '', bindAddress6: '', random: () => 0.5, ...over,
});

test('domain: MX hosts in preference order, each with its addresses, default port', async () => {
  const r = await resolveHop('example.com', settings(), resolver);
  assert.equal(r.kind, 'targets');
  if (r.kind !== 'targets') return;
  assert.deepEqual(r.targets.map((t) => `${t.hostname}[${t.address}]:${t.port}`), [
    'mx1.example.com[192.0.2.1]:25', 'mx1.example.com[192.0.2.2]:25', 'mx2.example.com[192.0.2.3]:25',
  ]);
  assert.ok(r.targets.every((t) => t.nexthop === 'example.com'));
});

test('domain:port keeps the MX lookup and uses the port; smtp_mx_address_limit truncates', async () => {
  const r = await resolveHop('example.com:2525', settings({ addressLimit: 2 }), resolver);
  assert.ok(r.kind === 'targets');
  assert.deepEqual(r.targets.map((t) => `${t.address}:${t.port}`), ['192.0.2.1:2525', '192.0.2.2:2525']);
});

test('[host] and [host]:port: no MX lookup; [ip] used as is; service names resolve', async () => {
  const a = await resolveHop('[host.example]', settings(), resolver);
  assert.ok(a.kind === 'targets');
  assert.deepEqual(a.targets.map((t) => [t.hostname, t.address, t.port]), [['host.example', '192.0.2.9', 25]]);
  const b = await resolveHop('[192.0.2.77]:submission', settings(), resolver);
  assert.ok(b.kind === 'targets');
  assert.deepEqual(b.targets.map((t) => [t.hostname, t.address, t.port]), [['192.0.2.77', '192.0.2.77', 587]]);
  const c = await resolveHop('[example.com]', settings(), resolver);
  assert.deepEqual(c, { kind: 'fail', dsn: '5.4.4', reason: 'Host or domain name not found. Name service error for name=example.com type=A: Host found but no data record of requested type' });
});

test('implicit MX, null MX, NXDOMAIN, SERVFAIL, unknown service', async () => {
  const i = await resolveHop('nomx.example', settings(), resolver);
  assert.ok(i.kind === 'targets');
  assert.equal(i.targets[0]!.address, '192.0.2.10');
  assert.deepEqual(await resolveHop('null.example', settings(), resolver), { kind: 'fail', dsn: '5.1.0', reason: 'Domain null.example does not accept mail (nullMX)' });
  const nx = await resolveHop('gone.example', settings(), resolver);
  assert.deepEqual([nx.kind, nx.kind === 'fail' ? nx.dsn : ''], ['fail', '5.4.4']);
  const sf = await resolveHop('broken.example', settings(), resolver);
  assert.deepEqual(sf, { kind: 'fail', dsn: '4.4.3', reason: 'Host or domain name not found. Name service error for name=broken.example type=MX: Host not found, try again' });
  assert.deepEqual(await resolveHop('[host.example]:nosuchservice', settings(), resolver), { kind: 'fail', dsn: '4.3.5', reason: 'unknown service: nosuchservice/tcp' });
});

test('smtp_address_preference = ipv6 puts IPv6 first within one MX preference', async () => {
  const r = await resolveHop('example.com', settings({ inetProtocols: 'all', addressPreference: 'ipv6' }), resolver);
  assert.ok(r.kind === 'targets');
  assert.deepEqual(r.targets.map((t) => t.address), ['2001:db8::1', '192.0.2.1', '192.0.2.2', '192.0.2.3']);
  const list = [{ preference: 0, family: 6 as const, id: 'a' }, { preference: 0, family: 4 as const, id: 'b' }];
  assert.deepEqual(applyAddressPreference(list, 'ipv4').map((x) => x.id), ['b', 'a']);
  assert.deepEqual(applyAddressPreference(list, 'any').map((x) => x.id), ['a', 'b']);
});

test('smtp_host_lookup = native resolves [localhost] through the system resolver', async () => {
  const r = await resolveHop('[localhost]', settings({ hostLookup: ['native'] }), resolver);
  assert.ok(r.kind === 'targets');
  assert.equal(r.targets[0]!.address, '127.0.0.1');
});

test('openSocket: Connection refused as strerror text', async () => {
  const port = await closedPort(['127.0.0.2']);
  assert.deepEqual(await openSocket({ address: '127.0.0.2', port }, 1000, { bindAddress: '', bindAddress6: '' }), { ok: false, error: 'Connection refused' });
});
