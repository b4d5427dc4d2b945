/**
 * policy-table.test.ts — parsing smtp_tls_policy_maps values: levels,
 * attributes, the `{ name = value }` form, and every Postfix error text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyEntry, splitNameValue } from '../../../../src/delivery/tls/policy-table.ts';

function ok(value: string) {
  const r = parsePolicyEntry(value);
  assert.ok(r.ok, `${value}: ${r.ok ? '' : r.error}`);
  return r.entry;
}
function err(value: string): string {
  const r = parsePolicyEntry(value);
  assert.equal(r.ok, false, value);
  return r.ok ? '' : r.error;
}

test('levels: every configurable level, case-insensitive; halfdane and junk are invalid', () => {
  for (const l of ['none', 'may', 'encrypt', 'fingerprint', 'dane', 'dane-only', 'verify', 'secure']) assert.equal(ok(l).level, l);
  assert.equal(ok('SECURE').level, 'secure');
  assert.equal(err('halfdane'), 'invalid security level "halfdane"');
  assert.equal(err('bogus match=x'), 'invalid security level "bogus"');
  assert.equal(err(''), 'invalid empty policy');
  assert.equal(err('  ,  '), 'invalid empty policy');
});

test('reference examples parse to the documented attributes', () => {
  assert.deepEqual(ok('encrypt protocols=>=TLSv1.2 ciphers=high'), {
    level: 'encrypt',
    match: [],
    tafiles: [],
    sts: { policyStrings: [], mxHostPatterns: [] },
    ciphers: 'high',
    protocols: '>=TLSv1.2',
  });
  assert.deepEqual(ok('verify match=hostname:dot-nexthop ciphers=high').match, ['hostname', 'dot-nexthop']);
  assert.deepEqual(ok('secure match=.example.net:example.net').match, ['.example.net', 'example.net']);
  assert.deepEqual(ok('fingerprint match=b6:b4:72 match=51:e9:af|AA:BB').match, ['b6:b4:72', '51:e9:af', 'AA:BB']);
  const e = ok('may protocols=>=TLSv1 ciphers=medium exclude=3DES');
  assert.equal(e.exclude, '3DES');
  assert.equal(ok('may, ciphers=high,exclude=RC4').ciphers, 'high');
});

test('attributes: servername, tafile, connection_reuse (last wins), enable_rpk', () => {
  assert.equal(ok('may servername=hostname').servername, 'hostname');
  assert.equal(ok('encrypt servername=NEXTHOP').servername, 'nexthop');
  assert.equal(ok('encrypt servername=mx.example.com').servername, 'mx.example.com');
  assert.deepEqual(ok('secure tafile=/a tafile=/b').tafiles, ['/a', '/b']);
  assert.equal(ok('encrypt connection_reuse=yes connection_reuse=no').connectionReuse, false);
  assert.equal(ok('may enable_rpk=yes').enableRpk, true);
});

test('the { name = value } form protects whitespace (MTA-STS plugins)', () => {
  const e = ok('secure match=mx1.example.com policy_type=sts policy_domain=example.com { policy_string = mode: enforce } { policy_string = mx: mx1.example.com } mx_host_pattern=*.example.com policy_ttl=86400');
  assert.deepEqual(e.sts, {
    policyType: 'sts',
    policyDomain: 'example.com',
    policyStrings: ['mode: enforce', 'mx: mx1.example.com'],
    mxHostPatterns: ['*.example.com'],
  });
  assert.equal(ok('secure policy_type=sts policy_failure=sts-webpki-invalid').sts.policyFailure, 'sts-webpki-invalid');
});

test('error texts (smtp_tls_policy.c)', () => {
  assert.equal(err('encrypt ciphers'), `malformed attribute/value pair "ciphers": missing '=' after attribute name`);
  assert.equal(err('encrypt =high'), 'malformed attribute/value pair "=high": missing attribute name');
  assert.equal(err('encrypt { ciphers = high'), `malformed attribute/value pair "{ ciphers = high": missing '}' in "{ ciphers = high"`);
  assert.equal(err('encrypt ciphers='), 'attribute "ciphers" has empty value');
  assert.equal(err('encrypt ciphers=high ciphers=medium'), 'attribute "ciphers" is specified multiple times');
  assert.equal(err('encrypt protocols=>=TLSv1 protocols=TLSv1.2'), 'attribute "protocols" is specified multiple times');
  assert.equal(err('encrypt exclude=RC4 exclude=MD5'), 'attribute "exclude" is specified multiple times');
  assert.equal(err('may servername=a servername=b'), 'attribute "servername" is specified multiple times');
  assert.equal(err('verify match='), 'attribute "match" has empty value');
  assert.equal(err('encrypt match=nexthop'), 'attribute "match" invalid at security level "encrypt"');
  assert.equal(err('may match=hostname'), 'attribute "match" invalid at security level "may"');
  assert.equal(err('dane match=hostname'), 'attribute "match" invalid at security level "dane"');
  assert.equal(err('encrypt tafile=/etc/ta.pem'), 'attribute "tafile" invalid at security level "encrypt"');
  assert.equal(err('fingerprint tafile=/etc/ta.pem'), 'attribute "tafile" invalid at security level "fingerprint"');
  assert.equal(err('secure tafile='), 'attribute "tafile" has empty value');
  assert.equal(err('verify enable_rpk=yes'), 'attribute "enable_rpk" invalid at security level "verify"');
  assert.equal(err('encrypt connection_reuse=maybe'), 'attribute "connection_reuse" has bad value: "maybe"');
  assert.equal(err('may servername=-bad-'), '"servername=-bad-" specifies an invalid hostname');
  assert.equal(err('secure matches=nexthop'), 'invalid attribute name: "matches"');
  assert.equal(err('secure policy_domain=example.com'), 'built-in policy has unexpected attribute "policy_domain"');
  assert.equal(err('secure policy_type=dane'), 'attribute "policy_type" has bad value: "dane"');
  assert.equal(err('secure policy_type=sts policy_failure=oops'), 'attribute "policy_failure" has bad value: "oops"');
});

test('level none ignores attributes with a warning each', () => {
  const r = parsePolicyEntry('none ciphers=high match=x');
  assert.ok(r.ok);
  assert.deepEqual(r.warnings, ['ignoring attribute "ciphers=high" with TLS disabled', 'ignoring attribute "match=x" with TLS disabled']);
});

test('splitNameValue: blanks around = are allowed (split_nameval)', () => {
  assert.deepEqual(splitNameValue('  name =  value  '), { name: 'name', value: 'value' });
  assert.deepEqual(splitNameValue('a=b=c'), { name: 'a', value: 'b=c' });
  assert.deepEqual(splitNameValue('a b'), { error: "missing '=' after attribute name" });
});
