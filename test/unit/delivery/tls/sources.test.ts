/**
 * sources.test.ts — the policy sources through the two steps of policy.ts:
 * smtp_tls_policy_maps keys in the trace, the obsolete smtp_tls_per_site
 * looked up by next hop and by server host name (Postfix's merge, a lookup
 * error at the server step deferring only that server with Temporary lookup
 * error), the server step returning the hop policy itself when nothing
 * changes, and a source of the kind issue 11 adds (per-server skip) plugged
 * in without touching the callers; the DANE and MTA-STS sources (lookups
 * only where they can apply, fail closed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import type { LookupResult } from '../../../../src/maps/types.ts';
import type { WalkTable } from '../../../../src/maps/domain-walk.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { createTlsEngine } from '../../../../src/delivery/tls/engine.ts';
import { decideHop, decideServer, policySources, type PolicyEnv } from '../../../../src/delivery/tls/policy.ts';
import type { PolicySource } from '../../../../src/delivery/tls/sources/types.ts';
import { daneSource } from '../../../../src/delivery/tls/sources/dane.ts';
import { stsSource } from '../../../../src/delivery/tls/sources/mta-sts.ts';
import type { LookupResult as DnsResult, PolicyResolver, TlsaRdata } from '../../../../src/delivery/dns/resolver.ts';
import type { StsLookup } from '../../../../src/delivery/mta-sts/service.ts';
import type { HopQuery, ServerQuery } from '../../../../src/delivery/tls/sources/types.ts';
import type { ServerIdentity } from '../../../../src/delivery/tls/types.ts';
import { tempDir } from '../../../harness/cli.ts';
import { connectable } from '../../../harness/policy.ts';

const msg = { tlsRequiredNo: false, requireTls: false };
const mx = (hostname: string): ServerIdentity => ({ hostname, address: '192.0.2.1', port: 25, mxAuthenticated: false });

function setup(mainCf: string, files: Record<string, string> = {}) {
  const t = tempDir('sealpost-tls-sources-');
  mkdirSync(t.dir, { recursive: true });
  writeFileSync(join(t.dir, 'main.cf'), mainCf);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(t.dir, name), text);
  const config = loadConfig({ configDir: t.dir });
  const log = memoryMailLog();
  const tables = new TableSet({ baseDir: t.dir });
  return { config, log, tables, engine: createTlsEngine({ config, tables, log }), done: async () => { await tables.close(); t.cleanup(); } };
}

/** A table whose lookups answer from a map, or fail for keys listed in `errors`. */
function memoryTable(spec: string, entries: Record<string, string>, errors: readonly string[] = []): WalkTable {
  return {
    spec,
    keyKind: 'fixed',
    async lookup(key: string): Promise<LookupResult> {
      if (errors.includes(key)) return { kind: 'error', error: { message: `${spec}: lookup of "${key}" failed` } };
      return key in entries ? { kind: 'found', value: entries[key]! } : { kind: 'notfound' };
    },
  };
}

test('the policy-maps answer lists every key tried, in order, in the trace', async () => {
  const s = setup('smtp_tls_policy_maps = texthash:$config_directory/pol\n', { pol: '.example.com secure\n' });
  try {
    const d = await decideHop({ config: s.config, openTable: (x) => s.tables.get(x), warn: () => undefined }, 'a.example.com', msg);
    const step = d.trace.steps.find((x) => x.source === 'table')!;
    assert.deepEqual(step.answer.tried?.map((t) => t.key), ['a.example.com', '.example.com']);
    assert.equal(d.trace.winner, 'table');
    assert.equal(d.policy.applied.source, 'table');
    assert.deepEqual(d.policy.applied.tableEntry, { table: step.answer.tried![1]!.table, key: '.example.com', value: 'secure' });
    assert.equal(d.policy.applied.type, 'no-policy-found');
    assert.equal(d.policy.applied.domain, 'a.example.com');
  } finally {
    await s.done();
  }
});

test('smtp_tls_per_site: next-hop entry at the hop step, server host-name entry at the server step, merged as Postfix does', async () => {
  const s = setup('smtp_tls_security_level = may\nsmtp_tls_per_site = texthash:$config_directory/site\n', {
    site: 'example.com MAY\nmx1.example.com MUST\nmx2.example.com NONE\n',
  });
  try {
    const hopPolicy = connectable(await s.engine.policyFor('example.com', msg));
    assert.equal(hopPolicy.level, 'may');
    const one = await s.engine.serverPolicy(hopPolicy, mx('mx1.example.com'));
    assert.equal(one.kind, 'connect');
    assert.equal(one.kind === 'connect' && one.policy.level, 'verify');
    assert.equal(one.kind === 'connect' && one.policy.applied.source, 'per-site');
    assert.deepEqual(one.kind === 'connect' && one.policy.match, ['hostname']);
    const two = await s.engine.serverPolicy(hopPolicy, mx('mx2.example.com'));
    assert.equal(two.kind === 'connect' && two.policy.level, 'none', 'NONE overrides the next hop\'s MAY');
    // No entry for the host: the hop policy itself (the same object: contexts and cache keys stay shared).
    const three = await s.engine.serverPolicy(hopPolicy, mx('mx3.example.com'));
    assert.equal(three.kind === 'connect' && three.policy, hopPolicy);
  } finally {
    await s.done();
  }
});

test('smtp_tls_per_site: a lookup error for the server host name defers that server only, with Temporary lookup error', async () => {
  const s = setup('smtp_tls_security_level = may\nsmtp_tls_per_site = memory:site\n');
  const warnings: string[] = [];
  const env: PolicyEnv = { config: s.config, warn: (w) => warnings.push(w), openTable: async () => memoryTable('memory:site', { 'example.com': 'MUST_NOPEERMATCH' }, ['broken.example.com']) };
  try {
    const hop = await decideHop(env, 'example.com', msg);
    assert.equal(hop.policy.level, 'encrypt');
    const d = await decideServer(env, hop, mx('broken.example.com'));
    assert.equal(d.verdict.kind, 'defer');
    assert.deepEqual(d.verdict.kind === 'defer' && d.verdict.deferral, { reason: 'Temporary lookup error', dsn: '4.3.0' });
    assert.ok(warnings.includes('memory:site: server hostname "broken.example.com": per-site table lookup error'), warnings.join('\n'));
    assert.ok(warnings.includes('TLS policy lookup for example.com/broken.example.com: Temporary lookup error'), warnings.join('\n'));
    // At the hop step the same error makes no connection at all.
    const bad = await decideHop({ ...env, openTable: async () => memoryTable('memory:site', {}, ['example.com']) }, 'example.com', msg);
    assert.equal(bad.policy.level, 'invalid');
    assert.equal(bad.policy.level === 'invalid' && bad.policy.invalid.reason, 'Temporary lookup error');
  } finally {
    await s.done();
  }
});

test('a per-server source plugs in without touching the callers: skip an MX the policy does not list', async () => {
  const s = setup('smtp_tls_security_level = encrypt\n');
  const env0: PolicyEnv = { config: s.config, warn: () => undefined, openTable: (x) => s.tables.get(x) };
  const listed: PolicySource = {
    name: 'mta-sts',
    hop: () => ({ kind: 'silent', note: 'fetched a policy (test)' }),
    server: (q) => (q.server.hostname.endsWith('.example.com')
      ? { kind: 'silent', note: `${q.server.hostname} is listed` }
      : { kind: 'skip-server', reason: `MX ${q.server.hostname} is not listed`, dsn: '4.7.5', resultType: 'validation-failure', note: 'not listed' }),
  };
  // The fake takes the place of the real MTA-STS source.
  const env: PolicyEnv = { ...env0, sources: [...policySources(env0).filter((x) => x.name !== 'mta-sts'), listed] };
  try {
    const hop = await decideHop(env, 'example.com', msg);
    const ok = await decideServer(env, hop, mx('mx.example.com'));
    assert.equal(ok.verdict.kind === 'connect' && ok.verdict.policy, hop.policy);
    const skip = await decideServer(env, hop, mx('evil.example.net'));
    assert.deepEqual(skip.verdict.kind === 'skip' && [skip.verdict.reason, skip.verdict.dsn, skip.verdict.resultType, skip.verdict.applied.source], ['MX evil.example.net is not listed', '4.7.5', 'validation-failure', 'mta-sts']);
    assert.deepEqual(skip.trace.steps.map((x) => `${x.source}/${x.step}`), ['default/hop', 'tls-required-no/hop', 'table/hop', 'dane/hop', 'mta-sts/hop', 'dane/server', 'mta-sts/server']);
  } finally {
    await s.done();
  }
});

// ---------------------------------------------------------------- the DANE and MTA-STS sources


/** A resolver answering TLSA from a map (tempfail for `fail`). */
function tlsaResolver(answers: Record<string, DnsResult<TlsaRdata>>): PolicyResolver & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    txt: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }),
    cname: async () => ({ status: 'notfound', reason: 'NXDOMAIN', authenticated: false }),
    tlsa: async (name: string) => {
      asked.push(name);
      return answers[name] ?? { status: 'notfound', reason: 'NXDOMAIN', authenticated: true };
    },
  };
}

function daneQuery(level: 'dane' | 'dane-only' | 'may', over: Partial<ServerQuery['server']> = {}): ServerQuery {
  return {
    nexthop: 'example.com', nexthopDomain: 'example.com', message: msg, hopLevel: level,
    server: { hostname: 'mx.example.com', address: '192.0.2.1', port: 25, mxAuthenticated: true, addressAuthenticated: true, ...over },
  };
}

const rdata = (hex: string): TlsaRdata => ({ owner: '_25._tcp.mx.example.com', rdata: Buffer.from(hex, 'hex') });

test('DANE source: asked only for dane/dane-only; usable records → published tlsa; SERVFAIL → defer-server (dnssec-invalid)', async () => {
  const s = setup('smtp_dns_support_level = dnssec\n');
  const warnings: string[] = [];
  try {
    const digest = 'ab'.repeat(32);
    const resolver = tlsaResolver({ '_25._tcp.mx.example.com': { status: 'found', records: [rdata(`030101${digest}`)], authenticated: true } });
    const src = daneSource({ config: s.config, resolver, warn: (w) => warnings.push(w), reportDomain: (d) => d });
    assert.deepEqual(await src.server!(daneQuery('may'), undefined), { kind: 'silent', note: 'not asked: level may' });
    assert.equal(resolver.asked.length, 0, 'no lookup for a level that is not dane');
    const a = await src.server!(daneQuery('dane'), undefined);
    assert.equal(a.kind, 'published');
    assert.ok(a.kind === 'published' && a.published.kind === 'tlsa');
    assert.deepEqual(a.kind === 'published' && a.published.kind === 'tlsa' && [a.published.dane.baseDomain, a.published.dane.halfdane, a.published.report.type, [...a.published.report.strings]], ['mx.example.com', false, 'tlsa', [`3 1 1 ${digest}`]]);
    const failing = daneSource({ config: s.config, resolver: tlsaResolver({ '_25._tcp.mx.example.com': { status: 'tempfail', reason: 'SERVFAIL' } }), warn: (w) => warnings.push(w), reportDomain: (d) => d });
    const f = await failing.server!(daneQuery('dane'), undefined);
    assert.deepEqual(f.kind === 'defer-server' && [f.deferral.reason, f.deferral.dsn, f.resultType], ['TLSA lookup error for mx.example.com:25', '4.7.5', 'dnssec-invalid']);
    assert.ok(warnings.includes('DANE TLSA lookup problem: SERVFAIL'), warnings.join('\n'));
    // Insecure host address: no TLSA lookup; dane falls back, dane-only defers.
    const insecure = await src.server!(daneQuery('dane', { addressAuthenticated: false }), undefined);
    assert.ok(insecure.kind === 'published' && insecure.published.kind === 'dane-fallback' && insecure.published.level === 'may');
    const only = await src.server!(daneQuery('dane-only', { mxAuthenticated: false }), undefined);
    assert.deepEqual(only.kind === 'defer-server' && [only.deferral.reason, only.resultType], ['non DNSSEC destination', 'dane-required']);
    // Without DNSSEC lookups the hop step decided already: silent.
    const off = setup('smtp_dns_support_level = enabled\n');
    const offSrc = daneSource({ config: off.config, resolver, warn: () => undefined, reportDomain: (d) => d });
    assert.equal((await offSrc.server!(daneQuery('dane'), undefined)).kind, 'silent');
    await off.done();
  } finally {
    await s.done();
  }
});

test('MTA-STS source: not consulted where a table entry decides, for [host], with TLS-Required: No; a service error fails closed', async () => {
  const asked: string[] = [];
  const answers: Record<string, StsLookup> = {
    'example.com': { kind: 'policy', from: 'cache', policy: { domain: 'example.com', id: '1', fetchedAt: 0, expiresAt: 1e15, mode: 'enforce', mx: ['*.example.com'], maxAge: 86400, lines: [] } },
    'broken.example': { kind: 'error', detail: 'the MTA-STS policy service is gone' },
  };
  const warnings: string[] = [];
  const src = stsSource({ enabled: true, warn: (w) => warnings.push(w), sts: { lookup: async (d) => { asked.push(d); return answers[d] ?? { kind: 'none', why: 'no-record', detail: 'no TXT record' }; } } });
  const q = (nexthop: string, extra: Partial<HopQuery> = {}): HopQuery => ({ nexthop, nexthopDomain: nexthop.replace(/^\[|\].*$/g, ''), message: msg, ...extra });
  const table = new Map([['table' as const, { kind: 'demand' as const, level: 'encrypt' as const, note: 'found' }]]);
  assert.deepEqual(await src.hop!(q('example.com', { earlier: table })), { kind: 'silent', note: 'not consulted: the policy table entry decides' });
  assert.deepEqual(await src.hop!(q('[mx.example.com]')), { kind: 'silent', note: 'not consulted: a [host] next hop has no MX hosts to match' });
  assert.deepEqual(await src.hop!(q('example.com', { message: { tlsRequiredNo: true, requireTls: false } })), { kind: 'silent', note: 'not consulted: TLS-Required: No' });
  assert.deepEqual(asked, [], 'no lookup in those cases');
  // A `dane` table entry falls to MTA-STS: the policy is looked up.
  const dane = new Map([['table' as const, { kind: 'demand' as const, level: 'dane' as const, note: 'found' }]]);
  const a = await src.hop!(q('example.com', { earlier: dane }));
  assert.ok(a.kind === 'published' && a.published.kind === 'sts-policy');
  const e = await src.hop!(q('broken.example'));
  assert.deepEqual(e.kind === 'invalid' && e.deferral, { reason: 'MTA-STS policy lookup for broken.example failed: the MTA-STS policy service is gone', dsn: '4.7.5' });
  const server = await src.server!({ ...q('example.com'), server: { hostname: 'a.b.example.com', address: '192.0.2.1', port: 25, mxAuthenticated: false } }, a);
  assert.ok(server.kind === 'published' && server.published.kind === 'sts-server' && server.published.listed === false, 'one-label wildcard: a.b.example.com is not listed');
  const off = stsSource({ enabled: false, warn: () => undefined, sts: { lookup: async () => { throw new Error('never'); } } });
  assert.deepEqual(await off.hop!(q('example.com')), { kind: 'silent', note: 'sealpost_mta_sts = no' });
});

test('engine: an MTA-STS hop decision is reused while the service answers the same policy; its server verdicts too', async () => {
  const s = setup('smtp_tls_security_level = may\n');
  let policy = { domain: 'example.com', id: '1', fetchedAt: 1, expiresAt: 1e15, mode: 'enforce' as const, mx: ['mx.example.com'], maxAge: 86400, lines: [] };
  let asked = 0;
  const engine = createTlsEngine({ config: s.config, tables: s.tables, log: s.log, sts: { lookup: async () => { asked++; return { kind: 'policy', from: 'cache', policy }; } } });
  try {
    const a = await engine.policyFor('example.com', msg);
    const b = await engine.policyFor('example.com', msg);
    assert.equal(b, a, 'same policy, same decision');
    assert.equal(asked, 2, 'the service is asked at every delivery (RFC 8461 §5.1)');
    const v1 = await engine.serverPolicy(a, mx('mx.example.com'));
    const v2 = await engine.serverPolicy(a, mx('mx.example.com'));
    assert.equal(v2, v1);
    assert.equal(v1.kind === 'connect' && v1.policy.level, 'secure');
    policy = { ...policy, id: '2', fetchedAt: 2, mx: ['mx2.example.com'] };
    const c = await engine.policyFor('example.com', msg);
    assert.notEqual(c, a, 'a new policy: decided again');
    const v3 = await engine.serverPolicy(c, mx('mx.example.com'));
    assert.equal(v3.kind, 'skip');
  } finally {
    await s.done();
  }
});
