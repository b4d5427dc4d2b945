/**
 * record.test.ts — the `tls=` value of an outcome derived from the session
 * record it was decided on (record.ts tlsFeatureField), as Postfix 3.11's
 * smtp(8) keeps its pol_stats: level feature, then the requiretls feature.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppliedPolicy, SessionResult, TlsFacts } from '../../../../src/delivery/outcome.ts';
import { tlsFeatureField } from '../../../../src/delivery/smtp/record.ts';
import { fixtureApplied } from '../../../harness/policy.ts';

const TLS: TlsFacts = { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256, trust: 'Verified', reused: false };
const ok: SessionResult = { kind: 'success' };
const fail = (type: 'starttls-not-supported' | 'certificate-host-mismatch' | 'validation-failure', enforced = true): SessionResult =>
  ({ kind: 'failure', type, reason: 'r', enforced });
const daneMay: AppliedPolicy = { ...fixtureApplied('may'), configuredLevel: 'dane' };

test('the level feature: decided, downgraded, violated, undecided', () => {
  const rows: Array<[string, AppliedPolicy, Parameters<typeof tlsFeatureField>[1], string]> = [
    ['TLS used', fixtureApplied('secure'), { tls: TLS, result: ok }, 'secure'],
    ['dane without TLSA, TLS used', daneMay, { tls: TLS, result: ok }, 'dane:may'],
    ['plaintext at may', fixtureApplied('may'), { result: { kind: 'plaintext', type: 'starttls-not-supported' } }, 'may:none'],
    ['level none', fixtureApplied('none'), { result: { kind: 'plaintext' } }, 'none'],
    ['no STARTTLS where required', fixtureApplied('encrypt'), { result: fail('starttls-not-supported') }, '!encrypt'],
    ['certificate failed a required match', fixtureApplied('secure'), { tls: TLS, result: fail('certificate-host-mismatch') }, '!secure'],
    ['a testing failure that did not stop delivery', fixtureApplied('secure'), { tls: TLS, result: fail('certificate-host-mismatch', false) }, 'secure'],
    ['handshake failed: left undecided', fixtureApplied('encrypt'), { result: fail('validation-failure') }, 'encrypt?'],
    ['no STARTTLS, REQUIRETLS failed at may: the level undecided', fixtureApplied('may'), { result: fail('starttls-not-supported') }, 'may?'],
    ['no TLS decision reached', fixtureApplied('verify'), undefined, 'verify?'],
  ];
  for (const [what, applied, record, want] of rows) assert.equal(tlsFeatureField(applied, record), want, what);
});

test('with REQUIRETLS: the requiretls feature after the level', () => {
  assert.equal(tlsFeatureField(fixtureApplied('secure'), { tls: TLS, result: ok }, { name: 'requiretls', status: 'compliant' }), 'secure/requiretls');
  assert.equal(tlsFeatureField(fixtureApplied('secure'), { tls: TLS, result: fail('certificate-host-mismatch') }, { name: 'requiretls', final: 'nocertmatch', status: 'violation' }), '!secure/!requiretls:nocertmatch');
  assert.equal(tlsFeatureField(fixtureApplied('encrypt'), undefined, { name: 'requiretls', final: 'nocertmatch', status: 'violation' }), 'encrypt?/!requiretls:nocertmatch');
  assert.equal(tlsFeatureField(fixtureApplied('encrypt'), { result: fail('validation-failure') }, { name: 'requiretls', status: 'undecided' }), 'encrypt?/requiretls?');
});
