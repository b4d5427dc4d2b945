import { test } from 'node:test';
import assert from 'node:assert/strict';
import { discoverRua, parseTlsRptRecord } from '../../../../src/reports/tlsrpt/discover.ts';
import { PacketTxtLookup } from '../../../../src/reports/tlsrpt/txt.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';

test('RFC 8460 §3 record syntax, strictly', () => {
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=mailto:tlsrpt@example.com,https://reports.example.com/v1'), {
    ok: true,
    rua: [
      { scheme: 'mailto', uri: 'mailto:tlsrpt@example.com', addresses: ['tlsrpt@example.com'] },
      { scheme: 'https', uri: 'https://reports.example.com/v1' },
    ],
  });
  // Blanks around ';', a trailing ';', an unknown extension, a mailto query part.
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1;rua=mailto:r@x.example?subject=report ; ext_1=foo;'), {
    ok: true,
    rua: [{ scheme: 'mailto', uri: 'mailto:r@x.example?subject=report', addresses: ['r@x.example'] }],
  });
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=mailto:r@x.example%2Cs@y.example'), { ok: true, rua: [{ scheme: 'mailto', uri: 'mailto:r@x.example%2Cs@y.example', addresses: ['r@x.example', 's@y.example'] }] });
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua = mailto:x@y'), { ok: false, error: 'malformed field "rua = mailto:x@y"' });
  assert.deepEqual(parseTlsRptRecord('rua=mailto:x@y.example; v=TLSRPTv1'), { ok: false, error: 'the record does not start with v=TLSRPTv1' });
  assert.deepEqual(parseTlsRptRecord('v=tlsrptv1; rua=mailto:x@y.example'), { ok: false, error: 'the record does not start with v=TLSRPTv1' });
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1'), { ok: false, error: 'no rua field' });
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=mailto:a@b.example; rua=mailto:c@d.example'), { ok: false, error: 'more than one rua field' });
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=http://insecure.example/r,ftp://x'), { ok: false, error: 'no usable mailto: or https: URI in rua' });
  assert.deepEqual(parseTlsRptRecord('v=TLSRPTv1; rua=mailto:a@b.example,,https://x.example'), { ok: false, error: 'malformed rua "mailto:a@b.example,,https://x.example"' });
  assert.equal(parseTlsRptRecord('v=TLSRPTv1; rua=mailto:a@b.example; x=has space').ok, false);
});

test('discovery through a real DNS server: one record, several, none, unusable, tempfail', async () => {
  const dns = await startDnsServer({
    '_smtp._tls.one.example': { TXT: ['v=TLSRPTv1; rua=mailto:r@one.example', 'v=spf1 -all'] },
    '_smtp._tls.two.example': { TXT: ['v=TLSRPTv1; rua=mailto:a@two.example', 'v=TLSRPTv1; rua=mailto:b@two.example'] },
    '_smtp._tls.bad.example': { TXT: ['v=TLSRPTv1; rua=gopher://x'] },
    '_smtp._tls.fail.example': { servfail: true },
    'nodata.example': { A: ['127.0.0.1'] },
  });
  try {
    const lookup = new PacketTxtLookup([{ host: '127.0.0.1', port: dns.port }], 2000);
    assert.deepEqual(await discoverRua('one.example', lookup), { kind: 'record', rua: [{ scheme: 'mailto', uri: 'mailto:r@one.example', addresses: ['r@one.example'] }] });
    assert.deepEqual(await discoverRua('two.example', lookup), { kind: 'none', why: '_smtp._tls.two.example: 2 TLSRPTv1 records (exactly one is required)' });
    assert.deepEqual(await discoverRua('bad.example', lookup), { kind: 'none', why: '_smtp._tls.bad.example: no usable mailto: or https: URI in rua' });
    assert.deepEqual(await discoverRua('none.example', lookup), { kind: 'none', why: '_smtp._tls.none.example: NXDOMAIN' });
    assert.equal((await discoverRua('fail.example', lookup)).kind, 'tempfail');
  } finally {
    await dns.close();
  }
});
