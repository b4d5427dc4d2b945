/**
 * policy-sources.ts — figures for the MTA-STS and DANE policy sources:
 *   - MTA-STS lookups/s with a warm cache: TXT answered in-process (the
 *     service's own cost), over UDP from the lab DNS server on loopback (what
 *     a local resolver adds), and through the worker-thread RPC (a
 *     MessagePort round trip on top);
 *   - DANE decisions/s (daneAfterLookup) and matches/s (matchDane) for a
 *     DANE-EE `3 1 1` record and a DANE-TA `2 0 1` record with a chain to
 *     verify;
 *   - whole policy decisions/s of the TLS engine (the hop step and the
 *     server step, as the SMTP client asks them for every delivery) for an
 *     MTA-STS enforce destination with a warm cache, against the same
 *     destination with a `secure` table entry.
 *
 * Contract: exports `bench()` like the other modules (listed in
 * bench/run.ts), printing one line per figure; runs alone with
 * `node --import tsx bench/policy-sources.ts`. Temp files (the test PKI, a
 * config directory) are removed at the end.
 *
 * Not here: relay throughput to an MTA-STS destination (relay-sts.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { X509Certificate } from 'node:crypto';
import { MemoryStsCache } from '../src/delivery/mta-sts/cache.ts';
import { openStsChannel, StsClient } from '../src/delivery/mta-sts/rpc.ts';
import { StsService } from '../src/delivery/mta-sts/service.ts';
import type { StsPolicySource } from '../src/delivery/mta-sts/service.ts';
import { PacketResolver } from '../src/delivery/dns/resolver.ts';
import type { TlsaRecord } from '../src/delivery/dns/tlsa.ts';
import { DEFAULT_DANE_DIGESTS, daneAfterLookup, matchDane } from '../src/delivery/tls/dane.ts';
import { certFactsFromDer } from '../src/delivery/tls/verify.ts';
import { loadConfig } from '../src/config/load.ts';
import { createTlsEngine } from '../src/delivery/tls/engine.ts';
import type { TlsPolicy } from '../src/delivery/tls/types.ts';
import { TableSet } from '../src/maps/registry.ts';
import { memoryMailLog } from '../src/reports/maillog.ts';
import { startDnsServer } from '../test/harness/dns-server.ts';
import type { Zone } from '../test/harness/dns-server.ts';
import { makeCa, mintCert, tlsaFor } from '../test/harness/pki.ts';

const DOMAINS = 200;

function line(label: string, value: string): void {
  process.stdout.write(`${label.padEnd(52)} ${value}\n`);
}

function perSecond(n: number, ms: number): string {
  return `${Math.round((n * 1000) / ms).toLocaleString('en-US')}/s`;
}

async function timeAsync(n: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await op(next++);
  }));
  return performance.now() - start;
}

function timeSync(n: number, op: (i: number) => unknown): number {
  const start = performance.now();
  for (let i = 0; i < n; i++) op(i);
  return performance.now() - start;
}

const POLICY = (d: string) => `version: STSv1\nmode: enforce\nmx: *.${d}\nmax_age: 604800\n`;

function stsService(txt: (name: string) => Promise<import('../src/delivery/dns/resolver.ts').LookupResult<string>>): StsService {
  return new StsService({
    resolver: { txt },
    getter: async (req) => ({ kind: 'response', status: 200, contentType: 'text/plain', body: Buffer.from(POLICY(req.host.slice(8))), address: '192.0.2.1' }),
    store: new MemoryStsCache(),
  });
}

async function warm(source: StsPolicySource): Promise<void> {
  for (let i = 0; i < DOMAINS; i++) await source.lookup(`d${i}.example`);
}

async function stsFigures(): Promise<void> {
  const inProcess = stsService(async (name) => ({ status: 'found', records: [`v=STSv1; id=${name.length}`], authenticated: false }));
  await warm(inProcess);
  const n = 200_000;
  line('MTA-STS lookup, warm cache, TXT in-process', perSecond(n, await timeAsync(n, 64, (i) => inProcess.lookup(`d${i % DOMAINS}.example`))));

  const zone: Zone = {};
  for (let i = 0; i < DOMAINS; i++) zone[`_mta-sts.d${i}.example`] = { TXT: [`v=STSv1; id=a${i}`] };
  const lab = await startDnsServer(zone);
  try {
    const resolver = new PacketResolver([{ host: lab.host, port: lab.port }], 2000);
    const overDns = stsService((name) => resolver.txt(name));
    await warm(overDns);
    const m = 20_000;
    line('MTA-STS lookup, warm cache, TXT over UDP (lab DNS)', perSecond(m, await timeAsync(m, 32, (i) => overDns.lookup(`d${i % DOMAINS}.example`))));
  } finally {
    await lab.close();
  }

  const channel = openStsChannel(inProcess);
  const client = new StsClient(channel.port, 5000);
  try {
    const k = 50_000;
    line('MTA-STS lookup, warm cache, via MessagePort RPC', perSecond(k, await timeAsync(k, 64, (i) => client.lookup(`d${i % DOMAINS}.example`))));
  } finally {
    client.close();
    channel.close();
  }
}

function daneFigures(): void {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-dane-'));
  try {
    const root = makeCa(dir, 'root');
    const inter = makeCa(dir, 'inter', root);
    const leaf = mintCert(dir, 'leaf', { names: ['mx.example.com'], issuer: inter, chain: [inter, root] });
    const pem = readFileSync(leaf.chain, 'utf8');
    const chain = [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g)].map((m) => certFactsFromDer(new X509Certificate(m[0]).raw));
    const rec = (t: [number, number, number, string]): TlsaRecord => ({ usage: t[0], selector: t[1], matchingType: t[2], data: Buffer.from(t[3], 'hex'), owner: '_25._tcp.mx.example.com' });
    const ee = [rec(tlsaFor(leaf.cert, 3, 1, 1))];
    const ta = [rec(tlsaFor(inter.cert, 2, 0, 1))];
    const ctx = {
      level: 'dane' as const, nexthop: 'example.com', dnssecEnabled: true, mxSecure: true, mxNames: { qname: 'example.com', rname: 'example.com' },
      insecureMxPolicy: 'dane' as const, digests: DEFAULT_DANE_DIGESTS, where: 'mx.example.com[192.0.2.1]:25',
    };
    const lookup = { kind: 'secure-records' as const, baseDomain: 'mx.example.com', qname: '_25._tcp.mx.example.com', records: [...ee, ...ta], warnings: [] };
    const n = 100_000;
    line('DANE decision (daneAfterLookup, 2 records)', perSecond(n, timeSync(n, () => daneAfterLookup(ctx, lookup))));
    const input = { chain, matchNames: ['mx.example.com', 'example.com'], level: 'dane' as const, where: ctx.where };
    if (!matchDane({ ...input, records: ee }).ok || !matchDane({ ...input, records: ta }).ok) throw new Error('DANE records do not match the bench chain');
    const m = 20_000;
    line('DANE match, DANE-EE 3 1 1', perSecond(m, timeSync(m, () => matchDane({ ...input, records: ee }))));
    const k = 5_000;
    line('DANE match, DANE-TA 2 0 1 (chain verified)', perSecond(k, timeSync(k, () => matchDane({ ...input, records: ta }))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The engine's hop step + server step per delivery: MTA-STS enforce (warm cache) against a table entry. */
async function engineFigures(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-engine-'));
  try {
    writeFileSync(join(dir, 'main.cf'), 'smtp_tls_security_level = may\nsmtp_tls_policy_maps = inline:{ {table.example = secure} }\n');
    writeFileSync(join(dir, 'master.cf'), '');
    const config = loadConfig({ configDir: dir, warn: () => undefined });
    const tables = new TableSet({ baseDir: dir });
    const sts = stsService(async (name) => ({ status: 'found', records: [`v=STSv1; id=${name.length}`], authenticated: false }));
    await warm(sts);
    const engine = createTlsEngine({ config, tables, log: memoryMailLog(), sts });
    const msg = { tlsRequiredNo: false, requireTls: false };
    const decide = async (domain: string, mx: string): Promise<void> => {
      const hop: TlsPolicy = await engine.policyFor(domain, msg);
      const s = await engine.serverPolicy(hop, { hostname: mx, address: '192.0.2.1', port: 25, mxAuthenticated: false });
      if (s.kind !== 'connect' || s.policy.level !== 'secure') throw new Error(`unexpected decision for ${domain}: ${JSON.stringify(s.kind)}`);
    };
    await decide('d1.example', 'mx.d1.example');
    const n = 50_000;
    line('policy decision, MTA-STS enforce (warm cache)', perSecond(n, await timeAsync(n, 64, (i) => decide(`d${i % DOMAINS}.example`, `mx.d${i % DOMAINS}.example`))));
    line('policy decision, the same with a "secure" table entry', perSecond(n, await timeAsync(n, 64, () => decide('table.example', 'mx.table.example'))));
    await tables.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  await stsFigures();
  daneFigures();
  await engineFigures();
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bench();
}
