import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  afterTlsEhlo, beforeConnect, certificateFailed, certificateMatchRequired, evaluateRequireTlsPolicy, formatFeatures, noStarttls, policyQueryName,
  policyTables, requireTlsAction, requireTlsFeature, requireTlsStatus, starttlsRefused, statusFeature, tlsRequiredByPolicy, tlsRequiredNoApplies, type PolicyTables, type RequireTlsPolicy,
} from '../../../../src/delivery/tls/requiretls.ts';
import { openTable } from '../../../../src/maps/registry.ts';
import { loadConfig } from '../../../../src/config/load.ts';
import { tempDir } from '../../../harness/cli.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const H = 'mx.example.com[192.0.2.25]:25';

test('each step, as a table: action x situation -> outcome, Postfix 3.11 texts', () => {
  const rows: Array<[string, ReturnType<typeof beforeConnect> | ReturnType<typeof certificateFailed>, string, string]> = [
    // [case, step, expected outcome (dsn/kind), expected tls= requiretls feature]
    ['enforce, level may', beforeConnect('enforce', 'may', 'mx.example.com', 'Q1'), "fail 5.7.10 next Sender requested REQUIRETLS, but my configured TLS security level 'may' disables certificate matching. The last attempted server was mx.example.com", '!requiretls:nocertmatch'],
    ['enforce, level dane (stayed dane)', beforeConnect('enforce', 'dane', 'mx', 'Q1'), 'continue', ''],
    ['enforce, level secure', beforeConnect('enforce', 'secure', 'mx', 'Q1'), 'continue', ''],
    ['enforce, level fingerprint', beforeConnect('enforce', 'fingerprint', 'mx', 'Q1'), 'continue', ''],
    ['enforce, level encrypt', beforeConnect('enforce', 'encrypt', 'mx', 'Q1'), "fail 5.7.10 next Sender requested REQUIRETLS, but my configured TLS security level 'encrypt' disables certificate matching. The last attempted server was mx", '!requiretls:nocertmatch'],
    ['opp+starttls, level none', beforeConnect('opportunistic+starttls', 'none', 'mx', 'Q1'), "fail 5.7.10 next Sender requested REQUIRETLS, but my configured TLS security level 'none' disables encryption. The last attempted server was mx", '!requiretls:noencryption'],
    ['opp+starttls, level may', beforeConnect('opportunistic+starttls', 'may', 'mx', 'Q1'), 'continue', ''],
    ['opportunistic, level none', beforeConnect('opportunistic', 'none', 'mx', 'Q1'), 'continue', ''],
    ['policy error', beforeConnect('error', 'secure', 'mx', 'Q1'), 'fail 4.7.10 final REQUIRETLS policy configuration error. The last attempted server was mx', ''],
    ['enforce, no STARTTLS', noStarttls('enforce', H), `fail 5.7.30 next Sender requested REQUIRETLS, but TLS service was not offered by host ${H}`, '!requiretls:nostarttls'],
    ['opp+starttls, no STARTTLS', noStarttls('opportunistic+starttls', H), `fail 5.7.30 next Sender requested REQUIRETLS, but TLS service was not offered by host ${H}`, '!requiretls:nostarttls'],
    ['opportunistic, no STARTTLS', noStarttls('opportunistic', H), 'continue', 'requiretls:none'],
    ['disable, no STARTTLS', noStarttls('disable', H), 'continue', ''],
    ['enforce, STARTTLS refused', starttlsRefused('enforce', H, '454 4.7.0 TLS not available\nnow'), `fail 5.7.10 next Sender requested REQUIRETLS, but host ${H} refused to start TLS: 454 4.7.0 TLS not available now`, '!requiretls:nostarttls'],
    ['enforce, untrusted certificate', certificateFailed('enforce', H, false), `fail 5.7.10 next Sender requested REQUIRETLS, but no trusted server certificate was found. The last attempted server was ${H}`, '!requiretls:nocertmatch'],
    ['enforce, trusted but no name match', certificateFailed('enforce', H, true), `fail 5.7.10 next Sender requested REQUIRETLS, but no matching server certificate was found. The last attempted server was ${H}`, '!requiretls:nocertmatch'],
    ['opp+starttls, certificate failed', certificateFailed('opportunistic+starttls', H, false), 'level', 'requiretls:nocertmatch'],
    ['disable, certificate failed', certificateFailed('disable', H, false), 'level', ''],
    ['enforce, REQUIRETLS offered, matched', afterTlsEhlo('enforce', H, 'Q1', true, true), 'continue REQUIRETLS', 'requiretls'],
    ['opportunistic, offered, not matched', afterTlsEhlo('opportunistic', H, 'Q1', true, false), 'continue REQUIRETLS', 'requiretls:nocertmatch'],
    ['enforce, not offered', afterTlsEhlo('enforce', H, 'Q1', false, true), `fail 5.7.30 next Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS. The last attempted server was ${H}`, '!requiretls:none'],
    ['opp+starttls, not offered', afterTlsEhlo('opportunistic+starttls', H, 'Q1', false, true), 'continue', 'requiretls:none'],
    ['disable, offered', afterTlsEhlo('disable', H, 'Q1', true, true), 'continue', ''],
  ];
  for (const [name, step, outcome, feature] of rows) {
    const got = step.kind === 'fail' ? `fail ${step.dsn} ${step.nextMx ? 'next' : 'final'} ${step.text}` : step.kind === 'continue' ? `continue${step.sendRequireTls ? ' REQUIRETLS' : ''}` : 'level';
    assert.equal(got, outcome, name);
    assert.equal(formatFeatures([step.feature]), feature, name);
  }
  const info = afterTlsEhlo('opportunistic', H, 'Q1', false, true);
  assert.equal(info.kind === 'continue' ? info.info : undefined, `Q1: Sender requested REQUIRETLS, but REQUIRETLS support was not offered by host ${H}`);
});

test('which messages are affected; TLS-Required: No yields to REQUIRETLS; no plaintext fallback under enforce/opportunistic+starttls', () => {
  assert.equal(requireTlsAction({ requireTls: false }, true, 'enforce'), 'disable');
  assert.equal(requireTlsAction({ requireTls: true }, false, 'enforce'), 'disable');
  assert.equal(requireTlsAction({ requireTls: true }, true, 'opportunistic'), 'opportunistic');
  const s = { tlsRequiredEnable: true, requireTlsEnable: true };
  assert.equal(tlsRequiredNoApplies({ requireTls: false, tlsRequiredNo: true }, s), true);
  assert.equal(tlsRequiredNoApplies({ requireTls: true, tlsRequiredNo: true }, s), false);
  assert.equal(tlsRequiredNoApplies({ requireTls: true, tlsRequiredNo: true }, { ...s, requireTlsEnable: false }), true);
  assert.equal(tlsRequiredNoApplies({ requireTls: false, tlsRequiredNo: true }, { ...s, tlsRequiredEnable: false }), false);
  assert.deepEqual((['enforce', 'opportunistic+starttls', 'opportunistic', 'disable', 'error'] as RequireTlsPolicy[]).map(tlsRequiredByPolicy), [true, true, false, false, false]);
});

test('the tls= field: pol_stats_format shapes', () => {
  assert.equal(formatFeatures([{ name: 'secure', status: 'compliant' }, requireTlsFeature('enforce')]), 'secure/requiretls?');
  assert.equal(formatFeatures([{ name: 'dane', final: 'may', status: 'compliant' }, { name: 'requiretls', final: 'nocertmatch', status: 'violation' }]), 'dane:may/!requiretls:nocertmatch');
  assert.equal(formatFeatures([{ name: 'may', final: 'may', status: 'compliant' }, requireTlsFeature('disable')]), 'may');
});

test('policy query names: no [], no :port, A-labels', () => {
  assert.equal(policyQueryName('[mx.Example.com]:587'), 'mx.example.com');
  assert.equal(policyQueryName('example.com:smtp'), 'example.com');
  assert.equal(policyQueryName('[192.0.2.1]'), '192.0.2.1');
  assert.equal(policyQueryName('[2001:db8::1]:25'), '2001:db8::1');
  assert.equal(policyQueryName('bücher.example'), 'xn--bcher-kva.example');
});

test("smtp_requiretls_policy evaluation with real tables: Postfix 3.11's default, .parent walk, errors", async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), 'mydomain = example.org\n');
    const config = loadConfig({ configDir: t.dir });
    const items = config.getList('smtp_requiretls_policy');
    const opened = new Map<string, Awaited<ReturnType<typeof openTable>>>();
    const tables: PolicyTables = {
      lookup: async (spec, key) => {
        if (!opened.has(spec)) opened.set(spec, await openTable(spec, { baseDir: t.dir }));
        const r = await opened.get(spec)!.lookup(key);
        return r.kind === 'error' ? { kind: 'error' } : r;
      },
      isFixed: (spec) => !/^(regexp|pcre|cidr|socketmap|tcp):/.test(spec),
    };
    const warnings: string[] = [];
    const warn = (w: string) => warnings.push(w);
    assert.equal(await evaluateRequireTlsPolicy(items, 'example.org', tables, warn), 'opportunistic');
    assert.equal(await evaluateRequireTlsPolicy(items, 'mail.sub.example.org', tables, warn), 'opportunistic');
    assert.equal(await evaluateRequireTlsPolicy(items, '[localhost]:10025', tables, warn), 'opportunistic');
    assert.equal(await evaluateRequireTlsPolicy(items, '[192.0.2.7]:25', tables, warn), 'opportunistic');
    assert.equal(await evaluateRequireTlsPolicy(items, '[2001:db8::7]', tables, warn), 'opportunistic');
    assert.equal(await evaluateRequireTlsPolicy(items, 'partner.example', tables, warn), 'enforce');
    assert.equal(await evaluateRequireTlsPolicy(['inline:{{a.example=opportunistic+starttls}}'], 'a.example', tables, warn), 'opportunistic+starttls');
    assert.equal(await evaluateRequireTlsPolicy(['inline:{{a.example=opportunistic+starttls}}'], 'b.example', tables, warn), 'enforce', 'no match: enforce');
    assert.equal(await evaluateRequireTlsPolicy(['inline:{{a.example=inline:{x}}}'], 'a.example', tables, warn), 'error');
    assert.equal(await evaluateRequireTlsPolicy(['inline:{{a.example=bogus}}'], 'a.example', tables, warn), 'error');
    assert.equal(await evaluateRequireTlsPolicy(['sometimes'], 'a.example', tables, warn), 'error');
    assert.deepEqual(warnings, [
      'table inline:{{a.example=inline:{x}}}: nested lookup result "inline:{x}" is not allowed -- ignoring remainder of policy',
      "inline:{{a.example=bogus}}: unknown policy action: 'bogus' -- ignoring the remainder of this policy",
      "smtp_requiretls_policy: unknown policy action: 'sometimes' -- ignoring the remainder of this policy",
    ]);
  } finally {
    t.cleanup();
  }
});

test('certificateMatchRequired: TLS_MUST_MATCH levels; an MTA-STS policy only in enforce mode; beforeConnect follows it', () => {
  const p = (level: 'may' | 'encrypt' | 'verify' | 'secure' | 'fingerprint' | 'dane', extra: { source?: 'mta-sts' | 'table'; stsMode?: 'enforce' | 'testing' } = {}) =>
    ({ level, source: extra.source ?? 'table', ...(extra.stsMode ? { stsMode: extra.stsMode } : {}) } as const);
  assert.deepEqual(['may', 'encrypt', 'verify', 'secure', 'fingerprint', 'dane'].map((l) => certificateMatchRequired(p(l as 'may'))), [false, false, true, true, true, true]);
  assert.equal(certificateMatchRequired(p('secure', { source: 'mta-sts', stsMode: 'enforce' })), true);
  assert.equal(certificateMatchRequired(p('secure', { source: 'mta-sts', stsMode: 'testing' })), false);
  const step = beforeConnect('enforce', 'secure', 'mx', 'Q', false);
  assert.deepEqual([step.kind, step.kind === 'fail' && step.dsn], ['fail', '5.7.10']);
  assert.equal(beforeConnect('enforce', 'secure', 'mx', 'Q').kind, 'continue');
});

test('requireTlsStatus / statusFeature: the record\'s plain data and back to the tls= feature', () => {
  assert.equal(requireTlsStatus('disable', undefined, false), undefined);
  assert.equal(requireTlsStatus('error', undefined, false), undefined);
  assert.deepEqual(requireTlsStatus('enforce', undefined, false), { policy: 'enforce', status: 'undecided', sent: false });
  const done = requireTlsStatus('enforce', { name: 'requiretls', status: 'compliant' }, true)!;
  assert.deepEqual(done, { policy: 'enforce', status: 'compliant', sent: true });
  const v = requireTlsStatus('opportunistic+starttls', { name: 'requiretls', final: 'nostarttls', status: 'violation' }, false)!;
  assert.deepEqual(v, { policy: 'opportunistic+starttls', final: 'nostarttls', status: 'violation', sent: false });
  assert.equal(formatFeatures([statusFeature(v)]), '!requiretls:nostarttls');
  assert.equal(formatFeatures([statusFeature(done)]), 'requiretls');
  assert.equal(formatFeatures([statusFeature(requireTlsStatus('opportunistic', undefined, false)!)]), 'requiretls?');
});

test('policyTables over real tables: fixed tables walk .parent keys, pattern tables do not; an unopenable table is a lookup error', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'reqtls.regexp'), '/^mx\\.example\\.com$/ opportunistic\n');
    const opened = new Map<string, Promise<Awaited<ReturnType<typeof openTable>>>>();
    const tables = policyTables((spec) => {
      if (!opened.has(spec)) opened.set(spec, openTable(spec, { baseDir: t.dir }));
      return opened.get(spec)!;
    });
    const warnings: string[] = [];
    const warn = (w: string) => warnings.push(w);
    assert.equal(await evaluateRequireTlsPolicy(['inline:{{.example.com=opportunistic+starttls}}'], 'a.b.example.com', tables, warn), 'opportunistic+starttls');
    assert.equal(await evaluateRequireTlsPolicy([`regexp:${join(t.dir, 'reqtls.regexp')}`], 'mx.example.com', tables, warn), 'opportunistic');
    assert.equal(await evaluateRequireTlsPolicy([`regexp:${join(t.dir, 'reqtls.regexp')}`], 'a.mx.example.com', tables, warn), 'enforce', 'no .parent walk in a pattern table');
    assert.equal(await evaluateRequireTlsPolicy([`hash:${join(t.dir, 'missing')}`, 'opportunistic'], 'example.com', tables, warn), 'error');
    assert.deepEqual(warnings, [`smtp_requiretls_policy: hash:${join(t.dir, 'missing')}: table lookup error -- ignoring the remainder of this policy`]);
  } finally {
    t.cleanup();
  }
});
