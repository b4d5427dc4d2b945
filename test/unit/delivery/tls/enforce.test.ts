/**
 * enforce.test.ts — the decision table: level × STARTTLS offered ×
 * STARTTLS reply × handshake result × evaluation, and the tls= feature status.
 */
import { test } from 'node:test';
import { tlsFeatureField } from '../../../../src/delivery/smtp/record.ts';
import assert from 'node:assert/strict';
import {
  onHandshakeFailed,
  onPeerEvaluated,
  onStarttlsNotOffered,
  onStarttlsRefused,
  replyDsn,
  tlsFeatureStatus,
  wantStarttls,
} from '../../../../src/delivery/tls/enforce.ts';
import type { ServerIdentity, TlsEvaluation, TlsLevel, TlsPolicy } from '../../../../src/delivery/tls/types.ts';

const server: ServerIdentity = { hostname: 'mx.example.net', address: '192.0.2.25', port: 25, mxAuthenticated: false };
const policy = (level: TlsPolicy['level'], over: Record<string, unknown> = {}): TlsPolicy => ({
  level,
  nexthop: 'example.net',
  nexthopDomain: 'example.net',
  match: [],
  ciphers: 'HIGH',
  trustAnchorFiles: [],
  connectionReuse: false,
  source: 'test',
  tlsRequiredNo: false,
  applied: { source: 'default', type: 'no-policy-found', domain: 'example.net', strings: [], mxHostPatterns: [], level: level === 'invalid' ? 'none' : level, configuredLevel: level === 'invalid' ? 'none' : level },
  ...(level === 'invalid' ? { invalid: { reason: 'client TLS configuration problem', dsn: '4.7.5' } } : {}),
  ...over,
}) as TlsPolicy;
const MANDATORY: TlsLevel[] = ['encrypt', 'fingerprint', 'verify', 'secure', 'dane-only'];
const ev = (over: Partial<TlsEvaluation> = {}): TlsEvaluation => ({ trust: 'Verified', protocol: 'TLSv1.3', cipher: 'X', cipherBits: 256, cipherAlgBits: 256, logLines: [], ...over });

test('wantStarttls: every level but none', () => {
  assert.equal(wantStarttls(policy('none')), false);
  assert.equal(wantStarttls(policy('invalid')), false);
  for (const l of ['may', ...MANDATORY] as TlsLevel[]) assert.equal(wantStarttls(policy(l)), true, l);
});

test('STARTTLS not offered: plaintext at none/may; mandatory levels defer 4.7.4, next MX, throttle', () => {
  assert.deepEqual(onStarttlsNotOffered(policy('none'), server), { action: 'plaintext' });
  assert.deepEqual(onStarttlsNotOffered(policy('may'), server), { action: 'plaintext' });
  for (const l of MANDATORY) {
    assert.deepEqual(onStarttlsNotOffered(policy(l), server), {
      action: 'fail',
      reason: 'TLS is required, but was not offered by host mx.example.net[192.0.2.25]',
      dsn: '4.7.4',
      nextHost: true,
      throttle: true,
      type: 'starttls-not-supported',
    });
  }
});

test('STARTTLS refused: plaintext at may; mandatory → the server reply and its DSN; 5xx is final', () => {
  assert.deepEqual(onStarttlsRefused(policy('may'), server, '454 4.7.0 TLS not available due to local problem'), { action: 'plaintext' });
  assert.deepEqual(onStarttlsRefused(policy('encrypt'), server, '454 4.7.0 TLS not available due to local problem'), {
    action: 'fail',
    reason: 'TLS is required, but host mx.example.net[192.0.2.25] refused to start TLS: 454 4.7.0 TLS not available due to local problem',
    dsn: '4.7.0',
    nextHost: true,
    throttle: true,
    type: 'starttls-not-supported',
  });
  const hard = onStarttlsRefused(policy('secure'), server, '554 no TLS for you');
  assert.deepEqual(hard, { action: 'fail', reason: 'TLS is required, but host mx.example.net[192.0.2.25] refused to start TLS: 554 no TLS for you', dsn: '5.0.0', nextHost: false, throttle: false, type: 'starttls-not-supported' });
});

test('replyDsn: enhanced code when present, else from the reply class', () => {
  assert.equal(replyDsn('454 4.7.0 busy'), '4.7.0');
  assert.equal(replyDsn('454-4.3.2 a 454 4.3.2 b'), '4.3.2');
  assert.equal(replyDsn('454 busy'), '4.0.0');
  assert.equal(replyDsn('502 unknown command'), '5.0.0');
});

test('handshake failed: may falls back only when allowed, never throttles; mandatory throttles', () => {
  assert.deepEqual(onHandshakeFailed(policy('may'), server, { plaintextFallbackOk: true }), { action: 'reconnect-plaintext' });
  assert.deepEqual(onHandshakeFailed(policy('may'), server, { plaintextFallbackOk: false }), {
    action: 'fail',
    reason: 'Cannot start TLS: handshake failure',
    dsn: '4.7.5',
    nextHost: true,
    throttle: false,
    type: 'validation-failure',
  });
  for (const l of MANDATORY) {
    assert.deepEqual(onHandshakeFailed(policy(l), server, { plaintextFallbackOk: true }), {
      action: 'fail',
      reason: 'Cannot start TLS: handshake failure',
      dsn: '4.7.5',
      nextHost: true,
      throttle: true,
      type: 'validation-failure',
    });
  }
});

test('peer evaluated: failure defers 4.7.5 with throttle; must-match levels need Verified', () => {
  assert.deepEqual(onPeerEvaluated(policy('may'), ev({ trust: 'Untrusted' })), { action: 'continue' });
  assert.deepEqual(onPeerEvaluated(policy('encrypt'), ev({ trust: 'Anonymous' })), { action: 'continue' });
  assert.deepEqual(onPeerEvaluated(policy('verify'), ev({ trust: 'Trusted', failure: { reason: 'Server certificate not verified', dsn: '4.7.5' } })), {
    action: 'fail',
    reason: 'Server certificate not verified',
    dsn: '4.7.5',
    nextHost: true,
    throttle: true,
    type: 'validation-failure',
  });
  // Defence in depth: a must-match level never continues without Verified.
  assert.equal(onPeerEvaluated(policy('secure'), ev({ trust: 'Trusted' })).action, 'fail');
  assert.deepEqual(onPeerEvaluated(policy('secure'), ev()), { action: 'continue' });
});

test('an invalid policy fails closed at every event', () => {
  const p = policy('invalid', { invalid: { reason: 'Temporary lookup error', dsn: '4.3.0' } });
  for (const d of [onStarttlsNotOffered(p, server), onStarttlsRefused(p, server, '454 x'), onHandshakeFailed(p, server, { plaintextFallbackOk: true }), onPeerEvaluated(p, ev())]) {
    assert.equal(d.action, 'fail');
    assert.equal(d.action === 'fail' && d.reason, 'Temporary lookup error');
  }
});

test('tls= feature status', () => {
  assert.equal(tlsFeatureStatus(policy('none'), { tls: false }), 'none');
  assert.equal(tlsFeatureStatus(policy('may'), { tls: false }), 'may:none');
  assert.equal(tlsFeatureStatus(policy('may'), { tls: true, evaluation: ev({ trust: 'Untrusted' }) }), 'may');
  assert.equal(tlsFeatureStatus(policy('secure'), { tls: true, evaluation: ev() }), 'secure');
  assert.equal(tlsFeatureStatus(policy('may', { configuredLevel: 'dane' }), { tls: true }), 'dane:may');
  assert.equal(tlsFeatureStatus(policy('may', { configuredLevel: 'dane' }), { tls: false }), 'dane:none');
  assert.equal(tlsFeatureStatus(policy('invalid'), { tls: false }), '');
});

test('MTA-STS enforce: every failure keeps Postfix\'s text and names the policy; testing changes nothing here', () => {
  const sts = { domain: 'example.net', mode: 'enforce', id: '1', mxHost: 'mx.example.net', listed: true };
  const tail = ': MTA-STS policy of example.net demands TLS 1.2 or later with a valid certificate for mx.example.net';
  const p = policy('secure', { sts });
  const a = onStarttlsNotOffered(p, server);
  assert.equal(a.action === 'fail' && a.reason, `TLS is required, but was not offered by host mx.example.net[192.0.2.25]${tail}`);
  const b = onPeerEvaluated(p, ev({ trust: 'Untrusted', failure: { reason: 'Server certificate not verified', dsn: '4.7.5' }, failureType: 'certificate-host-mismatch' }));
  assert.deepEqual(b.action === 'fail' && [b.reason, b.dsn, b.type, b.nextHost, b.throttle], [`Server certificate not verified${tail}`, '4.7.5', 'certificate-host-mismatch', true, true]);
  const c = onHandshakeFailed(p, server, { plaintextFallbackOk: true });
  assert.equal(c.action === 'fail' && c.reason, `Cannot start TLS: handshake failure${tail}`);
  const testing = onStarttlsNotOffered(policy('may', { sts: { ...sts, mode: 'testing' } }), server);
  assert.deepEqual(testing, { action: 'plaintext' });
});

test('DANE halfdane: a Trusted match continues (tls_client.c); tls=dane:halfdane', () => {
  const dane = { level: 'dane', halfdane: true, records: [], baseDomain: 'mx.example.net', matchNames: [], mustFail: false, qname: '_25._tcp.mx.example.net' };
  assert.deepEqual(onPeerEvaluated(policy('dane', { dane }), ev({ trust: 'Trusted' })), { action: 'continue' });
  assert.equal(onPeerEvaluated(policy('dane', { dane: { ...dane, halfdane: false } }), ev({ trust: 'Trusted' })).action, 'fail');
  const applied = { source: 'dane' as const, type: 'tlsa' as const, domain: 'example.net', strings: [], mxHostPatterns: [], level: 'dane' as const, configuredLevel: 'dane' as const, halfDane: true };
  // The tls= field is derived from the session record (smtp/record.ts tlsFeatureField).
  const used = { tls: { protocol: 'TLSv1.3', cipher: 'x', cipherBits: 256, cipherAlgBits: 256, trust: 'Trusted' as const, reused: false }, result: { kind: 'success' as const } };
  assert.equal(tlsFeatureField(applied, used), 'dane:halfdane');
  assert.equal(tlsFeatureField({ ...applied, halfDane: false }, used), 'dane');
  assert.equal(tlsFeatureField({ ...applied, halfDane: false, level: 'encrypt' }, used), 'dane:encrypt');
});
