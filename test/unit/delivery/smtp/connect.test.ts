import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PacketResolver } from '../../../../src/delivery/dns/resolver.ts';
import { applyAddressPreference, openSocket, resolveHop } from '../../../../src/delivery/smtp/connect.ts';
import type { ConnectSettings } from '../../../../src/delivery/smtp/connect.ts';
import type { LoopSettings } from '../../../../src/delivery/smtp/loop.ts';
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
    // IDNA: the lab serves only the A-label forms.
    'xn--bcher-kva.test': { MX: [[10, 'mx.xn--bcher-kva.test']] },
    'mx.xn--bcher-kva.test': { A: ['192.0.2.20'] },
    'xn--mnchen-3ya.test': { A: ['192.0.2.21'] },
    // Loops: we are MX 20 (192.0.2.50), a better MX 10 exists; we are the only MX.
    'backup.example': { MX: [[10, 'primary.backup.example'], [20, 'me.example']] },
    'primary.backup.example': { A: ['192.0.2.40'] },
    'me.example': { A: ['192.0.2.50'] },
    'only-me.example': { MX: [[10, 'me.example']] },
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

test('IDNA: a U-label domain is looked up and named in its A-label form; the next hop stays as written', async () => {
  const before = dns.queries.length;
  const r = await resolveHop('bücher.test', settings(), resolver);
  assert.ok(r.kind === 'targets', JSON.stringify(r));
  assert.deepEqual(r.targets.map((t) => [t.hostname, t.address, t.nexthop]), [['mx.xn--bcher-kva.test', '192.0.2.20', 'bücher.test']]);
  const b = await resolveHop('[München.test]:2525', settings(), resolver);
  assert.ok(b.kind === 'targets', JSON.stringify(b));
  assert.deepEqual(b.targets.map((t) => [t.hostname, t.address, t.port]), [['xn--mnchen-3ya.test', '192.0.2.21', 2525]]);
  // Postfix's text names the A-label.
  assert.deepEqual(await resolveHop('müller.test', settings(), resolver),
    { kind: 'fail', dsn: '5.4.4', reason: 'Host or domain name not found. Name service error for name=xn--mller-kva.test type=MX: Host not found' });
  const asked = dns.queries.slice(before).map((q) => q.name);
  assert.ok(asked.every((n) => /^[\x21-\x7e]+$/.test(n)), asked.join(' '));
});

test('IDNA: a name without a valid A-label form fails 5.4.4 without any DNS query', async () => {
  const before = dns.queries.length;
  for (const hop of ['bü--cher.test', '[bü--cher.test]', 'xn--a\u00e9.test']) {
    const r = await resolveHop(hop, settings(), resolver);
    assert.equal(r.kind, 'fail', hop);
    if (r.kind === 'fail') {
      assert.equal(r.dsn, '5.4.4');
      assert.match(r.reason, /^Name service error for .*: invalid host or domain name$/);
    }
  }
  assert.equal(dns.queries.length, before);
});

const LOOP: LoopSettings = {
  myhostname: 'me.example', listeners: [{ host: '192.0.2.50', port: 25 }, { host: '127.0.0.1', port: 2525 }], proxyAddresses: [], localAddresses: ['192.0.2.50'],
};

test('loops: [host] on one of our listeners is 5.4.6; another port of the same address is not us', async () => {
  assert.deepEqual(await resolveHop('[127.0.0.1]:2525', settings({ loop: LOOP }), resolver),
    { kind: 'fail', dsn: '5.4.6', reason: 'mail for 127.0.0.1 loops back to myself', loop: true });
  assert.deepEqual(await resolveHop('[me.example]', settings({ loop: LOOP }), resolver),
    { kind: 'fail', dsn: '5.4.6', reason: 'mail for me.example loops back to myself', loop: true });
  const other = await resolveHop('[127.0.0.1]:2526', settings({ loop: LOOP }), resolver);
  assert.equal(other.kind, 'targets');
  // Without loop settings (tls-finger's probes) nothing is checked.
  assert.equal((await resolveHop('[127.0.0.1]:2525', settings(), resolver)).kind, 'targets');
});

test('loops: an MX list is cut before our own preference (smtp_truncate_self); as the best MX the mail loops', async () => {
  const backup = await resolveHop('backup.example', settings({ loop: LOOP }), resolver);
  assert.ok(backup.kind === 'targets');
  assert.deepEqual(backup.targets.map((t) => [t.hostname, t.bestMx]), [['primary.backup.example', true]]);
  assert.deepEqual(await resolveHop('only-me.example', settings({ loop: LOOP }), resolver),
    { kind: 'fail', dsn: '5.4.6', reason: 'mail for only-me.example loops back to myself', loop: true });
  const all = await resolveHop('backup.example', settings(), resolver);
  assert.ok(all.kind === 'targets');
  assert.deepEqual(all.targets.map((t) => [t.hostname, t.bestMx]), [['primary.backup.example', true], ['me.example', false]]);
});
