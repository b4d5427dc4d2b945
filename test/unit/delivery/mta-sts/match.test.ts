/**
 * match.test.ts — RFC 8461 §4.1 MX patterns (one-label wildcards) and the
 * per-MX plan under enforce and testing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchingPattern, mxPatternMatches, stsForServer, stsMxWarning, stsReasons } from '../../../../src/delivery/mta-sts/match.ts';

test('patterns: exact names, and *.domain for exactly one more leftmost label', () => {
  const yes: Array<[string, string]> = [
    ['mail.example.com', 'mail.example.com'], ['mail.example.com', 'MAIL.Example.COM.'], ['*.example.com', 'mx.example.com'],
    ['*.example.com', 'MX1.EXAMPLE.COM'],
  ];
  const no: Array<[string, string]> = [
    ['*.example.com', 'example.com'], ['*.example.com', 'a.b.example.com'], ['*.example.com', 'mx.example.com.evil.net'],
    ['mail.example.com', 'mail2.example.com'], ['*.example.com', 'mxexample.com'], ['mail.example.com', 'x.mail.example.com'],
  ];
  for (const [p, h] of yes) assert.equal(mxPatternMatches(p, h), true, `${p} ~ ${h}`);
  for (const [p, h] of no) assert.equal(mxPatternMatches(p, h), false, `${p} !~ ${h}`);
  assert.equal(matchingPattern(['a.example', '*.example.net'], 'mx.example.net'), '*.example.net');
});

test('enforce: a listed MX must meet secure with match=hostname, TLS 1.2, SNI = the MX name; an unlisted one is not tried', () => {
  const policy = { domain: 'example.com', mode: 'enforce' as const, mx: ['*.example.com'] };
  assert.deepEqual(stsForServer(policy, 'MX1.example.com.'), {
    try: true, enforce: true, pattern: '*.example.com',
    requirement: { level: 'secure', match: ['mx1.example.com'], minProtocol: 'TLSv1.2', servername: 'mx1.example.com' },
  });
  assert.deepEqual(stsForServer(policy, 'mx.other.net'), { try: false, type: 'validation-failure', warning: "MX name 'mx.other.net' does not match STS MX pattern for 'example.com'" });
});

test('testing: the same checks, not enforced; an unlisted MX is tried and recorded', () => {
  const policy = { domain: 'example.com', mode: 'testing' as const, mx: ['mx.example.com'] };
  const listed = stsForServer(policy, 'mx.example.com');
  assert.equal(listed.try && listed.enforce, false);
  assert.equal(listed.try && 'requirement' in listed && listed.requirement.level, 'secure');
  assert.deepEqual(stsForServer(policy, 'other.example.com'), { try: true, enforce: false, pattern: undefined, type: 'validation-failure', warning: stsMxWarning('other.example.com', 'example.com') });
});

test('reason texts name the source', () => {
  assert.equal(stsReasons.certificate('example.com', 'mx.example.com'), 'MTA-STS policy of example.com requires a valid certificate for MX host mx.example.com');
  assert.equal(stsReasons.noListedMx('example.com'), 'MTA-STS policy of example.com lists none of its MX hosts');
});
