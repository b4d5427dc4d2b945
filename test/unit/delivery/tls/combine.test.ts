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

// ---------------------------------------------------------------- DANE and MTA-STS (issue 11)

const stsEntry = { domain: 'example.com', id: 'id1', fetchedAt: 0, expiresAt: 1e15, mode: 'enforce' as const, mx: ['mx.example.com'], maxAge: 86400, lines: ['version: STSv1', 'mode: enforce', 'mx: mx.example.com', 'max_age: 86400'] };
const stsReport = { type: 'sts' as const, domain: 'example.com', strings: stsEntry.lines, mxHostPatterns: stsEntry.mx, stsMode: 'enforce' as const, stsId: 'id1' };
const requirement = (host: string) => ({ level: 'secure' as const, match: [host], minProtocol: 'TLSv1.2' as const, servername: host });
const stsHop = (mode: 'enforce' | 'testing' = 'enforce') => hop('mta-sts', { kind: 'published', note: 'policy', published: { kind: 'sts-policy', policy: { ...stsEntry, mode }, from: 'cache', report: { ...stsReport, stsMode: mode } } });
const stsServer = (host: string, listed: boolean, mode: 'enforce' | 'testing' = 'enforce') =>
  server('mta-sts', { kind: 'published', note: 'mx', published: { kind: 'sts-server', policy: { ...stsEntry, mode }, mode, listed, mxHost: host, requirement: requirement(host), report: { ...stsReport, stsMode: mode } } });
const plan = { level: 'dane' as const, halfdane: false, records: [], baseDomain: 'mx.example.com', matchNames: ['mx.example.com'], mustFail: false, qname: '_25._tcp.mx.example.com' };
const tlsaReport = { type: 'tlsa' as const, domain: 'example.com', strings: ['3 1 1 ab'], mxHostPatterns: [] };
const daneHop = hop('dane', { kind: 'silent', note: 'per MX host' });
const daneTlsa = server('dane', { kind: 'published', note: 'tlsa', published: { kind: 'tlsa', level: 'dane', dane: plan, report: tlsaReport } });
const daneNone = server('dane', { kind: 'published', note: 'no TLSA', published: { kind: 'dane-fallback', level: 'may', why: 'no TLSA records found' } });
const dnssec = { ...ctx, dnssecEnabled: true };

test('DANE with usable TLSA records beats an MTA-STS policy (RFC 8461 §2), even one that does not list the MX', () => {
  const c = combine([main('dane'), daneHop, stsHop(), daneTlsa, stsServer('mx.other.net', false)], dnssec);
  assert.equal(c.kind, 'connect');
  assert.equal(c.winner, 'dane');
  assert.equal(c.kind === 'connect' && c.level, 'dane');
  assert.equal(c.kind === 'connect' && c.dane?.baseDomain, 'mx.example.com');
  assert.equal(c.kind === 'connect' && c.report?.type, 'tlsa');
  assert.equal(c.label, 'TLSA records of _25._tcp.mx.example.com');
});

test('dane without usable TLSA falls to the published MTA-STS policy, else to may with the configured level kept', () => {
  const sts = combine([main('dane'), daneHop, stsHop(), daneNone, stsServer('mx.example.com', true)], dnssec);
  assert.equal(sts.winner, 'mta-sts');
  assert.equal(sts.kind === 'connect' && sts.level, 'secure');
  assert.deepEqual(sts.kind === 'connect' && sts.stsRequirement?.match, ['mx.example.com']);
  const may = combine([main('dane'), daneHop, hop('mta-sts', { kind: 'silent', note: 'no policy' }), daneNone], dnssec);
  assert.deepEqual(may.kind === 'connect' && [may.level, may.configuredLevel, may.winner], ['may', 'dane', 'default']);
  // All records unusable: encrypt, reported as a tlsa policy.
  const enc = combine([main('dane'), daneHop, server('dane', { kind: 'published', note: 'unusable', published: { kind: 'dane-fallback', level: 'encrypt', why: 'TLSA records unusable', report: tlsaReport } })], dnssec);
  assert.deepEqual(enc.kind === 'connect' && [enc.level, enc.configuredLevel, enc.winner, enc.report?.type], ['encrypt', 'dane', 'dane', 'tlsa']);
});

test('at the hop step a DANE source defers the decision to the MX hosts: dane runs as may, dane-only waits', () => {
  const d = combine([main('dane'), daneHop], dnssec);
  assert.deepEqual(d.kind === 'connect' && [d.level, d.configuredLevel], ['may', 'dane']);
  const o = combine([main('dane-only'), daneHop], dnssec);
  assert.deepEqual(o.kind === 'connect' && [o.level, o.configuredLevel], ['dane-only', undefined]);
  // A TLSA lookup error at the server step stops the server; MTA-STS never overrides it.
  const err = combine([main('dane'), daneHop, stsHop(), server('dane', { kind: 'defer-server', deferral: { reason: 'TLSA lookup error for mx.example.com:25', dsn: '4.7.5' }, resultType: 'dnssec-invalid', note: 'SERVFAIL' }), stsServer('mx.example.com', true)], dnssec);
  assert.equal(err.kind, 'defer-server');
  assert.equal(err.kind === 'defer-server' && err.resultType, 'dnssec-invalid');
});

test('MTA-STS enforce: an unlisted MX is skipped with Postfix\'s warning; a listed one gets secure against the MX name', () => {
  const skip = combine([main('may'), stsHop(), stsServer('mx.other.net', false)], ctx);
  assert.equal(skip.kind, 'skip-server');
  assert.equal(skip.kind === 'skip-server' && skip.reason, 'MX host mx.other.net is not listed in the MTA-STS policy of example.com');
  assert.deepEqual(skip.warnings, ["MX name 'mx.other.net' does not match STS MX pattern for 'example.com'"]);
  assert.equal(skip.kind === 'skip-server' && skip.report?.type, 'sts');
  const ok = combine([main('encrypt'), stsHop(), stsServer('mx.example.com', true)], ctx);
  assert.deepEqual(ok.kind === 'connect' && [ok.level, ok.winner, ok.sts?.mode, ok.sts?.mxHost, ok.label], ['secure', 'mta-sts', 'enforce', 'mx.example.com', 'MTA-STS policy of example.com']);
  // The hop step says nothing per host yet.
  const h = combine([main('may'), stsHop()], ctx);
  assert.deepEqual(h.kind === 'connect' && [h.level, h.winner], ['may', 'default']);
});

test('MTA-STS never lowers main.cf: verify/secure keep their own checks; testing keeps the level and records', () => {
  const keep = combine([main('secure'), stsHop(), stsServer('mx.example.com', true)], ctx);
  assert.deepEqual(keep.kind === 'connect' && [keep.level, keep.winner, keep.stsRequirement], ['secure', 'mta-sts', undefined]);
  const testing = combine([main('encrypt'), stsHop('testing'), stsServer('mx.other.net', false, 'testing')], ctx);
  assert.deepEqual(testing.kind === 'connect' && [testing.level, testing.winner, testing.sts?.mode, testing.sts?.listed, testing.report?.stsMode], ['encrypt', 'mta-sts', 'testing', false, 'testing']);
});

test('a table entry or TLS-Required: No: MTA-STS is not consulted (the source is silent), the entry decides', () => {
  const table = combine([main('may'), hop('table', { kind: 'demand', level: 'encrypt', note: 'found', tableEntry: entry, label: 'texthash:pol' }), hop('mta-sts', { kind: 'silent', note: 'not consulted: the policy table entry decides' })], ctx);
  assert.deepEqual(table.kind === 'connect' && [table.level, table.winner], ['encrypt', 'table']);
});
