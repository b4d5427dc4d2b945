/**
 * relay.ts (bench) — relay throughput end to end, as issue 4 measures it:
 * Debian's `smtp-source` (20 sessions) → a real sealpost daemon
 * (`sealpost start-fg` in a child process, fsync before 250 as in production,
 * `relayhost = [127.0.0.1]:SINK`) → Debian's `smtp-sink`, a fast plain
 * receiver. Prints msgs/s from the first connection to the last `status=sent`
 * line, the p50/p99 accepted-to-delivered latency (the `delay=` field of the
 * delivery lines: arrival → remote 250), the daemon's CPU seconds (user +
 * system, /proc/PID/stat) and its peak RSS (VmHWM).
 *
 * `bench()` is imported by bench/run.ts. SEALPOST_BENCH_RELAY_N changes the
 * message count (default 10000, 4 KB each). Needs /usr/sbin/smtp-source and
 * smtp-sink (Debian package postfix); prints a skip line without them.
 * Run alone: `node --import tsx bench/relay.ts`.
 * When run as root with Debian's Postfix installed, the same load is then
 * relayed by a throw-away Postfix 3.7 instance (test/harness/postfix-daemon.ts:
 * its own queue_directory and maillog_file, smtp-sink as relayhost) for the
 * comparison the issue asks for; otherwise that line says why it was skipped.
 * Not here: thresholds (figures only); TLS (issue 5).
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { startPostfixPeer, type PostfixPeer } from '../test/harness/postfix-daemon.ts';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const SESSIONS = 20;
const SIZE = 4096;

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, host, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitListening(port: number, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not start listening on port ${port}`);
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** user+system CPU seconds and peak RSS (MiB) of a live process, from /proc. */
export function procFigures(pid: number): { cpu: number; peakRssMiB: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15 of proc(5))
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
  return { cpu: ticks / 100, peakRssMiB: hwm ? Number(hwm[1]) / 1024 : 0 };
}

export async function startSealpost(dir: string, mainCf: readonly string[], masterCf: string): Promise<ChildProcess> {
  // Run as root, the daemon becomes mail_owner after binding: it must reach its configuration and queue.
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'main.cf'), [`queue_directory = ${dir}/queue`, `data_directory = ${dir}/data`, `maillog_file = ${dir}/maillog`, 'compatibility_level = 3.11', ...mainCf, ''].join('\n'));
  writeFileSync(join(dir, 'master.cf'), masterCf);
  // SEALPOST_BENCH_NODE_ARGS: extra node options for the daemon (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const nodeArgs = (process.env.SEALPOST_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return spawn(process.execPath, [...nodeArgs, 'bin/sealpost.js', 'start-fg', '-c', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
}

export async function stopDaemon(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

/** Delivery lines of the log: count of status=sent and their delay= values. */
export function deliveryFigures(log: string): { sent: number; other: number; delays: number[] } {
  let sent = 0;
  let other = 0;
  const delays: number[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes(': to=<')) continue;
    const m = /, delay=([0-9.]+), .*status=(\w+)/.exec(line);
    if (!m) continue;
    if (m[2] === 'sent') {
      sent++;
      delays.push(Number(m[1]));
    } else other++;
  }
  return { sent, other, delays };
}

export async function waitDelivered(logFile: string, n: number, timeoutMs: number): Promise<{ sent: number; other: number; delays: number[] }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const f = existsSync(logFile) ? deliveryFigures(readFileSync(logFile, 'utf8')) : { sent: 0, other: 0, delays: [] };
    if (f.sent + f.other >= n || Date.now() > deadline) return f;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function runSmtpSource(args: readonly string[]): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    execFile('/usr/sbin/smtp-source', [...args], { timeout: 900_000 }, (err, _out, stderr) => (err ? reject(new Error(`smtp-source: ${stderr || err.message}`)) : resolve())),
  );
}

export async function postfixComparison(n: number, sinkPort: number, extra: readonly string[] = [], label = 'Postfix 3.7, same load'): Promise<void> {
  const port = await freePort();
  let peer: PostfixPeer;
  try {
    peer = await startPostfixPeer('127.0.0.1', port, [
      'mynetworks = 127.0.0.0/8',
      `relayhost = [127.0.0.1]:${sinkPort}`,
      'smtp_tls_security_level = none',
      ...extra,
    ]);
  } catch (err) {
    process.stdout.write(`relay: Postfix comparison skipped (${(err as Error).message.split('\n')[0]})\n`);
    return;
  }
  try {
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(peer.dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const delays = [...f.delays].sort((a, b) => a - b);
    process.stdout.write(`relay: ${label}: ${(f.sent / secs).toFixed(0)} msgs/s relayed (${f.sent} sent, ${secs.toFixed(2)} s), latency p50 ${percentile(delays, 50).toFixed(2)} s, p99 ${percentile(delays, 99).toFixed(2)} s\n`);
  } finally {
    peer.stop();
  }
}

export async function bench(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source') || !existsSync('/usr/sbin/smtp-sink')) {
    process.stdout.write('relay: skipped (smtp-source/smtp-sink from the Debian postfix package are not installed)\n');
    return;
  }
  const n = Number(process.env.SEALPOST_BENCH_RELAY_N ?? 10_000);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-relay-'));
  let sink: ChildProcess | undefined;
  let daemon: ChildProcess | undefined;
  try {
    const sinkPort = await freePort();
    const port = await freePort();
    sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
    await waitListening(sinkPort, 'smtp-sink');
    daemon = await startSealpost(dir, [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = none'], `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    await waitListening(port, 'sealpost');
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const accepted = Number(process.hrtime.bigint() - t0) / 1e9;
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const proc = procFigures(daemon.pid!);
    const delays = [...f.delays].sort((a, b) => a - b);
    process.stdout.write(
      `relay: ${n} x 4 KB, smtp-source -s ${SESSIONS} -> sealpost (fsync) -> smtp-sink: ${(f.sent / secs).toFixed(0)} msgs/s relayed (${f.sent} sent, ${f.other} not sent, ${secs.toFixed(2)} s; intake done after ${accepted.toFixed(2)} s)\n`,
    );
    process.stdout.write(`relay: accepted-to-delivered latency (delay=) p50 ${percentile(delays, 50).toFixed(2)} s, p99 ${percentile(delays, 99).toFixed(2)} s\n`);
    process.stdout.write(`relay: daemon CPU ${proc.cpu.toFixed(1)} s (user+system), peak RSS ${proc.peakRssMiB.toFixed(0)} MiB\n`);
    await stopDaemon(daemon);
    daemon = undefined;
    await postfixComparison(n, sinkPort);
  } finally {
    if (daemon) await stopDaemon(daemon);
    if (sink) sink.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
