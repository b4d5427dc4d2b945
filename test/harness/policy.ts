/**
 * policy.ts (test harness) — small helpers for tests of the TLS policy
 * engine: narrowing a decided policy to the connectable variant (failing the
 * test when it is invalid) and the RFC 8460 facts a hand-built policy
 * fixture carries.
 */
import assert from 'node:assert/strict';
import type { AppliedPolicy } from '../../src/delivery/outcome.ts';
import type { ConnectPolicy, TlsLevel, TlsPolicy } from '../../src/delivery/tls/types.ts';

/** The policy as a ConnectPolicy; the test fails when it is invalid. */
export function connectable(p: TlsPolicy): ConnectPolicy {
  assert.notEqual(p.level, 'invalid', `policy for ${p.nexthop} is invalid: ${p.level === 'invalid' ? p.invalid.reason : ''}`);
  return p as ConnectPolicy;
}

/** The `applied` facts of a hand-built fixture: main.cf decided, no published policy. */
export function fixtureApplied(level: TlsLevel | 'invalid', domain = 'example.com'): AppliedPolicy {
  const l = level === 'invalid' ? 'none' : level;
  return { source: 'default', type: 'no-policy-found', domain, strings: [], mxHostPatterns: [], level: l, configuredLevel: l };
}
