/**
 * verify.test.ts — Postfix's certificate name checks (wildcard edge cases,
 * strategies), fingerprints, and evaluatePeer() over synthetic facts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluatePeer,
  expectedNames,
  fingerprints,
  matchFingerprint,
  matchServerName,
  mxPatternMatches,
  nameMatches,
  verifyErrorLine,
  type CertFacts,
  type PeerFacts,
} from '../../../../src/delivery/tls/verify.ts';
import type { ConnectPolicy, ServerIdentity, TlsLevel } from '../../../../src/delivery/tls/types.ts';
import { fixtureApplied } from '../../../harness/policy.ts';

test('nameMatches: exact, case-insensitive, trailing dot', () => {
  assert.equal(nameMatches('mx.example.com', 'MX.Example.COM'), true);
  assert.equal(nameMatches('mx.example.com.', 'mx.example.com'), true);
  assert.equal(nameMatches('mx.example.com', 'example.com'), false);
});

test('nameMatches: wildcard only as the whole leftmost label, one label deep', () => {
  assert.equal(nameMatches('*.example.com', 'mx.example.com'), true);
  assert.equal(nameMatches('*.example.com', 'example.com'), false);
  assert.equal(nameMatches('*.example.com', 'a.b.example.com'), false);
  assert.equal(nameMatches('f*.example.com', 'foo.example.com'), false);
  assert.equal(nameMatches('*x.example.com', 'ax.example.com'), false);
  assert.equal(nameMatches('mx.*.com', 'mx.example.com'), false);
  assert.equal(nameMatches('*.', 'a.'), false);
  assert.equal(nameMatches('*', 'com'), false);
});

test('nameMatches: .domain needs at least one more label', () => {
  assert.equal(nameMatches('mx.example.com', '.example.com'), true);
  assert.equal(nameMatches('a.b.example.com', '.example.com'), true);
  assert.equal(nameMatches('example.com', '.example.com'), false);
  assert.equal(nameMatches('badexample.com', '.example.com'), false);
  assert.equal(nameMatches('*.example.com', '.example.com'), true);
  assert.equal(nameMatches('mx.example.com', '.'), false);
});

test('strategies: hostname, nexthop, dot-nexthop, explicit names', () => {
  assert.deepEqual(expectedNames(['hostname', 'nexthop', 'dot-nexthop', 'x.example', '.y.example'], 'example.com', 'mx.example.net'), [
    'mx.example.net',
    'example.com',
    '.example.com',
    'x.example',
    '.y.example',
  ]);
});

test('SAN dNSNames win; CN only when there is no DNS SAN', () => {
  const withSan = { dnsNames: ['mx.example.com'], commonNames: ['other.example.com'] };
  assert.equal(matchServerName(withSan, ['other.example.com']), undefined);
  assert.equal(matchServerName(withSan, ['mx.example.com']), 'mx.example.com');
  const cnOnly = { dnsNames: [], commonNames: ['other.example.com'] };
  assert.equal(matchServerName(cnOnly, ['other.example.com']), 'other.example.com');
});

test('fingerprints: certificate or public key, colons and case optional, chosen digest', () => {
  const cert = { der: Buffer.from('certificate'), spki: Buffer.from('public key') };
  const fp = fingerprints(cert, 'sha256');
  assert.match(fp.cert, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  assert.equal(matchFingerprint(cert, [fp.cert], 'sha256'), fp.cert);
  assert.equal(matchFingerprint(cert, [fp.pkey.replace(/:/g, '').toLowerCase()], 'sha256') !== undefined, true);
  assert.equal(matchFingerprint(cert, ['00:11'], 'sha256'), undefined);
  const md5 = fingerprints(cert, 'md5');
  assert.equal(md5.cert.split(':').length, 16);
  assert.equal(matchFingerprint(cert, [md5.cert], 'sha256'), undefined);
  assert.equal(matchFingerprint(cert, [md5.cert], 'md5'), md5.cert);
});

test('MTA-STS mx patterns: one-label wildcard', () => {
  assert.equal(mxPatternMatches('*.example.com', 'mx1.example.com'), true);
  assert.equal(mxPatternMatches('*.example.com', 'a.mx1.example.com'), false);
  assert.equal(mxPatternMatches('mx.example.com', 'MX.example.com'), true);
});

const cert = (over: Partial<CertFacts> = {}): CertFacts => ({
  der: Buffer.from('leaf'),
  spki: Buffer.from('key'),
  dnsNames: ['mx.example.com'],
  commonNames: ['mx.example.com'],
  issuer: '/CN=Test CA',
  subject: '/CN=mx.example.com',
  validFrom: 0,
  validTo: Date.now() + 86400_000,
  ...over,
});
const server: ServerIdentity = { hostname: 'mx.example.com', address: '192.0.2.1', port: 25, mxAuthenticated: false };
const policy = (level: TlsLevel, match: string[] = []): ConnectPolicy => ({
  applied: fixtureApplied(level),
  level,
  nexthop: 'example.com',
  nexthopDomain: 'example.com',
  match,
  ciphers: 'HIGH',
  trustAnchorFiles: [],
  connectionReuse: false,
  source: 'test',
  tlsRequiredNo: false,
});
const facts = (over: Partial<PeerFacts> = {}): PeerFacts => ({ protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', chain: [cert()], authorized: true, ...over });
const opts = { digest: 'sha256', maxDepth: 9, logLevel: 0 };

test('evaluatePeer: trust words at each level', () => {
  assert.equal(evaluatePeer(policy('may'), facts({ chain: [] }), server, opts).trust, 'Anonymous');
  assert.equal(evaluatePeer(policy('may'), facts({ authorized: false, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), server, opts).trust, 'Untrusted');
  assert.equal(evaluatePeer(policy('encrypt'), facts(), server, opts).trust, 'Trusted');
  assert.equal(evaluatePeer(policy('verify', ['hostname']), facts(), server, opts).trust, 'Verified');
  assert.equal(evaluatePeer(policy('secure', ['nexthop', 'dot-nexthop']), facts(), server, opts).trust, 'Verified');
  const e = evaluatePeer(policy('may'), facts(), server, opts);
  assert.equal(e.cipherBits, 256);
  assert.equal(e.cipherAlgBits, 256);
});

test('evaluatePeer: anonymous cipher fails where a match is required', () => {
  const e = evaluatePeer(policy('verify', ['hostname']), facts({ chain: [] }), server, opts);
  assert.equal(e.trust, 'Anonymous');
  assert.equal(e.failure?.reason, 'Server certificate not verified');
  assert.equal(evaluatePeer(policy('encrypt'), facts({ chain: [] }), server, opts).failure, undefined);
});

test('evaluatePeer: chain depth limit (smtp_tls_scert_verifydepth)', () => {
  const e = evaluatePeer(policy('secure', ['nexthop']), facts({ chain: [cert(), cert(), cert()] }), { ...server, hostname: 'example.com' }, { ...opts, maxDepth: 1 });
  assert.equal(e.trust, 'Untrusted');
  assert.deepEqual(e.logLines, ['certificate verification failed for example.com[192.0.2.1]:25: certificate chain longer than limit(1)']);
});

test('evaluatePeer: verification lines only when matching is required, or at loglevel 2', () => {
  const bad = facts({ authorized: false, authorizationError: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  assert.deepEqual(evaluatePeer(policy('may'), bad, server, opts).logLines, []);
  assert.deepEqual(evaluatePeer(policy('may'), bad, server, { ...opts, logLevel: 2 }).logLines, ['certificate verification failed for mx.example.com[192.0.2.1]:25: self-signed certificate']);
});

test('evaluatePeer: policy_failure= forces failure with its log line', () => {
  const e = evaluatePeer(policy('secure', ['nexthop']), facts({ chain: [cert({ dnsNames: ['example.com'] })] }), server, { ...opts, policyFailure: 'sts-webpki-invalid' });
  assert.equal(e.failure?.reason, 'Server certificate not verified');
  assert.deepEqual(e.logLines, ['certificate verification failed for mx.example.com[192.0.2.1]:25: external policy failure (sts-webpki-invalid)']);
});

test('evaluatePeer: STS mx_host_pattern — the MX must match, the certificate must name the MX', () => {
  const p = policy('secure', ['mx1.example.com']);
  assert.equal(evaluatePeer(p, facts(), server, { ...opts, mxHostPatterns: ['*.example.com'] }).trust, 'Verified');
  assert.ok(evaluatePeer(p, facts(), server, { ...opts, mxHostPatterns: ['*.example.org'] }).failure);
});

test('verifyErrorLine: Postfix texts per OpenSSL error', () => {
  const w = 'mx[192.0.2.1]:25';
  const now = Date.now();
  assert.equal(verifyErrorLine('SELF_SIGNED_CERT_IN_CHAIN', [cert(), cert({ issuer: '/CN=Root' })], w, now), 'certificate verification failed for mx[192.0.2.1]:25: untrusted issuer /CN=Root');
  assert.equal(verifyErrorLine('CERT_HAS_EXPIRED', [cert(), cert({ validTo: 0 })], w, now), 'CA certificate verification failed for mx[192.0.2.1]:25: certificate has expired');
  assert.equal(verifyErrorLine('CERT_NOT_YET_VALID', [cert({ validFrom: now + 1e9 })], w, now), 'server certificate verification failed for mx[192.0.2.1]:25: certificate not yet valid');
  assert.equal(verifyErrorLine('INVALID_PURPOSE', [cert()], w, now), 'certificate verification failed for mx[192.0.2.1]:25: not designated for use as a server certificate');
  assert.equal(verifyErrorLine('UNABLE_TO_VERIFY_LEAF_SIGNATURE', [cert()], w, now), 'server certificate verification failed for mx[192.0.2.1]:25: num=21:unable to verify the first certificate');
  assert.equal(verifyErrorLine('CERT_UNTRUSTED', [cert()], w, now), 'certificate verification failed for mx[192.0.2.1]:25: not trusted by local or TLSA policy');
});
