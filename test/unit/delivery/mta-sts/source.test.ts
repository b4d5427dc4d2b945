/**
 * source.test.ts — the daemon's MTA-STS source as main.cf builds it
 * (createStsService): the lab DNS server answers the `_mta-sts` TXT record
 * and the policy host's address, the lab HTTPS host serves the policy on
 * port 443 with a certificate from the test CA named in smtp_tls_CAfile,
 * and the cache lands in $data_directory/mta-sts and survives a restart
 * while the policy host is down.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { createResolver } from '../../../../src/delivery/dns/resolver.ts';
import { createStsService, stsCacheDir, stsEnabled } from '../../../../src/delivery/mta-sts/service.ts';
import { makeCa, mintCert } from '../../../harness/pki.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import type { DnsLab } from '../../../harness/dns-server.ts';
import { startStsServer } from '../../../harness/sts-server.ts';
import type { StsLab } from '../../../harness/sts-server.ts';

let dir: string;
let dns: DnsLab;
let sts: StsLab;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-sts-source-'));
  const ca = makeCa(dir, 'ca');
  const cert = mintCert(dir, 'policy-host', { names: ['mta-sts.example.com'], issuer: ca, chain: [ca] });
  sts = await startStsServer({ sites: { 'mta-sts.example.com': { cert, policy: 'version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n' } } });
  dns = await startDnsServer({
    '_mta-sts.example.com': { TXT: ['v=STSv1; id=20261201;'] },
    'mta-sts.example.com': { A: [sts.address] },
  });
  writeFileSync(join(dir, 'master.cf'), '');
  writeFileSync(join(dir, 'main.cf'), [
    `data_directory = ${join(dir, 'data')}`,
    `smtp_tls_CAfile = ${ca.cert}`,
    `sealpost_dns_resolvers = ${dns.host}:${dns.port}`,
    'sealpost_mta_sts_fetch_timeout = 5s',
    'inet_protocols = ipv4',
  ].join('\n') + '\n');
});
after(async () => {
  await sts.close();
  await dns.close();
  rmSync(dir, { recursive: true, force: true });
});

test('from main.cf: discover, fetch over verified HTTPS, cache on disk; a restart uses the cache while the host is down', async () => {
  const config = loadConfig({ configDir: dir, warn: () => undefined });
  assert.equal(stsEnabled(config), true);
  assert.equal(stsCacheDir(config), join(dir, 'data', 'mta-sts'));
  const warnings: string[] = [];
  const first = createStsService(config, createResolver(config), { warn: (t) => warnings.push(t) });
  const a = await first.lookup('example.com');
  assert.ok(a.kind === 'policy', JSON.stringify(a));
  assert.deepEqual([a.from, a.policy.id, a.policy.mode, [...a.policy.mx]], ['fetch', '20261201', 'enforce', ['mx.example.com']]);
  assert.ok(existsSync(join(dir, 'data', 'mta-sts', 'example.com.json')));
  assert.equal(sts.requests.length, 1);

  await sts.pause();
  const second = createStsService(config, createResolver(config), { warn: (t) => warnings.push(t) });
  const b = await second.lookup('example.com');
  assert.ok(b.kind === 'policy' && b.from === 'cache' && b.policy.id === '20261201');
  // A new id while the host is down: the cached policy still applies, and the failure is said.
  dns.zone['_mta-sts.example.com'] = { TXT: ['v=STSv1; id=20261202;'] };
  const c = await second.lookup('example.com');
  assert.ok(c.kind === 'policy' && c.policy.id === '20261201' && c.refreshFailure?.type === 'sts-policy-fetch-error');
  assert.match(warnings.join('\n'), /keeping the cached policy id 20261201/);
  await sts.resume();
  // A failed fetch is not repeated for the same id within the retry time (RFC 8461 §3.3 rate limit).
  const requests = sts.requests.length;
  const again = await second.lookup('example.com');
  assert.ok(again.kind === 'policy' && again.policy.id === '20261201' && again.refreshFailure?.type === 'sts-policy-fetch-error');
  assert.equal(sts.requests.length, requests);
  // "fetch now" (the cache tool) is not rate-limited.
  const d = await second.refresh('example.com');
  assert.ok(d.kind === 'policy' && d.from === 'fetch' && d.policy.id === '20261202');
});

test('sealpost_mta_sts = no turns the source off', () => {
  const off = mkdtempSync(join(tmpdir(), 'sealpost-sts-off-'));
  try {
    writeFileSync(join(off, 'master.cf'), '');
    writeFileSync(join(off, 'main.cf'), 'sealpost_mta_sts = no\n');
    assert.equal(stsEnabled(loadConfig({ configDir: off, warn: () => undefined })), false);
  } finally {
    rmSync(off, { recursive: true, force: true });
  }
});
