/**
 * discover.test.ts — the `_mta-sts` TXT record: the RFC 8461 §3.1 grammar,
 * and discovery against the lab DNS server (none, several, invalid,
 * multi-string, SERVFAIL).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { discoverSts, isStsRecord, parseStsTxt, stsTxtName } from '../../../../src/delivery/mta-sts/discover.ts';
import { PacketResolver } from '../../../../src/delivery/dns/resolver.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';

test('parseStsTxt: the RFC example and its legal variants', () => {
  assert.deepEqual(parseStsTxt('v=STSv1; id=20160831085700Z;'), { ok: true, record: { id: '20160831085700Z', extensions: {} } });
  assert.deepEqual(parseStsTxt('v=STSv1;id=abc'), { ok: true, record: { id: 'abc', extensions: {} } });
  assert.deepEqual(parseStsTxt('v=STSv1 ;\tid=abc ; ext.1=val-ue'), { ok: true, record: { id: 'abc', extensions: { 'ext.1': 'val-ue' } } });
  assert.equal(isStsRecord('v=STSv1 ; id=x'), true);
});

test('parseStsTxt: refusals', () => {
  const bad: Array<[string, RegExp]> = [
    ['v=STSv2; id=abc;', /does not start/],
    ['v=stsv1; id=abc;', /does not start/],
    ['id=abc; v=STSv1;', /does not start/],
    ['v=STSv1', /does not start/],
    ['v=STSv1;', /no "id"/],
    ['v=STSv1; id=;', /bad id ""/],
    ['v=STSv1; id=abc-def;', /bad id "abc-def"/],
    [`v=STSv1; id=${'a'.repeat(33)};`, /bad id/],
    ['v=STSv1; id=abc; id=def;', /more than one "id"/],
    ['v=STSv1; id=abc;; x=y', /bad field ""/],
    ['v=STSv1; id=abc; x=a=b', /bad field/],
    ['v=STSv1; id=abc; x', /bad field "x"/],
    ['v=STSv1; ID=abc;', /bad field|no "id"/],
  ];
  for (const [text, want] of bad) {
    const p = parseStsTxt(text);
    assert.equal(p.ok, false, text);
    assert.match(!p.ok ? p.error : '', want, text);
  }
  assert.equal(parseStsTxt(`v=STSv1; id=${'a'.repeat(32)}`).ok, true);
  assert.equal(stsTxtName('Example.com.'), '_mta-sts.Example.com');
});

let lab: DnsLab;
let resolver: PacketResolver;

before(async () => {
  lab = await startDnsServer({
    '_mta-sts.good.example': { TXT: [['v=STSv1; ', 'id=2024'], 'v=spf1 -all'] },
    '_mta-sts.spf.example': { TXT: ['v=spf1 -all'] },
    '_mta-sts.two.example': { TXT: ['v=STSv1; id=a;', 'v=STSv1; id=b;'] },
    '_mta-sts.bad.example': { TXT: ['v=STSv1; id=not-valid;'] },
    'empty.example': { A: ['192.0.2.1'] },
    '_mta-sts.fail.example': { servfail: true },
  });
  resolver = new PacketResolver([{ host: lab.host, port: lab.port }], 500);
});
after(async () => { await lab.close(); });

test('discoverSts: one valid record among others, multi-string concatenated', async () => {
  assert.deepEqual(await discoverSts(resolver, 'good.example'), { kind: 'record', id: '2024', text: 'v=STSv1; id=2024' });
});

test('discoverSts: no record, no STS record, two records, an invalid one: no policy; SERVFAIL: tempfail', async () => {
  assert.deepEqual(await discoverSts(resolver, 'nowhere.example'), { kind: 'none', why: 'no-record', detail: 'no TXT record at _mta-sts.nowhere.example (NXDOMAIN)' });
  assert.equal((await discoverSts(resolver, 'spf.example')).kind === 'none' && (await discoverSts(resolver, 'spf.example') as { why: string }).why, 'no-sts-record');
  assert.deepEqual(await discoverSts(resolver, 'two.example'), { kind: 'none', why: 'multiple', detail: '2 "v=STSv1" TXT records at _mta-sts.two.example (exactly one is allowed)' });
  assert.deepEqual(await discoverSts(resolver, 'bad.example'), { kind: 'none', why: 'invalid', detail: 'invalid TXT record at _mta-sts.bad.example: bad id "not-valid" (1 to 32 letters and digits)' });
  assert.equal((await discoverSts(resolver, 'fail.example')).kind, 'tempfail');
});
