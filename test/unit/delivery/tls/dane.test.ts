/**
 * dane.test.ts — DANE as Postfix 3.11 does it, over certificates made at
 * test time: tls_dane_digests, record texts, the screening and usability of
 * records, dane_init()'s decisions (fallback, halfdane, defer, the RFC 8460
 * types), and matchDane() for DANE-EE and DANE-TA (chains, bare keys, name
 * checks, expiry, purpose, signatures, digest agility).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect, createServer as tlsCreateServer } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import {
  DEFAULT_DANE_DIGESTS, daneAfterLookup, daneSettings, daneBeforeLookup, matchDane, parseDaneDigests, screenTlsa, tlsaLogText,
  tlsaPresentation, usableTlsa,
} from '../../../../src/delivery/tls/dane.ts';
import type { DaneContext, DaneMatchInput } from '../../../../src/delivery/tls/dane.ts';
import type { TlsaLookup, TlsaRecord } from '../../../../src/delivery/dns/tlsa.ts';
import { certFactsFromDer, peerFacts } from '../../../../src/delivery/tls/verify.ts';
import { loadConfig } from '../../../../src/config/load.ts';
import { ConfigError } from '../../../../src/lib/errors.ts';
import type { CertFacts } from '../../../../src/delivery/tls/verify.ts';
import { makeCa, mintCert, tlsaFor } from '../../../harness/pki.ts';
import type { CertAuthority, ServerCert } from '../../../harness/pki.ts';

const W = 'mx.example.com[192.0.2.1]:25';
let dir: string;
let root: CertAuthority;
let inter: CertAuthority;
let good: ServerCert;
let selfSigned: ServerCert;
let expired: ServerCert;
let wrongName: ServerCert;
let clientOnly: ServerCert;
let notCaLeaf: ServerCert;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-dane-'));
  root = makeCa(dir, 'root');
  inter = makeCa(dir, 'inter', root);
  good = mintCert(dir, 'good', { names: ['mx.example.com'], issuer: inter, chain: [inter, root] });
  selfSigned = mintCert(dir, 'self', { names: ['mx.example.com'] });
  expired = mintCert(dir, 'expired', { names: ['mx.example.com'], issuer: inter, chain: [inter], start: '20200101000000Z', end: '20200201000000Z' });
  wrongName = mintCert(dir, 'wrong', { names: ['other.example.net'], issuer: inter, chain: [inter] });
  clientOnly = mintCert(dir, 'client', { names: ['mx.example.com'], issuer: inter, chain: [inter], eku: 'clientAuth' });
  // A leaf signed by a certificate that is not a CA.
  // (No keyUsage extension, so that OpenSSL's issuer check links it; basicConstraints says CA:FALSE.)
  const fake = mintCert(dir, 'fake-ca', { names: ['fake.example'], issuer: root, keyUsage: '', eku: '' });
  notCaLeaf = mintCert(dir, 'under-fake', { names: ['mx.example.com'], issuer: { cert: fake.cert, key: fake.key, name: 'fake.example' }, chain: [{ cert: fake.cert, key: fake.key, name: 'fake.example' }, root] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The chain file's certificates as CertFacts, leaf first. */
function chainOf(c: ServerCert): CertFacts[] {
  const pem = readFileSync(c.chain, 'utf8');
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => certFactsFromDer(new X509Certificate(m[0]).raw));
}

function rec(t: [number, number, number, string], owner = '_25._tcp.mx.example.com'): TlsaRecord {
  return { usage: t[0], selector: t[1], matchingType: t[2], data: Buffer.from(t[3], 'hex'), owner };
}

function input(records: TlsaRecord[], chain: CertFacts[], extra: Partial<DaneMatchInput> = {}): DaneMatchInput {
  return { records, chain, matchNames: ['mx.example.com', 'example.com'], level: 'dane', where: W, logLevel: 2, ...extra };
}

// ------------------------------------------------------------- digests/texts

test('tls_dane_digests: default order, explicit numbers, Postfix warnings', () => {
  assert.deepEqual([...DEFAULT_DANE_DIGESTS.types.entries()], [[2, { digest: 'sha512', ord: 2 }], [1, { digest: 'sha256', ord: 1 }]]);
  assert.deepEqual([...parseDaneDigests('sha256=1, sha512=2, sha384=3').types.keys()], [1, 2, 3]);
  const bad = parseDaneDigests('sha1 sha1=1 sha256=0 sha256=255 sha256=x sha256 sha256 nosuch=9');
  assert.deepEqual(bad.warnings, [
    'tls_dane_digests: digest algorithm sha1 needs an explicit number',
    'tls_dane_digests: matching type 1 can only be sha256',
    'Reserved matching type number in tls_dane_digests: sha256=0',
    'Invalid matching type number in tls_dane_digests: sha256=255',
    'Invalid matching type number in tls_dane_digests: sha256=x',
    'tls_dane_digests: matching type 1 specified more than once',
    'tls_dane_digests: digest algorithm "nosuch"(9) unknown',
  ]);
  assert.deepEqual([...bad.types.keys()], [1]);
});

test('presentation form is whole and lower case; log form is Postfix upper-case hex cut to 32+32 bytes', () => {
  const short = rec([3, 1, 1, 'abcdef']);
  assert.equal(tlsaPresentation(short), '3 1 1 abcdef');
  assert.equal(tlsaLogText(short), '3 1 1 ABCDEF');
  const long = rec([3, 0, 0, '11'.repeat(32) + '22'.repeat(10) + '33'.repeat(32)]);
  assert.equal(tlsaLogText(long), `3 0 0 ${'11'.repeat(32)}...${'33'.repeat(32)}`);
});

test('screening: PKIX usages, unknown usages and the private-use matching type are dropped with Postfix warnings', () => {
  const r = screenTlsa([rec([0, 0, 1, 'aa']), rec([1, 1, 1, 'bb']), rec([4, 1, 1, 'cc']), rec([3, 1, 255, 'dd']), rec([2, 0, 1, 'ee']), rec([3, 1, 1, 'ff'], '_dane.provider.net')], '_25._tcp.mx.example.com');
  assert.deepEqual(r.kept.map(tlsaPresentation), ['2 0 1 ee', '3 1 1 ff']);
  assert.deepEqual(r.warnings, [
    '_25._tcp.mx.example.com unsupported TLSA certificate usage: 0 0 1 AA',
    '_25._tcp.mx.example.com unsupported TLSA certificate usage: 1 1 1 BB',
    '_25._tcp.mx.example.com unsupported TLSA certificate usage: 4 1 1 CC',
    '_25._tcp.mx.example.com reserved private-use matching type: 3 1 255 DD',
  ]);
});

test('usability: unknown selector/matching type, wrong digest length, garbage Full data are unusable', () => {
  const ok = rec(tlsaFor(good.cert, 3, 1, 1));
  const r = usableTlsa([ok, rec([3, 2, 1, 'aa'.repeat(32)]), rec([3, 1, 7, 'aa']), rec([3, 1, 1, 'aa']), rec([3, 0, 0, 'deadbeef']), rec([2, 1, 0, 'deadbeef']), rec(tlsaFor(good.cert, 3, 0, 0))], DEFAULT_DANE_DIGESTS, W);
  assert.equal(r.usable.length, 2);
  assert.deepEqual(r.warnings, [
    `${W}: unusable TLSA RR: 3 2 1 ${'AA'.repeat(32)}`,
    `${W}: unusable TLSA RR: 3 1 7 AA`,
    `${W}: unusable TLSA RR: 3 1 1 AA`,
    `${W}: unusable TLSA RR: 3 0 0 DEADBEEF`,
    `${W}: unusable TLSA RR: 2 1 0 DEADBEEF`,
  ]);
});

// --------------------------------------------------------------- decisions

const ctx = (over: Partial<DaneContext> = {}): DaneContext => ({
  level: 'dane', nexthop: 'example.com', dnssecEnabled: true, mxSecure: true,
  mxNames: { qname: 'example.com', rname: 'example.com' }, insecureMxPolicy: 'dane', digests: DEFAULT_DANE_DIGESTS, where: W, ...over,
});
const found = (records: TlsaRecord[], base = 'mx.example.com'): TlsaLookup => ({ kind: 'secure-records', baseDomain: base, qname: `_25._tcp.${base}`, records, warnings: [] });

test('before the lookup: DNSSEC disabled, insecure MX', () => {
  assert.deepEqual(daneBeforeLookup(ctx({ dnssecEnabled: false })), { kind: 'fallback', level: 'may', why: 'example.com: dane configured with dnssec lookups disabled', warnings: ['example.com: dane configured with dnssec lookups disabled'] });
  const only = daneBeforeLookup(ctx({ level: 'dane-only', dnssecEnabled: false }));
  assert.deepEqual(only && only.kind === 'defer' && [only.reason, only.dsn], ['client TLS configuration problem', '4.7.5']);
  const nondnssec = daneBeforeLookup(ctx({ level: 'dane-only', mxSecure: false }));
  assert.deepEqual(nondnssec, { kind: 'defer', reason: 'non DNSSEC destination', dsn: '4.7.5', failure: { type: 'dane-required' }, warnings: [] });
  assert.deepEqual(daneBeforeLookup(ctx({ mxSecure: false, insecureMxPolicy: 'may' })), { kind: 'fallback', level: 'may', why: 'non DNSSEC destination', warnings: [] });
  assert.equal(daneBeforeLookup(ctx({ mxSecure: false })), undefined, 'insecure MX, policy dane: look TLSA up');
  assert.equal(daneBeforeLookup(ctx({ mxSecure: undefined, level: 'dane-only' })), undefined, '[nexthop] counts as a secure MX');
});

test('after the lookup: error defers (dnssec-invalid); no TLSA: dane → may, dane-only defers (dane-required)', () => {
  const err: TlsaLookup = { kind: 'error', reason: 'TLSA lookup error for mx.example.com:25', dsn: '4.7.5', detail: 'SERVFAIL', warnings: ['DANE TLSA lookup problem: SERVFAIL'] };
  assert.deepEqual(daneAfterLookup(ctx(), err), { kind: 'defer', reason: 'TLSA lookup error for mx.example.com:25', dsn: '4.7.5', failure: { type: 'dnssec-invalid' }, warnings: ['DANE TLSA lookup problem: SERVFAIL'] });
  for (const none of [{ kind: 'secure-none', qname: 'x', warnings: [] }, { kind: 'insecure', why: 'answer-insecure', warnings: [] }] as TlsaLookup[]) {
    assert.deepEqual(daneAfterLookup(ctx(), none), { kind: 'fallback', level: 'may', why: 'no TLSA records found', warnings: [] });
    const d = daneAfterLookup(ctx({ level: 'dane-only' }), none);
    assert.deepEqual(d.kind === 'defer' && [d.reason, d.failure.type], ['no TLSA records found', 'dane-required']);
  }
});

test('after the lookup: only PKIX usages → encrypt (dane) or defer (dane-only), tlsa-invalid', () => {
  const pkix = found([rec([1, 1, 1, 'aa'])]);
  const d = daneAfterLookup(ctx(), pkix);
  assert.deepEqual(d.kind === 'fallback' && [d.level, d.why, d.failure?.type], ['encrypt', 'TLSA records unusable', 'tlsa-invalid']);
  assert.deepEqual(d.warnings, ['_25._tcp.mx.example.com unsupported TLSA certificate usage: 1 1 1 AA']);
  const o = daneAfterLookup(ctx({ level: 'dane-only' }), pkix);
  assert.deepEqual(o.kind === 'defer' && [o.reason, o.failure.type], ['TLSA records unusable', 'tlsa-invalid']);
});

test('after the lookup: loadable-looking but unusable records → encrypt with tls_client.c warnings; dane-only must fail', () => {
  const bad = found([rec([3, 1, 7, 'aa']), rec([3, 2, 1, 'bb'])]);
  const d = daneAfterLookup(ctx(), bad);
  assert.equal(d.kind, 'fallback');
  assert.deepEqual(d.warnings, [`${W}: unusable TLSA RR: 3 1 7 AA`, `${W}: unusable TLSA RR: 3 2 1 BB`, `${W}: all TLSA records unusable, fallback to unauthenticated TLS`]);
  const o = daneAfterLookup(ctx({ level: 'dane-only' }), bad);
  assert.ok(o.kind === 'dane');
  assert.equal(o.mustFail, true);
  assert.equal(o.warnings.at(-1), `${W}: all TLSA records unusable`);
  const v = matchDane(input([...o.records], chainOf(good), { mustFail: o.mustFail, level: 'dane-only' }));
  assert.deepEqual(!v.ok && [v.reason, v.type, v.logLines], ['Server certificate not verified', 'tlsa-invalid', [`server certificate verification failed for ${W}: num=1:unspecified certificate verification error`]]);
});

test('after the lookup: usable records → dane with SNI base domain and "nexthop, hostname" names; insecure MX → halfdane or encrypt', () => {
  const r = found([rec(tlsaFor(good.cert, 3, 1, 1)), rec([0, 0, 1, 'aa'])], 'mx.provider.net');
  const d = daneAfterLookup(ctx({ mxNames: { qname: 'Example.COM', rname: 'mail.example.org' } }), r);
  assert.ok(d.kind === 'dane');
  assert.equal(d.level, 'dane');
  assert.equal(d.baseDomain, 'mx.provider.net');
  assert.deepEqual(d.matchNames, ['mx.provider.net', 'mail.example.org', 'example.com']);
  assert.equal(d.records.length, 1);
  assert.equal(d.policyStrings.length, 2, 'every record found is in the policy-string');
  assert.equal(d.mustFail, false);
  const half = daneAfterLookup(ctx({ mxSecure: false }), r);
  assert.equal(half.kind === 'dane' && half.level, 'halfdane');
  const enc = daneAfterLookup(ctx({ mxSecure: false, insecureMxPolicy: 'encrypt' }), r);
  assert.deepEqual(enc.kind === 'fallback' && [enc.level, enc.why], ['encrypt', 'Verification not possible, MX RRset is insecure']);
  const nomx = daneAfterLookup(ctx({ mxSecure: undefined, mxNames: undefined }), r);
  assert.deepEqual(nomx.kind === 'dane' && nomx.matchNames, ['mx.provider.net']);
});

// ---------------------------------------------------------------- matching

test('DANE-EE matches the leaf by certificate or key, every matching type; no name or expiry checks', () => {
  for (const [sel, mt] of [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]] as const) {
    const v = matchDane(input([rec(tlsaFor(expired.cert, 3, sel, mt))], chainOf(expired), { matchNames: ['nothing.example'] }));
    assert.ok(v.ok, `3 ${sel} ${mt}`);
    assert.equal(v.trust, 'Verified');
    assert.equal(v.how, 'EE certificate');
    assert.equal(v.depth, 0);
  }
  const v = matchDane(input([rec(tlsaFor(selfSigned.cert, 3, 1, 1))], chainOf(selfSigned)));
  assert.ok(v.ok);
  assert.equal(v.presentation, tlsaPresentation(rec(tlsaFor(selfSigned.cert, 3, 1, 1))));
  assert.deepEqual(v.logLines, [`${W}: Matched DANE EE certificate at depth 0: ${tlsaLogText(rec(tlsaFor(selfSigned.cert, 3, 1, 1)))}`]);
  assert.equal(matchDane(input([rec(tlsaFor(selfSigned.cert, 3, 1, 1))], chainOf(selfSigned), { logLevel: 1 })).logLines.length, 0);
  const half = matchDane(input([rec(tlsaFor(good.cert, 3, 1, 1))], chainOf(good), { level: 'halfdane' }));
  assert.equal(half.trust, 'Trusted');
});

test('no match: self-signed, untrusted issuer, or (PKIX-trusted) no matching DANE records — never a pass', () => {
  const other = rec([3, 1, 1, 'ab'.repeat(32)]);
  const s = matchDane(input([other], chainOf(selfSigned)));
  assert.deepEqual(!s.ok && [s.trust, s.type, s.reason, s.dsn, s.logLines], ['Untrusted', 'validation-failure', 'Server certificate not verified', '4.7.5', [`certificate verification failed for ${W}: self-signed certificate`]]);
  const u = matchDane(input([other], chainOf(good)));
  assert.deepEqual(!u.ok && u.logLines, [`certificate verification failed for ${W}: untrusted issuer /CN=sealpost test root`]);
  const p = matchDane(input([other], chainOf(good), { pkixTrusted: true }));
  assert.deepEqual(!p.ok && p.logLines, [`server certificate verification failed for ${W}: num=65:no matching DANE TLSA records`]);
  // A DANE-TA record never matches the leaf itself (OpenSSL: trust anchors sit above depth 0).
  const leafTa = matchDane(input([rec(tlsaFor(good.cert, 2, 0, 1))], chainOf(good)));
  assert.equal(leafTa.ok, false);
});

test('DANE-TA: an intermediate or the root in the presented chain anchors it; names are checked', () => {
  const byInter = matchDane(input([rec(tlsaFor(inter.cert, 2, 0, 1))], chainOf(good)));
  assert.ok(byInter.ok);
  assert.deepEqual([byInter.trust, byInter.how, byInter.depth, byInter.matchedName], ['Verified', 'TA certificate', 1, 'mx.example.com']);
  assert.deepEqual(byInter.logLines, [`${W}: matched peername: mx.example.com`, `${W}: Matched DANE TA certificate at depth 1: ${tlsaLogText(rec(tlsaFor(inter.cert, 2, 0, 1)))}`]);
  const byRoot = matchDane(input([rec(tlsaFor(root.cert, 2, 1, 2))], chainOf(good)));
  assert.ok(byRoot.ok && byRoot.depth === 2);
  // The next-hop domain is a reference identifier too ("nexthop, hostname").
  const viaNexthop = matchDane(input([rec(tlsaFor(inter.cert, 2, 0, 1))], chainOf(wrongName), { matchNames: ['mx.example.com', 'other.example.net'] }));
  assert.ok(viaNexthop.ok && viaNexthop.matchedName === 'other.example.net');
});

test('DANE-TA failures: name mismatch, expired leaf, wrong purpose, not a CA, bad signature, missing intermediate, depth', () => {
  const ta = [rec(tlsaFor(inter.cert, 2, 0, 1))];
  const name = matchDane(input(ta, chainOf(wrongName)));
  assert.deepEqual(!name.ok && [name.trust, name.type, name.logLines], ['Trusted', 'certificate-host-mismatch', [`server certificate verification failed for ${W}: num=62:hostname mismatch`]]);
  const exp = matchDane(input(ta, chainOf(expired)));
  assert.deepEqual(!exp.ok && [exp.type, exp.logLines], ['certificate-expired', [`server certificate verification failed for ${W}: certificate has expired`]]);
  const purpose = matchDane(input(ta, chainOf(clientOnly)));
  assert.deepEqual(!purpose.ok && purpose.logLines, [`certificate verification failed for ${W}: not designated for use as a server certificate`]);
  const notCa = matchDane(input([rec(tlsaFor(root.cert, 2, 0, 1))], chainOf(notCaLeaf)));
  assert.deepEqual(!notCa.ok && notCa.logLines, [`CA certificate verification failed for ${W}: num=24:invalid CA certificate`]);
  const chain = chainOf(good);
  const der = Buffer.from(chain[0]!.der);
  der[der.length - 1] ^= 0x01;
  const forged = matchDane(input(ta, [{ ...chain[0]!, der }, ...chain.slice(1)]));
  assert.deepEqual(!forged.ok && forged.logLines, [`server certificate verification failed for ${W}: num=7:certificate signature failure`]);
  const missing = matchDane(input([rec(tlsaFor(root.cert, 2, 0, 1))], [chain[0]!, chain[2]!]));
  assert.deepEqual(!missing.ok && missing.logLines, [`certificate verification failed for ${W}: untrusted issuer /CN=sealpost test inter`]);
  const deep = matchDane(input([rec(tlsaFor(root.cert, 2, 0, 1))], chain, { maxDepth: 1 }));
  assert.deepEqual(!deep.ok && deep.logLines, [`certificate verification failed for ${W}: certificate chain longer than limit(1)`]);
});

test('DANE-TA bare public key (2 1 0): a presented certificate signed by the key is anchored', () => {
  const key = rec(tlsaFor(inter.cert, 2, 1, 0));
  const leafOnly = [chainOf(good)[0]!];
  const v = matchDane(input([key], leafOnly));
  assert.ok(v.ok);
  assert.deepEqual([v.how, v.depth], ['TA public key verified certificate', 0]);
  // The certificate the key verified is checked for expiry like any other.
  const e = matchDane(input([key], [chainOf(expired)[0]!]));
  assert.equal(!e.ok && e.type, 'certificate-expired');
});

test('digest agility: per usage and selector only the most preferred matching type present is used', () => {
  const sha256 = rec(tlsaFor(good.cert, 3, 1, 1));
  const wrong512 = rec([3, 1, 2, 'cd'.repeat(64)]);
  assert.equal(matchDane(input([sha256, wrong512], chainOf(good))).ok, false, 'sha512 preferred: the matching sha256 record is ignored');
  assert.equal(matchDane(input([sha256, wrong512], chainOf(good), { digests: parseDaneDigests('sha256 sha512') })).ok, true);
  const full = rec(tlsaFor(good.cert, 3, 1, 0));
  assert.equal(matchDane(input([full, rec([3, 1, 1, 'ef'.repeat(32)])], chainOf(good))).ok, false, 'Full(0) ranks below a digest');
  // Different selectors are separate sets: the SPKI digest does not shadow the certificate digest.
  assert.equal(matchDane(input([rec(tlsaFor(good.cert, 3, 0, 1)), rec([3, 1, 2, 'cd'.repeat(64)])], chainOf(good))).ok, true);
});

test('over a real handshake: the chain Node presents is what DANE-TA needs', async () => {
  const pem = readFileSync(good.chain, 'utf8');
  const server = tlsCreateServer({ key: readFileSync(good.key), cert: pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----')) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (server.address() as AddressInfo).port;
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'mx.example.com', rejectUnauthorized: false });
    await new Promise<void>((r, j) => { socket.once('secureConnect', () => r()); socket.once('error', j); });
    const facts = peerFacts(socket);
    socket.destroy();
    assert.equal(facts.chain.length, 3);
    const v = matchDane(input([rec(tlsaFor(inter.cert, 2, 0, 1))], [...facts.chain]));
    assert.ok(v.ok && v.how === 'TA certificate' && v.depth === 1);
    assert.ok(matchDane(input([rec(tlsaFor(good.cert, 3, 1, 1))], [...facts.chain])).ok);
  } finally {
    server.close();
  }
});

test('daneSettings: Postfix parameters, with the errors of smtp.c for bad values', () => {
  const d = mkdtempSync(join(tmpdir(), 'sealpost-dane-cf-'));
  const load = (mainCf: string) => {
    writeFileSync(join(d, 'master.cf'), '');
    writeFileSync(join(d, 'main.cf'), mainCf);
    return daneSettings(loadConfig({ configDir: d, warn: () => undefined }));
  };
  try {
    const def = load('');
    assert.deepEqual([def.dnsSupport, def.dnssecEnabled, def.insecureMxPolicy, def.forceInsecureHostLookup, def.maxDepth], ['enabled', false, 'dane', false, 9]);
    assert.deepEqual([...def.digests.types.keys()], [2, 1]);
    assert.equal(load('disable_dns_lookups = yes\n').dnsSupport, 'disabled');
    const on = load('smtp_dns_support_level = dnssec\nsmtp_tls_dane_insecure_mx_policy = encrypt\ntls_dane_digests = sha256\nsmtp_tls_force_insecure_host_tlsa_lookup = yes\n');
    assert.deepEqual([on.dnssecEnabled, on.insecureMxPolicy, on.forceInsecureHostLookup, [...on.digests.types.keys()]], [true, 'encrypt', true, [1]]);
    assert.equal(load('smtp_dns_support_level = dnssec\nsmtp_host_lookup = native\n').dnssecEnabled, false);
    assert.throws(() => load('smtp_dns_support_level = secure\n'), (e: unknown) => e instanceof ConfigError && /invalid smtp_dns_support_level: "secure"/.test(e.message));
    assert.throws(() => load('smtp_tls_dane_insecure_mx_policy = verify\n'), (e: unknown) => e instanceof ConfigError && /invalid smtp_tls_dane_insecure_mx_policy: "verify"/.test(e.message));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
