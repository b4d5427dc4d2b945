/**
 * published-checks.test.ts — withStsTesting(): a session's TLS outcome under
 * an MTA-STS `testing` policy (RFC 8461 §5): what `enforce` would have
 * refused becomes a failure recorded with `enforced: false` and one log
 * line; a session without TLS, an unlisted MX, and a failed evaluation each
 * count; `enforce` policies and sessions that already failed are unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withStsTesting } from '../../../../src/delivery/tls/published-checks.ts';
import type { ConnectPolicy, StsPlan } from '../../../../src/delivery/tls/types.ts';
import { fixtureApplied } from '../../../harness/policy.ts';

const plan: StsPlan = { domain: 'example.com', mode: 'testing', id: '1', mxHost: 'mx.example.com', listed: true };
const policy = (sts?: StsPlan): ConnectPolicy => ({
  level: 'may', nexthop: 'example.com', nexthopDomain: 'example.com', source: 'test', tlsRequiredNo: false, applied: fixtureApplied('may'),
  match: [], ciphers: 'HIGH', trustAnchorFiles: [], connectionReuse: false, ...(sts ? { sts } : {}),
});
const success = { result: { kind: 'success' as const }, logLines: ['a line'] };

test('testing: no TLS, an unlisted MX, a failed evaluation become failures with enforced: false and a log line', () => {
  const plain = withStsTesting(policy(plan), { result: { kind: 'plaintext', type: 'starttls-not-supported' }, logLines: [] });
  assert.deepEqual(plain.result, { kind: 'failure', type: 'starttls-not-supported', reason: 'MTA-STS policy of example.com (mode testing) would have failed: no TLS with MX host mx.example.com', enforced: false });
  assert.deepEqual(plain.logLines, ['MTA-STS policy of example.com (mode testing) would have failed: no TLS with MX host mx.example.com']);
  const unlisted = withStsTesting(policy({ ...plan, listed: false }), success);
  assert.deepEqual(unlisted.result, { kind: 'failure', type: 'validation-failure', reason: 'MTA-STS policy of example.com (mode testing) would have failed: MX host mx.example.com is not listed in the MTA-STS policy of example.com', enforced: false });
  assert.deepEqual(unlisted.logLines, ['a line', 'MTA-STS policy of example.com (mode testing) would have failed: MX host mx.example.com is not listed in the MTA-STS policy of example.com']);
  const evaluation = { trust: 'Untrusted' as const, protocol: 'TLSv1.3', cipher: 'X', cipherBits: 256, cipherAlgBits: 256, logLines: [], stsTesting: { type: 'certificate-expired' as const, reason: 'MTA-STS policy of example.com (mode testing) would have failed: expired' } };
  const failed = withStsTesting(policy(plan), { ...success, evaluation });
  assert.deepEqual(failed.result, { kind: 'failure', type: 'certificate-expired', reason: 'MTA-STS policy of example.com (mode testing) would have failed: expired', enforced: false });
});

test('unchanged: no testing policy, an enforce policy, a session that already failed, a testing session that passed', () => {
  assert.equal(withStsTesting(policy(), success), success);
  assert.equal(withStsTesting(policy({ ...plan, mode: 'enforce', listed: false }), success), success);
  const failure = { result: { kind: 'failure' as const, type: 'validation-failure' as const, reason: 'x', enforced: true }, logLines: [] };
  assert.equal(withStsTesting(policy(plan), failure), failure);
  assert.equal(withStsTesting(policy(plan), success), success);
});
