/**
 * relay-tls.ts (bench) — relay throughput at `smtp_tls_security_level =
 * encrypt` (issue 5): smtp-source (20 sessions) → a real sealpost daemon →
 * a STARTTLS sink (bench/tls-sink.ts in its own process), three ways:
 *   1. every connection a full handshake (smtp_tls_session_cache_timeout = 0),
 *   2. TLS session resumption (the session cache, default settings),
 *   3. TLS connection reuse (smtp_tls_connection_reuse = yes).
 * Then, when run as root with Debian's Postfix, Postfix 3.7 with its TLS
 * session cache (smtp_tls_session_cache_database) relays the same load to the
 * same sink, as the comparison.
 *
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_TLS_N changes the
 * message count (default 5000, 4 KB each). Run alone:
 * `node --import tsx bench/relay-tls.ts`. Figures only, no thresholds.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  freePort,
  percentile,
  postfixComparison,
  procFigures,
  runSmtpSource,
  startSealpost,
  stopDaemon,
  waitDelivered,
  waitListening,
} from './relay.ts';

const SESSIONS = 20;
const SIZE = 4096;

function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'sink.crt');
  const key = join(dir, 'sink.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=sink.bench.test', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

async function startSink(port: number, cert: string, key: string): Promise<ChildProcess> {
  const sink = spawn(process.execPath, ['--import', 'tsx', 'bench/tls-sink.ts', '127.0.0.1', String(port), cert, key], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(port, 'tls-sink');
  return sink;
}

async function runSealpost(n: number, sinkPort: number, label: string, extra: readonly string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-tls-'));
  let daemon: ChildProcess | undefined;
  try {
    const port = await freePort();
    daemon = await startSealpost(
      dir,
      [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = encrypt', ...extra],
      `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`,
    );
    await waitListening(port, 'sealpost');
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const proc = procFigures(daemon.pid!);
    const delays = [...f.delays].sort((a, b) => a - b);
    process.stdout.write(
      `relay-tls: encrypt, ${label}: ${(f.sent / secs).toFixed(0)} msgs/s relayed (${f.sent} sent, ${f.other} not sent, ${secs.toFixed(2)} s), latency p50 ${percentile(delays, 50).toFixed(2)} s, p99 ${percentile(delays, 99).toFixed(2)} s, CPU ${proc.cpu.toFixed(1)} s, peak RSS ${proc.peakRssMiB.toFixed(0)} MiB\n`,
    );
  } finally {
    if (daemon) await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source')) {
    process.stdout.write('relay-tls: skipped (smtp-source from the Debian postfix package is not installed)\n');
    return;
  }
  const n = Number(process.env.SEALPOST_BENCH_TLS_N ?? 5000);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-tls-pki-'));
  let sink: ChildProcess | undefined;
  try {
    const { cert, key } = makeCert(dir);
    const sinkPort = await freePort();
    sink = await startSink(sinkPort, cert, key);
    await runSealpost(n, sinkPort, 'a full handshake per connection', ['smtp_tls_session_cache_timeout = 0']);
    await runSealpost(n, sinkPort, 'session resumption', []);
    await runSealpost(n, sinkPort, 'TLS connection reuse', ['smtp_tls_connection_reuse = yes']);
    await postfixComparison(n, sinkPort, ['smtp_tls_security_level = encrypt', 'smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache'], 'Postfix 3.7, encrypt with its TLS session cache');
  } finally {
    if (sink) sink.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
