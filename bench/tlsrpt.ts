/**
 * tlsrpt.ts (bench) — what TLS-RPT recording costs on the mail path (issue
 * 12: under 5 %): relay throughput with `sealpost_tlsrpt = yes` against `no`,
 * interleaved in one run, in ABBA order (off on, on off, ...) so that the
 * load of a shared machine and any drift fall on both alike; and the CPU
 * cost of recording one session, measured in-process (the store subscriber
 * behind a real EventBus, batches written to disk), next to the daemon's CPU
 * per relayed message.
 *
 * Each run: smtp-source (20 sessions) → a fresh sealpost daemon (`start-fg`
 * in a child process, fsync before 250) → a STARTTLS sink (bench/tls-sink.ts)
 * at `smtp_tls_security_level = may` with TLS session resumption (every
 * delivery a new TLS connection, so every one is a session TLS-RPT counts),
 * relayhost `[sink.bench.test]:PORT` resolved by a loopback DNS server (an
 * address literal has no policy domain and would not be counted). Printed per
 * run: msgs/s, the daemon's CPU seconds per 1000 messages, and for the `yes`
 * runs the sessions the store recorded (`sealpost tlsrpt --json`); then the
 * mean of each side and the difference, and the load average before and after.
 *
 * `bench()` is imported by bench/run.ts. SEALPOST_BENCH_TLSRPT_N (messages per
 * run, default 1500) and SEALPOST_BENCH_TLSRPT_ROUNDS (pairs, default 4).
 * Run alone: `node --import tsx bench/tlsrpt.ts` (after `npm run build`).
 * Figures only, no thresholds.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TlsSessionRecord } from '../src/delivery/outcome.ts';
import { EventBus } from '../src/reports/events.ts';
import { TlsRptStore } from '../src/reports/tlsrpt/store.ts';
import { startDnsServer } from '../test/harness/dns-server.ts';
import { freePort, procFigures, runSmtpSource, startSealpost, stopDaemon, waitDelivered, waitListening } from './relay.ts';

const SESSIONS = 20;
const SIZE = 4096;

interface Run {
  readonly tlsrpt: boolean;
  readonly rate: number;
  readonly cpuPerK: number;
  readonly recorded?: number;
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'sink.crt');
  const key = join(dir, 'sink.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=sink.bench.test', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

/** Sessions in the TLS-RPT store of a stopped daemon's data_directory. */
function recordedSessions(dir: string): number {
  const out = execFileSync(process.execPath, ['bin/sealpost.js', 'tlsrpt', '-c', dir, '--json'], { encoding: 'utf8' });
  const periods = (JSON.parse(out) as { periods: Array<{ domains: Array<{ sessions: number }> }> }).periods;
  return periods.reduce((a, p) => a + p.domains.reduce((b, d) => b + d.sessions, 0), 0);
}

async function runOnce(n: number, sinkPort: number, dnsPort: number, tlsrpt: boolean): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-tlsrpt-'));
  let daemon: ChildProcess | undefined;
  try {
    const port = await freePort();
    daemon = await startSealpost(
      dir,
      [
        `relayhost = [sink.bench.test]:${sinkPort}`, `sealpost_dns_resolvers = 127.0.0.1:${dnsPort}`, 'inet_protocols = ipv4',
        'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = may', `sealpost_tlsrpt = ${tlsrpt ? 'yes' : 'no'}`,
      ],
      `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`,
    );
    await waitListening(port, 'sealpost');
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const proc = procFigures(daemon.pid!);
    await stopDaemon(daemon);
    daemon = undefined;
    const run: Run = { tlsrpt, rate: f.sent / secs, cpuPerK: (proc.cpu / Math.max(1, f.sent)) * 1000, ...(tlsrpt ? { recorded: recordedSessions(dir) } : {}) };
    process.stdout.write(
      `tlsrpt: sealpost_tlsrpt = ${tlsrpt ? 'yes' : 'no '}: ${run.rate.toFixed(0)} msgs/s (${f.sent} sent, ${f.other} not sent, ${secs.toFixed(2)} s), CPU ${run.cpuPerK.toFixed(2)} s per 1000 msgs${run.recorded !== undefined ? `, ${run.recorded} TLS sessions recorded` : ''}\n`,
    );
    return run;
  } finally {
    if (daemon) await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** µs of CPU to record one session: the store subscriber on a real bus, its batches written to a temp dir. */
async function recordingCost(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-tlsrpt-store-'));
  try {
    const store = await TlsRptStore.open({ dir });
    const bus = new EventBus();
    bus.subscribe(store.subscriber());
    const record = (i: number): TlsSessionRecord => ({
      time: Date.now(), nexthop: 'example.com',
      policy: { source: 'table', type: 'no-policy-found', domain: 'example.com', strings: [], mxHostPatterns: [], level: 'secure', configuredLevel: 'secure' },
      server: { hostname: `mx${i % 3}.example.com`, address: `192.0.2.${i % 3}`, port: 25, helo: `mx${i % 3}.example.com` }, sendingIp: '198.51.100.1',
      tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256, trust: 'Verified', reused: false },
      result: i % 4 === 0 ? { kind: 'failure', type: 'certificate-expired', reason: 'Server certificate not verified', enforced: true } : { kind: 'success' },
      logLines: [],
    });
    const records = [0, 1, 2, 3, 4, 5].map(record);
    const n = 200_000;
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      bus.publish({ kind: 'tls-session', queueId: 'Q', record: records[i % records.length]! });
      // About as many sessions per event-loop turn as a busy daemon publishes.
      if (i % 20 === 19) await new Promise((r) => setImmediate(r));
    }
    await store.flush();
    const c = process.cpuUsage(cpu0);
    await store.close();
    return (c.user + c.system) / n;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

export async function bench(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source')) {
    process.stdout.write('tlsrpt: skipped (smtp-source from the Debian postfix package is not installed)\n');
    return;
  }
  const n = Number(process.env.SEALPOST_BENCH_TLSRPT_N ?? 1500);
  const rounds = Number(process.env.SEALPOST_BENCH_TLSRPT_ROUNDS ?? 4);
  const pki = mkdtempSync(join(tmpdir(), 'sealpost-bench-tlsrpt-pki-'));
  const dns = await startDnsServer({ 'sink.bench.test': { A: ['127.0.0.1'] } });
  let sink: ChildProcess | undefined;
  try {
    const { cert, key } = makeCert(pki);
    const sinkPort = await freePort();
    sink = spawn(process.execPath, ['--import', 'tsx', 'bench/tls-sink.ts', '127.0.0.1', String(sinkPort), cert, key], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitListening(sinkPort, 'tls-sink');
    const before = loadavg();
    const runs: Run[] = [];
    for (let i = 0; i < rounds; i++) {
      for (const on of i % 2 === 0 ? [false, true] : [true, false]) runs.push(await runOnce(n, sinkPort, dns.port, on));
    }
    const off = runs.filter((r) => !r.tlsrpt);
    const on = runs.filter((r) => r.tlsrpt);
    const rateDelta = (1 - mean(on.map((r) => r.rate)) / mean(off.map((r) => r.rate))) * 100;
    const cpuDelta = (mean(on.map((r) => r.cpuPerK)) / mean(off.map((r) => r.cpuPerK)) - 1) * 100;
    process.stdout.write(
      `tlsrpt: ${rounds} ABBA-interleaved pairs of ${n} x 4 KB at may (TLS to every delivery): off ${mean(off.map((r) => r.rate)).toFixed(0)} msgs/s, on ${mean(on.map((r) => r.rate)).toFixed(0)} msgs/s ` +
        `(throughput ${rateDelta >= 0 ? '-' : '+'}${Math.abs(rateDelta).toFixed(1)} % with recording); CPU per 1000 msgs off ${mean(off.map((r) => r.cpuPerK)).toFixed(2)} s, on ${mean(on.map((r) => r.cpuPerK)).toFixed(2)} s (${cpuDelta >= 0 ? '+' : ''}${cpuDelta.toFixed(1)} %)\n`,
    );
    process.stdout.write(`tlsrpt: load average before ${before}, after ${loadavg()} (2 cores, shared)\n`);
    const us = await recordingCost();
    const perMsgUs = mean(off.map((r) => r.cpuPerK)) * 1000;
    process.stdout.write(`tlsrpt: recording one session costs ${us.toFixed(1)} µs CPU in-process (store subscriber, batches on disk) = ${((us / perMsgUs) * 100).toFixed(3)} % of the daemon's ${(perMsgUs / 1000).toFixed(2)} ms CPU per relayed message\n`);
  } finally {
    if (sink) sink.kill('SIGTERM');
    await dns.close();
    rmSync(pki, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
