/**
 * published-records.test.ts — the session records (delivery/outcome.ts) of
 * deliveries under DANE and MTA-STS, from the real SMTP agent and TLS engine
 * over loopback (receivers, the lab DNS with the AD bit) with an injected
 * MTA-STS source: the AppliedPolicy names the source (`dane` / `mta-sts`),
 * the RFC 8460 policy type (`tlsa` / `sts`), domain, strings, mx patterns,
 * mode and id; failures carry their RFC 8460 result type, and an MTA-STS
 * `testing` failure is recorded with `enforced: false` while the mail goes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { createResolver } from '../../../../src/delivery/dns/resolver.ts';
import type { StsCacheEntry } from '../../../../src/delivery/mta-sts/cache.ts';
import type { StsLookup, StsPolicySource } from '../../../../src/delivery/mta-sts/service.ts';
import { createSmtpAgent } from '../../../../src/delivery/smtp/agent.ts';
import { createTlsEngine } from '../../../../src/delivery/tls/engine.ts';
import type { DeliveryResult } from '../../../../src/delivery/types.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { tempDir } from '../../../harness/cli.ts';
import { startDnsServer, type DnsLab } from '../../../harness/dns-server.ts';
import { makeCa, mintCert, tlsaFor, type CertAuthority, type ServerCert } from '../../../harness/pki.ts';
import { labRequest, startReceivers, type Receiver } from '../../../harness/smtp-receiver.ts';

let dir: string;
let cleanup: () => void;
let root: CertAuthority;
let self: ServerCert;
let rx: Receiver[];
let dns: DnsLab;

before(async () => {
  const t = tempDir('sealpost-published-records-');
  dir = t.dir;
  cleanup = t.cleanup;
  root = makeCa(dir, 'root');
  self = mintCert(dir, 'self', { names: ['mx.x.test'] });
  rx = await startReceivers([{ name: 'mx.x.test', tls: { key: self.key, cert: self.cert } }]);
  const port = rx[0]!.port;
  dns = await startDnsServer({
    'x.test': { MX: [[10, 'mx.x.test']], ad: true },
    'mx.x.test': { A: ['127.0.0.2'], ad: true },
    [`_${port}._tcp.mx.x.test`]: { TLSA: [tlsaFor(self.cert, 3, 1, 1)], ad: true },
  });
});
after(async () => {
  await Promise.all(rx.map((r) => r.close()));
  await dns.close();
  cleanup();
});

function stsEntry(mode: 'enforce' | 'testing', mx: string[]): StsCacheEntry {
  const lines = ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), 'max_age: 86400'];
  return { domain: 'x.test', id: 'abc123', fetchedAt: Date.now(), expiresAt: Date.now() + 86_400_000, mode, mx, maxAge: 86400, lines };
}

async function deliver(level: string, sts?: StsCacheEntry): Promise<{ result: DeliveryResult; log: string[] }> {
  const sub = join(dir, `${level}-${sts?.mode ?? 'none'}-${sts?.mx.join('') ?? ''}`);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(sub, { recursive: true });
  writeFileSync(join(sub, 'main.cf'), [
    'myhostname = client.test', 'inet_protocols = ipv4', `smtp_tls_security_level = ${level}`, 'smtp_dns_support_level = dnssec',
    `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`, `smtp_tcp_port = ${rx[0]!.port}`, `smtp_tls_CAfile = ${root.cert}`, 'smtp_tls_loglevel = 1', '',
  ].join('\n'));
  const config = loadConfig({ configDir: sub });
  const log = memoryMailLog();
  const tables = new TableSet({ baseDir: sub });
  const source: StsPolicySource | undefined = sts ? { lookup: async (): Promise<StsLookup> => ({ kind: 'policy', policy: sts, from: 'cache' }) } : undefined;
  const tls = createTlsEngine({ config, tables, log, ...(source ? { sts: source } : {}) });
  const agent = createSmtpAgent({ config, resolver: createResolver(config), tls, tables, log, service: 'smtp' });
  try {
    const result = await agent.deliver(labRequest(sub, { recipients: ['bob@x.test'], nexthops: ['x.test'] }));
    return { result, log: log.lines };
  } finally {
    await agent.close();
    await tables.close();
  }
}

test('DANE: the record names source dane, policy type tlsa, the TLSA RRset and the matched record', async () => {
  const { result } = await deliver('dane');
  assert.equal(result.outcomes[0]!.status, 'sent');
  const r = result.sessions![0]!;
  assert.deepEqual([r.policy.source, r.policy.type, r.policy.domain, r.policy.level], ['dane', 'tlsa', 'x.test', 'dane']);
  const tlsa = tlsaFor(self.cert, 3, 1, 1).join(' ');
  assert.deepEqual(r.policy.strings, [tlsa]);
  assert.equal(r.tls?.peer?.matchedTlsa, tlsa);
  assert.deepEqual(r.result, { kind: 'success' });
});

test('MTA-STS enforce, a certificate the policy refuses: failure enforced, type and reason from where it was decided', async () => {
  const { result } = await deliver('may', stsEntry('enforce', ['mx.x.test']));
  const o = result.outcomes[0]!;
  assert.equal(o.status, 'deferred');
  assert.equal(o.reason, 'Server certificate not verified: MTA-STS policy of x.test demands TLS 1.2 or later with a valid certificate for mx.x.test');
  const r = result.sessions![0]!;
  assert.deepEqual([r.policy.source, r.policy.type, r.policy.domain, r.policy.stsMode, r.policy.stsId, [...r.policy.mxHostPatterns], r.policy.level], ['mta-sts', 'sts', 'x.test', 'enforce', 'abc123', ['mx.x.test'], 'secure']);
  assert.deepEqual(r.policy.strings, ['version: STSv1', 'mode: enforce', 'mx: mx.x.test', 'max_age: 86400']);
  assert.equal(r.result.kind === 'failure' && r.result.type, 'certificate-not-trusted');
  assert.equal(r.result.kind === 'failure' && r.result.enforced, true);
});

test('MTA-STS enforce, an unlisted MX: no connection, a record of the decision (validation-failure, enforced)', async () => {
  const before = rx[0]!.connections;
  const { result, log } = await deliver('may', stsEntry('enforce', ['other.x.test']));
  assert.equal(rx[0]!.connections, before);
  const r = result.sessions![0]!;
  assert.equal(r.tls, undefined);
  assert.deepEqual(r.result, { kind: 'failure', type: 'validation-failure', reason: 'MX host mx.x.test is not listed in the MTA-STS policy of x.test', enforced: true });
  assert.ok(log.includes("sealpost/smtp: warning: MX name 'mx.x.test' does not match STS MX pattern for 'x.test'"), log.join('\n'));
});

test('MTA-STS testing, a self-signed certificate: sent, the failure recorded with enforced: false', async () => {
  const { result } = await deliver('may', stsEntry('testing', ['mx.x.test']));
  assert.equal(result.outcomes[0]!.status, 'sent');
  assert.equal(result.outcomes[0]!.tls, 'may');
  const r = result.sessions![0]!;
  assert.deepEqual([r.policy.source, r.policy.type, r.policy.stsMode, r.policy.level], ['mta-sts', 'sts', 'testing', 'may']);
  assert.equal(r.result.kind, 'failure');
  assert.equal(r.result.kind === 'failure' && r.result.enforced, false);
  assert.equal(r.result.kind === 'failure' && r.result.type, 'certificate-not-trusted');
  assert.match(r.logLines.at(-1)!, /^MTA-STS policy of x\.test \(mode testing\) would have failed: certificate verification failed for mx\.x\.test\[127\.0\.0\.2\]:\d+: self-signed certificate$/);
});

test('DANE beats MTA-STS: a usable TLSA record wins over an enforce policy that does not list the MX', async () => {
  const { result } = await deliver('dane', stsEntry('enforce', ['other.x.test']));
  assert.equal(result.outcomes[0]!.status, 'sent');
  assert.equal(result.outcomes[0]!.tls, 'dane');
  assert.equal(result.sessions![0]!.policy.source, 'dane');
});
