/**
 * tlsa.test.ts — TLSA rdata from bytes, and lookupTlsa against the lab DNS
 * server: secure records with their base domain, secure denial, insecure
 * hosts and answers, SERVFAIL (bogus) as a lookup error, RFC 7672 §2.2.2
 * CNAME handling, the forced lookup, malformed records, and a resolver
 * that stops setting the AD bit halfway.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { PacketResolver } from '../../../../src/delivery/dns/resolver.ts';
import { lookupTlsa, parseTlsaRdata, tlsaQueryName } from '../../../../src/delivery/dns/tlsa.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';

const H = 'aabbccdd';
let lab: DnsLab;
let resolver: PacketResolver;

before(async () => {
  lab = await startDnsServer({
    'mx.secure.example': { A: ['192.0.2.1'], ad: true },
    '_25._tcp.mx.secure.example': { TLSA: [[3, 1, 1, H], [2, 0, 1, 'eeff']], ad: true },
    'mx.nodane.example': { A: ['192.0.2.2'], ad: true },
    '_25._tcp.mx.unsigned-tlsa.example': { TLSA: [[3, 1, 1, H]] },
    'mx.unsigned-tlsa.example': { A: ['192.0.2.3'], ad: true },
    'mx.bogus.example': { A: ['192.0.2.4'], ad: true },
    '_25._tcp.mx.bogus.example': { servfail: true },
    'mx.plain.example': { A: ['192.0.2.5'] },
    '_25._tcp.mx.plain.example': { TLSA: [[3, 1, 1, H]], ad: true },
    // Alias: mx.alias.example (secure CNAME) -> mx.target.net (secure), TLSA at both.
    'mx.alias.example': { CNAME: 'mx.target.net', ad: true },
    'mx.target.net': { A: ['192.0.2.6'], ad: true },
    '_25._tcp.mx.target.net': { TLSA: [[3, 1, 1, '01']], ad: true },
    '_25._tcp.mx.alias.example': { TLSA: [[3, 1, 1, '02']], ad: true },
    // Alias whose target has no TLSA: falls back to the original name.
    'mx.alias2.example': { CNAME: 'mx.target2.net', ad: true },
    'mx.target2.net': { A: ['192.0.2.7'], ad: true },
    '_25._tcp.mx.alias2.example': { TLSA: [[3, 1, 1, '03']], ad: true },
    // Secure alias to an insecure target: only the original name is asked.
    'mx.alias3.example': { CNAME: 'mx.target3.net', ad: true },
    'mx.target3.net': { A: ['192.0.2.8'] },
    '_25._tcp.mx.alias3.example': { TLSA: [[3, 1, 1, '04']], ad: true },
    '_25._tcp.mx.target3.net': { TLSA: [[3, 1, 1, '05']], ad: true },
    // Insecure alias to an insecure target: no DANE.
    'mx.alias4.example': { CNAME: 'mx.target4.net' },
    'mx.target4.net': { A: ['192.0.2.9'] },
    // Target lookup fails: a lookup error, the original is not asked.
    'mx.alias5.example': { CNAME: 'mx.target5.net', ad: true },
    'mx.target5.net': { A: ['192.0.2.10'], ad: true },
    '_25._tcp.mx.target5.net': { servfail: true },
    '_25._tcp.mx.alias5.example': { TLSA: [[3, 1, 1, '06']], ad: true },
    // Malformed records next to a good one; a TLSA record behind a CNAME.
    '_25._tcp.mx.malformed.example': { TLSA_RAW: ['030101', '0301'], TLSA: [[3, 1, 1, H]], ad: true },
    '_25._tcp.mx.cnamed.example': { CNAME: '_dane.provider.net', ad: true },
    '_dane.provider.net': { TLSA: [[2, 0, 1, H]], ad: true },
    // AD for the first answer only.
    '_25._tcp.mx.flaky.example': { TLSA: [[3, 1, 1, H]], ad: true, adLimit: 1 },
  }, { secureZones: ['nodane.example'] });
  resolver = new PacketResolver([{ host: lab.host, port: lab.port }], 500);
});
after(async () => { await lab.close(); });

const secureHost = (hostname: string, canonicalName?: string) => ({ hostname, addressAuthenticated: true, ...(canonicalName ? { canonicalName } : {}) });

test('parseTlsaRdata: fields from bytes; no association data is malformed', () => {
  const p = parseTlsaRdata(Buffer.from([3, 1, 1, 0xab, 0xcd]), '_25._tcp.mx.example');
  assert.ok(p.ok);
  assert.deepEqual({ ...p.record, data: p.record.data.toString('hex') }, { usage: 3, selector: 1, matchingType: 1, data: 'abcd', owner: '_25._tcp.mx.example' });
  // Unknown usage, selector and matching type are well-formed (dane.ts calls them unusable).
  const odd = parseTlsaRdata(Buffer.from([7, 9, 200, 1]));
  assert.ok(odd.ok && odd.record.usage === 7 && odd.record.selector === 9 && odd.record.matchingType === 200);
  assert.deepEqual(parseTlsaRdata(Buffer.from([3, 1, 1])), { ok: false, error: 'truncated TLSA RR length == 3' });
  assert.deepEqual(parseTlsaRdata(Buffer.alloc(0)), { ok: false, error: 'truncated TLSA RR length == 0' });
  assert.equal(tlsaQueryName(25, 'mx.example.com.'), '_25._tcp.mx.example.com');
});

test('secure records with the base domain', async () => {
  const r = await lookupTlsa(resolver, secureHost('mx.secure.example'), 25);
  assert.equal(r.kind, 'secure-records');
  assert.ok(r.kind === 'secure-records');
  assert.equal(r.baseDomain, 'mx.secure.example');
  assert.equal(r.qname, '_25._tcp.mx.secure.example');
  assert.deepEqual(r.records.map((x) => [x.usage, x.selector, x.matchingType, x.data.toString('hex')]), [[3, 1, 1, H], [2, 0, 1, 'eeff']]);
});

test('secure denial is secure-none; an unsigned TLSA answer is insecure', async () => {
  assert.equal((await lookupTlsa(resolver, secureHost('mx.nodane.example'), 25)).kind, 'secure-none');
  const r = await lookupTlsa(resolver, secureHost('mx.unsigned-tlsa.example'), 25);
  assert.deepEqual({ kind: r.kind, why: r.kind === 'insecure' && r.why }, { kind: 'insecure', why: 'answer-insecure' });
});

test('SERVFAIL (bogus) is a lookup error with Postfix text', async () => {
  const r = await lookupTlsa(resolver, secureHost('mx.bogus.example'), 25);
  assert.equal(r.kind, 'error');
  assert.ok(r.kind === 'error');
  assert.equal(r.reason, 'TLSA lookup error for mx.bogus.example:25');
  assert.equal(r.dsn, '4.7.5');
  assert.match(r.warnings[0]!, /^DANE TLSA lookup problem: .*SERVFAIL/);
});

test('an insecure host gets no TLSA lookup unless forced', async () => {
  const before = lab.queries.length;
  const r = await lookupTlsa(resolver, { hostname: 'mx.plain.example', addressAuthenticated: false }, 25);
  assert.deepEqual({ kind: r.kind, why: r.kind === 'insecure' && r.why }, { kind: 'insecure', why: 'host-insecure' });
  assert.equal(lab.queries.length, before, 'no query was sent');
  const forced = await lookupTlsa(resolver, { hostname: 'mx.plain.example', addressAuthenticated: false }, 25, { forceInsecureHostLookup: true });
  assert.equal(forced.kind, 'secure-records');
});

test('CNAME: the fully expanded name first, its name is the base domain', async () => {
  const r = await lookupTlsa(resolver, secureHost('mx.alias.example', 'mx.target.net'), 25);
  assert.ok(r.kind === 'secure-records');
  assert.equal(r.baseDomain, 'mx.target.net');
  assert.equal(r.records[0]!.data.toString('hex'), '01');
});

test('CNAME: nothing at the expanded name, then the original name', async () => {
  const r = await lookupTlsa(resolver, secureHost('mx.alias2.example', 'mx.target2.net'), 25);
  assert.ok(r.kind === 'secure-records');
  assert.equal(r.baseDomain, 'mx.alias2.example');
  assert.equal(r.records[0]!.data.toString('hex'), '03');
});

test('CNAME: a secure alias to an insecure target asks only the original name', async () => {
  const r = await lookupTlsa(resolver, { hostname: 'mx.alias3.example', canonicalName: 'mx.target3.net', addressAuthenticated: false }, 25);
  assert.ok(r.kind === 'secure-records');
  assert.equal(r.baseDomain, 'mx.alias3.example');
  assert.equal(r.records[0]!.data.toString('hex'), '04');
  const insecure = await lookupTlsa(resolver, { hostname: 'mx.alias4.example', canonicalName: 'mx.target4.net', addressAuthenticated: false }, 25);
  assert.equal(insecure.kind, 'insecure');
});

test('CNAME: an error at the expanded name is final', async () => {
  const r = await lookupTlsa(resolver, secureHost('mx.alias5.example', 'mx.target5.net'), 25);
  assert.equal(r.kind, 'error');
  assert.ok(r.kind === 'error');
  assert.equal(r.reason, 'TLSA lookup error for mx.alias5.example:25');
});

test('CNAME: an alias that is no longer a CNAME is a lookup error', async () => {
  const r = await lookupTlsa(resolver, { hostname: 'mx.nodane.example', canonicalName: 'elsewhere.example', addressAuthenticated: false }, 25);
  assert.equal(r.kind, 'error');
  assert.match(r.warnings.join('\n'), /DNSSEC status lookup error for mx\.nodane\.example: no longer a CNAME/);
});

test('malformed rdata is dropped with a warning, good records kept; TLSA behind a CNAME keeps its owner', async () => {
  const r = await lookupTlsa(resolver, secureHost('mx.malformed.example'), 25);
  assert.ok(r.kind === 'secure-records');
  assert.equal(r.records.length, 1);
  assert.deepEqual(r.warnings, ['_25._tcp.mx.malformed.example: truncated TLSA RR length == 3', '_25._tcp.mx.malformed.example: truncated TLSA RR length == 2']);
  const c = await lookupTlsa(resolver, secureHost('mx.cnamed.example'), 25);
  assert.ok(c.kind === 'secure-records');
  assert.equal(c.baseDomain, 'mx.cnamed.example');
  assert.equal(c.records[0]!.owner, '_dane.provider.net');
});

test('a resolver that drops the AD bit halfway: the next answer is insecure, never secure records', async () => {
  assert.equal((await lookupTlsa(resolver, secureHost('mx.flaky.example'), 25)).kind, 'secure-records');
  assert.equal((await lookupTlsa(resolver, secureHost('mx.flaky.example'), 25)).kind, 'insecure');
  lab.stripAd = true;
  try {
    assert.equal((await lookupTlsa(resolver, secureHost('mx.secure.example'), 25)).kind, 'insecure');
  } finally {
    lab.stripAd = false;
  }
});
