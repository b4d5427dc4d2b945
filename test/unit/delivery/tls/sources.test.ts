/**
 * sources.test.ts — the policy sources through the two steps of policy.ts:
 * smtp_tls_policy_maps keys in the trace, the obsolete smtp_tls_per_site
 * looked up by next hop and by server host name (Postfix's merge, a lookup
 * error at the server step deferring only that server with Temporary lookup
 * error), the server step returning the hop policy itself when nothing
 * changes, and a source of the kind issue 11 adds (per-server skip) plugged
 * in without touching the callers.
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
