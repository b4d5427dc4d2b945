/**
 * combine.test.ts — the pure policy combiner, fed with hand-made source
 * answers: Postfix's precedence (fail closed first, TLS-Required: No caps at
 * may, a table entry over main.cf, a per-site MAY yielding to a stronger
 * main.cf level), dane without TLSA, the server step replacing a source's
 * hop answer, skip/defer at the server step, and the trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { combine } from '../../../../src/delivery/tls/combine.ts';
import { mergeSiteLevel } from '../../../../src/delivery/tls/sources/per-site.ts';
import type { SourceAnswer, TraceStep } from '../../../../src/delivery/tls/sources/types.ts';
import type { PolicySourceName } from '../../../../src/delivery/outcome.ts';

const ctx = { nexthop: 'example.com', dnssecEnabled: false };
const hop = (source: PolicySourceName, answer: SourceAnswer): TraceStep => ({ source, step: 'hop', answer });
const server = (source: PolicySourceName, answer: SourceAnswer): TraceStep => ({ source, step: 'server', answer });
const main = (level: 'none' | 'may' | 'encrypt' | 'verify' | 'secure' | 'dane' | 'dane-only') =>
  hop('default', { kind: 'demand', level, note: `smtp_tls_security_level = ${level}`, label: 'smtp_tls_security_level' });
const entry = { table: 'texthash:pol', key: 'example.com', value: 'encrypt' };

test('main.cf alone: its level wins, labelled smtp_tls_security_level', () => {
  const c = combine([main('may'), hop('table', { kind: 'silent', note: 'no entry matched' })], ctx);
  assert.equal(c.kind, 'connect');
  assert.equal(c.kind === 'connect' && c.level, 'may');
  assert.equal(c.winner, 'default');
  assert.equal(c.label, 'smtp_tls_security_level');
  assert.equal(c.trace.steps.length, 2);
});

test('a table entry overrides main.cf, stronger or weaker, and carries its entry', () => {
  for (const level of ['none', 'secure'] as const) {
    const c = combine([main('encrypt'), hop('table', { kind: 'demand', level, note: 'found', tableEntry: entry, label: 'texthash:pol' })], ctx);
    assert.equal(c.kind === 'connect' && c.level, level);
    assert.equal(c.winner, 'table');
    assert.equal(c.label, 'texthash:pol');
    assert.deepEqual(c.tableEntry, entry);
  }
});

test('fail closed: any invalid answer stops the connection, whatever else was said', () => {
  const c = combine([
    main('may'),
    hop('table', { kind: 'invalid', deferral: { reason: 'client TLS configuration problem', dsn: '4.7.5' }, note: 'lookup error: dead socketmap', label: 'socketmap:inet:x' }),
  ], ctx);
  assert.equal(c.kind, 'invalid');
  assert.deepEqual(c.kind === 'invalid' && c.deferral, { reason: 'client TLS configuration problem', dsn: '4.7.5' });
  assert.equal(c.winner, 'table');
  assert.match(c.trace.why, /fail closed/);
});

test('TLS-Required: No caps the main.cf level at may and never raises none', () => {
  const no = hop('tls-required-no', { kind: 'demand', level: 'may', note: 'TLS-Required: No', label: 'TLS-Required: No' });
  const a = combine([main('secure'), no, hop('table', { kind: 'silent', note: 'not consulted: TLS-Required: No' })], ctx);
  assert.equal(a.kind === 'connect' && a.level, 'may');
  assert.equal(a.winner, 'tls-required-no');
  assert.equal(a.label, 'TLS-Required: No');
  const b = combine([main('none'), no], ctx);
  assert.equal(b.kind === 'connect' && b.level, 'none');
});

test('per-site: its level wins, except that a per-site MAY yields to a stronger main.cf level', () => {
  const site = (level: 'may' | 'none' | 'verify') => hop('per-site', { kind: 'demand', level, note: 'x', label: 'texthash:site' });
  const may = combine([main('encrypt'), site('may')], ctx);
  assert.equal(may.kind === 'connect' && may.level, 'encrypt');
  const none = combine([main('encrypt'), site('none')], ctx);
  assert.equal(none.kind === 'connect' && none.level, 'none');
  const verify = combine([main('may'), site('verify')], ctx);
  assert.equal(verify.kind === 'connect' && verify.level, 'verify');
  assert.equal(verify.winner, 'per-site');
});

test('per-site merge of the next-hop and server-hostname entries (tls_site_lookup precedence)', () => {
  assert.equal(mergeSiteLevel(undefined, 'may'), 'may');
  assert.equal(mergeSiteLevel('may', 'none'), 'none');
  assert.equal(mergeSiteLevel('none', 'may'), 'none');
  assert.equal(mergeSiteLevel('encrypt', 'none'), 'encrypt');
  assert.equal(mergeSiteLevel('none', 'encrypt'), 'encrypt');
  assert.equal(mergeSiteLevel('verify', 'encrypt'), 'verify');
  assert.equal(mergeSiteLevel('encrypt', 'verify'), 'verify');
});

test('the server step replaces a source\'s hop answer; the trace keeps both', () => {
  const hopAnswer = hop('per-site', { kind: 'demand', level: 'may', note: 'next hop MAY', label: 'texthash:site' });
  const serverAnswer = server('per-site', { kind: 'demand', level: 'verify', note: 'server MUST', label: 'texthash:site' });
  const c = combine([main('may'), hopAnswer, serverAnswer], ctx);
  assert.equal(c.kind === 'connect' && c.level, 'verify');
  assert.deepEqual(c.trace.steps.map((s) => `${s.source}/${s.step}`), ['default/hop', 'per-site/hop', 'per-site/server']);
});

test('server step: skip-server and defer-server stop this server only, with their reason', () => {
  const skip = combine([main('may'), server('mta-sts', { kind: 'skip-server', reason: 'MX not listed', dsn: '4.7.5', resultType: 'validation-failure', note: 'mx pattern' })], ctx);
  assert.equal(skip.kind, 'skip-server');
  assert.equal(skip.kind === 'skip-server' && skip.resultType, 'validation-failure');
  const defer = combine([main('may'), server('dane', { kind: 'defer-server', deferral: { reason: 'TLSA lookup error for mx.example.com:25', dsn: '4.7.5' }, note: 'SERVFAIL' })], ctx);
  assert.equal(defer.kind, 'defer-server');
  assert.equal(defer.kind === 'defer-server' && defer.deferral.reason, 'TLSA lookup error for mx.example.com:25');
});

test('dane without usable TLSA: dane runs as may (configured level kept), dane-only defers', () => {
  const d = combine([main('dane')], ctx);
  assert.equal(d.kind === 'connect' && d.level, 'may');
  assert.equal(d.kind === 'connect' && d.configuredLevel, 'dane');
  assert.deepEqual(d.warnings, ['example.com: dane configured with dnssec lookups disabled']);
  const o = combine([main('dane-only')], { ...ctx, dnssecEnabled: true });
  assert.equal(o.kind, 'invalid');
  assert.equal(o.kind === 'invalid' && o.deferral.reason, 'no TLSA records found');
});

test('no main.cf answer at all: fail closed', () => {
  assert.equal(combine([], ctx).kind, 'invalid');
});
