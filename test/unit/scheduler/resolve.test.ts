/**
 * resolve.test.ts — the Router: domain classes, transport(5) result forms,
 * relayhost lists, sender-dependent maps, built-in agents, fail-closed
 * lookups, and local mail without local delivery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../harness/cli.ts';
import { loadConfig } from '../../../src/config/load.ts';
import { TableSet } from '../../../src/maps/registry.ts';
import { NO_LOCAL_DELIVERY, Router, splitNexthops, splitTransport, type Route } from '../../../src/scheduler/resolve.ts';

async function route(mainCf: string, recipient: string, sender = 'alice@sender.example', files: Record<string, string> = {}, localAddresses?: () => string[]): Promise<Route> {
  const t = tempDir();
  try {
    const base = 'myhostname = mx.home.example\nmydomain = home.example\n';
    writeFileSync(join(t.dir, 'main.cf'), base + mainCf.replaceAll('DIR', t.dir));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(t.dir, name), text);
    const config = loadConfig({ configDir: t.dir });
    const tables = new TableSet({ baseDir: t.dir });
    try {
      return await new Router({ config, tables, ...(localAddresses ? { localAddresses } : {}) }).resolve(recipient, sender);
    } finally {
      await tables.close();
    }
  } finally {
    t.cleanup();
  }
}

function deliverOf(r: Route) {
  assert.equal(r.kind, 'deliver', JSON.stringify(r));
  if (r.kind !== 'deliver') throw new Error('unreachable');
  return { transport: r.transport, nexthops: r.nexthops, domainClass: r.domainClass };
}

test('default class: default_transport smtp, next hop = recipient domain (lower case)', async () => {
  const r = await route('', 'bob@Example.COM');
  assert.deepEqual(deliverOf(r), { transport: 'smtp', nexthops: ['example.com'], domainClass: 'default' });
  // resolve.c strips one trailing dot.
  assert.deepEqual(deliverOf(await route('', 'bob@example.com.')).nexthops, ['example.com']);
});

test('relayhost: single, list with ports, brackets kept verbatim', async () => {
  assert.deepEqual(deliverOf(await route('relayhost = [smtp.provider.net]:587\n', 'bob@example.com')).nexthops, ['[smtp.provider.net]:587']);
  assert.deepEqual(deliverOf(await route('relayhost = mail1.example:587, mail2.example:587\n', 'bob@example.com')).nexthops, ['mail1.example:587', 'mail2.example:587']);
});

test('transport(5) result forms', async () => {
  const maps = 'relayhost = [relay.example]\ntransport_maps = inline:{{a.example=smtp:}, {b.example=smtp:[10.0.0.1]:2525}, {c.example=:[gw.example]}, {d.example=:}, {e.example=relay}, {f.example=smtp:x.example, y.example}}\n';
  // `smtp:` resets the next hop to the recipient domain (bypasses relayhost).
  assert.deepEqual(deliverOf(await route(maps, 'u@a.example')), { transport: 'smtp', nexthops: ['a.example'], domainClass: 'default' });
  assert.deepEqual(deliverOf(await route(maps, 'u@b.example')).nexthops, ['[10.0.0.1]:2525']);
  // `:[gw]` keeps the transport, changes the next hop.
  assert.deepEqual(deliverOf(await route(maps, 'u@c.example')), { transport: 'smtp', nexthops: ['[gw.example]'], domainClass: 'default' });
  // `:` changes nothing: relayhost stays.
  assert.deepEqual(deliverOf(await route(maps, 'u@d.example')).nexthops, ['[relay.example]']);
  // A transport without colon: transport set, next hop = domain.
  assert.deepEqual(deliverOf(await route(maps, 'u@e.example')), { transport: 'relay', nexthops: ['e.example'], domainClass: 'default' });
  // Lists (≥3.5).
  assert.deepEqual(deliverOf(await route(maps, 'u@f.example')).nexthops, ['x.example', 'y.example']);
});

test('transport_maps: .parent matches subdomains, * catches all, steps name the table and key', async () => {
  const r = await route('transport_maps = inline:{{.example.com=smtp:[sub-gw]}, {*=smtp:[star]}}\n', 'u@a.b.example.com');
  assert.deepEqual(deliverOf(r).nexthops, ['[sub-gw]']);
  assert.ok(r.steps.some((s) => s.what === 'transport_maps' && s.detail.includes('key ".example.com" -> "smtp:[sub-gw]"')), JSON.stringify(r.steps));
  assert.deepEqual(deliverOf(await route('transport_maps = inline:{{*=smtp:[star]}}\n', 'u@other.net')).nexthops, ['[star]']);
});

test('error:, retry:, discard: keep the text as the single next hop', async () => {
  const maps = 'transport_maps = inline:{{x.example=error:5.7.1 go away, now}, {y.example=retry:4.3.2 later}, {z.example=discard:silently}}\n';
  assert.deepEqual(deliverOf(await route(maps, 'u@x.example')), { transport: 'error', nexthops: ['5.7.1 go away, now'], domainClass: 'default' });
  assert.deepEqual(deliverOf(await route(maps, 'u@y.example')).transport, 'retry');
  assert.deepEqual(deliverOf(await route(maps, 'u@z.example')), { transport: 'discard', nexthops: ['silently'], domainClass: 'default' });
});

test('relay_domains → relay_transport; parent domains match (parent_domain_matches_subdomains)', async () => {
  const cf = 'relay_domains = partner.example\n';
  assert.deepEqual(deliverOf(await route(cf, 'u@partner.example')), { transport: 'relay', nexthops: ['partner.example'], domainClass: 'relay' });
  assert.deepEqual(deliverOf(await route(cf, 'u@sub.partner.example')).domainClass, 'relay');
  assert.deepEqual(deliverOf(await route(`${cf}relay_transport = relay:[inbound.partner]\nrelayhost = [out]\n`, 'u@partner.example')).nexthops, ['[inbound.partner]']);
});

test('relay_domains: table entries, .domain patterns, !negation; a table error defers', async () => {
  const cf = 'relay_domains = !no.partner.example, .partner.example, texthash:DIR/relay\nparent_domain_matches_subdomains =\n';
  const files = { relay: 'tabled.example OK\n' };
  assert.equal(deliverOf(await route(cf, 'u@a.partner.example', 'x@y', files)).domainClass, 'relay');
  assert.equal(deliverOf(await route(cf, 'u@no.partner.example', 'x@y', files)).domainClass, 'default');
  assert.equal(deliverOf(await route(cf, 'u@tabled.example', 'x@y', files)).domainClass, 'relay');
  // Without parent matching, a table entry does not cover subdomains (only .parent keys would).
  assert.equal(deliverOf(await route(cf, 'u@sub.tabled.example', 'x@y', files)).domainClass, 'default');
  const broken = await route('relay_domains = socketmap:inet:127.0.0.1:1:relay\n', 'u@example.com');
  assert.equal(broken.kind, 'defer');
});

test('virtual_alias_domains: unexpanded addresses go to error with Postfix\'s text', async () => {
  const r = await route('virtual_alias_domains = alias.example\ntransport_maps = inline:{{alias.example=smtp:[x]}}\n', 'who@alias.example');
  assert.deepEqual(deliverOf(r), { transport: 'error', nexthops: ['5.1.1 User unknown in virtual alias table'], domainClass: 'default' });
});

test('default_transport with a next hop wins over relayhost', async () => {
  const r = await route('default_transport = smtp:[dt.example]\nrelayhost = [rh.example]\n', 'u@example.com');
  assert.deepEqual(deliverOf(r).nexthops, ['[dt.example]']);
});

test('sender_dependent_relayhost_maps and sender_dependent_default_transport_maps', async () => {
  const cf = 'relayhost = [global]\nsender_dependent_relayhost_maps = inline:{{@vip.example=[vip-relay]:587}, {dunno@plain.example=DUNNO}, {<>=[bounce-relay]}}\n';
  assert.deepEqual(deliverOf(await route(cf, 'u@example.com', 'boss@vip.example')).nexthops, ['[vip-relay]:587']);
  assert.deepEqual(deliverOf(await route(cf, 'u@example.com', 'dunno@plain.example')).nexthops, ['[global]']);
  assert.deepEqual(deliverOf(await route(cf, 'u@example.com', '')).nexthops, ['[bounce-relay]']);
  const dt = 'sender_dependent_default_transport_maps = inline:{{@vip.example=relay:[vip-gw]}}\n';
  assert.deepEqual(deliverOf(await route(dt, 'u@example.com', 'boss@vip.example')), { transport: 'relay', nexthops: ['[vip-gw]'], domainClass: 'default' });
});

test('mydestination without transport entry bounces like local(8) for an unknown user', async () => {
  const r = await route('recipient_delimiter = +\n', 'Bob+ext@mx.home.example');
  assert.equal(r.kind, 'bounce');
  if (r.kind === 'bounce') assert.deepEqual([r.dsn, r.reason], ['5.1.1', `unknown user: "bob" ${NO_LOCAL_DELIVERY}`]);
  // transport_maps may route a local domain elsewhere.
  const moved = await route('transport_maps = inline:{{localhost.home.example=smtp:[mailbox-host]}}\n', 'bob@localhost.home.example');
  assert.deepEqual(deliverOf(moved), { transport: 'smtp', nexthops: ['[mailbox-host]'], domainClass: 'local' });
  // `:[gw]` keeps the local transport, and there is no local delivery.
  const kept = await route('transport_maps = inline:{{mx.home.example=:[gw]}}\n', 'bob@mx.home.example');
  assert.ok(kept.kind === 'bounce' && kept.reason === `unknown user: "bob" ${NO_LOCAL_DELIVERY}`);
  // An address without domain is local.
  assert.equal((await route('', 'bob')).kind, 'bounce');
});

test('the local double-bounce address is discarded as qmgr does', async () => {
  const r = await route('', 'double-bounce@mx.home.example');
  assert.deepEqual(deliverOf(r).transport, 'discard');
  if (r.kind === 'deliver') assert.deepEqual(r.nexthops, ['undeliverable postmaster notification discarded']);
});

test('fail closed: a lookup error or an unopenable table defers with 4.3.0', async () => {
  const missing = await route('transport_maps = hash:DIR/no-such-table\n', 'u@example.com');
  assert.equal(missing.kind, 'defer');
  if (missing.kind === 'defer') {
    assert.deepEqual([missing.dsn, missing.reason], ['4.3.0', 'address resolver failure']);
    assert.ok(missing.steps.some((s) => s.what === 'error' && s.detail.includes('no-such-table')));
  }
  const sock = await route('transport_maps = socketmap:inet:127.0.0.1:1:transport\n', 'u@example.com');
  assert.equal(sock.kind, 'defer');
});

test('null recipient and leading dash bounce with 5.1.3', async () => {
  const nul = await route('', '');
  assert.ok(nul.kind === 'bounce' && nul.reason === 'null recipient address' && nul.dsn === '5.1.3');
  const dash = await route('', '-oops@example.com');
  assert.ok(dash.kind === 'bounce' && dash.reason === 'bad address syntax');
});

test('smtp_fallback_relay is passed on for smtp routes', async () => {
  const r = await route('fallback_relay = [fb1], [fb2]:2525\n', 'u@example.com');
  assert.ok(r.kind === 'deliver');
  if (r.kind === 'deliver') assert.deepEqual(r.fallbackRelays, ['[fb1]', '[fb2]:2525']);
});

test('splitTransport / splitNexthops', () => {
  assert.deepEqual(splitTransport('smtp:[h]:25'), { transport: 'smtp', nexthop: '[h]:25' });
  assert.deepEqual(splitTransport('smtp'), { transport: 'smtp' });
  assert.deepEqual(splitTransport(':'), { transport: '', nexthop: '' });
  assert.deepEqual(splitNexthops(' a, b  c,'), ['a', 'b', 'c']);
});

test('address syntax (resolve.c): invalid domains and literals bounce 5.1.3 bad address syntax; UTF-8 only with smtputf8_enable', async () => {
  for (const rcpt of ['u@-bad.example', 'u@a..example', 'u@123', 'u@[300.1.1.1]', 'u@[::1]', 'u@[IPv6:zz]', 'u@bü--x.test', 'u@exa mple.com']) {
    const r = await route('', rcpt);
    assert.ok(r.kind === 'bounce' && r.dsn === '5.1.3' && r.reason === 'bad address syntax', `${rcpt}: ${JSON.stringify(r)}`);
  }
  // U-labels are routed in UTF-8 (table keys as written); the A-label form is the SMTP client's business.
  const u = await route('transport_maps = inline:{{bücher.test=smtp:[gw.example]}}\n', 'user@Bücher.test');
  assert.deepEqual(deliverOf(u).nexthops, ['[gw.example]']);
  assert.deepEqual(deliverOf(await route('', 'user@bücher.test')).nexthops, ['bücher.test']);
  const off = await route('smtputf8_enable = no\n', 'user@bücher.test');
  assert.ok(off.kind === 'bounce' && off.dsn === '5.1.3');
  // resolve_numeric_domain: user@1.2.3.4 is user@[1.2.3.4].
  assert.deepEqual(deliverOf(await route('resolve_numeric_domain = yes\n', 'u@192.0.2.9')).nexthops, ['[192.0.2.9]']);
  assert.deepEqual(deliverOf(await route('', 'u@[IPv6:2001:db8::1]')).nexthops, ['[ipv6:2001:db8::1]']);
});

test('resolve_local: an address literal of this machine is local (no loop through our own listener); others are routed', async () => {
  const machine = () => ['127.0.0.1', '::1', '192.0.2.2'];
  for (const [mainCf, rcpt] of [
    ['inet_interfaces = all\n', 'someone@[127.0.0.1]'],
    ['inet_interfaces = all\n', 'someone@[192.0.2.2]'],
    ['inet_interfaces = all\n', 'someone@[IPv6:::1]'],
    ['inet_interfaces = loopback-only\n', 'someone@[127.0.0.1]'],
    ['inet_interfaces = 192.0.2.2\n', 'someone@[192.0.2.2]'],
    ['inet_interfaces = 127.0.0.1\nproxy_interfaces = 198.51.100.7\n', 'someone@[198.51.100.7]'],
  ] as const) {
    const r = await route(mainCf, rcpt, 'alice@sender.example', {}, machine);
    assert.ok(r.kind === 'bounce' && r.dsn === '5.1.1' && r.reason === `unknown user: "someone" ${NO_LOCAL_DELIVERY}`, `${mainCf} ${rcpt}: ${JSON.stringify(r)}`);
    assert.ok(r.steps.some((s) => s.what === 'domain class' && s.detail.startsWith('local (')));
  }
  assert.deepEqual(deliverOf(await route('inet_interfaces = 127.0.0.1\n', 'someone@[192.0.2.2]', 'a@b.example', {}, machine)).nexthops, ['[192.0.2.2]']);
  assert.deepEqual(deliverOf(await route('inet_interfaces = all\n', 'someone@[192.0.2.77]', 'a@b.example', {}, machine)).nexthops, ['[192.0.2.77]']);
  // localhost is in the default mydestination.
  assert.equal((await route('', 'root@localhost')).kind, 'bounce');
});
