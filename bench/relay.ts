/**
 * relay.ts (bench) — issue 14's relay comparison, sealpost against Debian's
 * Postfix 3.7 in the same run: Debian's `smtp-source` (20 sessions, N × 4 KB)
 * → the MTA → a receiver, for each of
 *   plain    → smtp-sink (Debian's, C);
 *   encrypt  → bench/tls-sink.ts (STARTTLS, its own process), with
 *     default settings (sealpost: TLS connection reuse on; Postfix: Debian's
 *     main.cf TLS session cache, no connection reuse) and with connection reuse
 *     (Postfix: `smtp_tls_connection_reuse = yes` through its tlsproxy(8);
 *     for sealpost that is its default, so one run serves both rows).
 * Before the runs each receiver's capacity alone is measured (smtp-source →
 * smtp-sink; bench/tls-source.ts → tls-sink, one connection per message and
 * reused connections), so a reader can check it is not the bottleneck.
 *
 * Per run: msgs/s from the first connection to the last delivery line;
 * p50/p99 accepted→delivered latency (the `delay=` field of the delivery
 * lines); sender CPU per message (every process and thread of the MTA:
 * /proc utime+stime, reaped children included, the idle baseline before the
 * load subtracted); fsync-family system calls per message (`perf stat` on the
 * MTA's processes when perf is installed, else strace is not used: it would
 * slow the run; printed as n/a); peak RSS (the largest sum of VmRSS over the
 * MTA's processes, sampled every 200 ms). Then the ratios to Postfix.
 * The load average is printed with every figure (the machine has 2 cores and
 * may be shared).
 *
 * `bench()` is imported by bench/run.ts. SEALPOST_BENCH_RELAY_N (default
 * 20000; 3000 with SEALPOST_BENCH_QUICK=1, a run of a few minutes).
 * Needs /usr/sbin/smtp-source and smtp-sink; the Postfix runs need root and
 * Debian's postfix (test/harness/postfix-daemon.ts), else they print why they
 * were skipped. Run alone: `node --import tsx bench/relay.ts`.
 * SEALPOST_BENCH_ROOT=/path/to/another/checkout (built) measures that sealpost
 * instead (before/after comparisons; every bench that starts the daemon).
 * Also exports the helpers the other benches use (startSealpost, ...).
 * Not here: thresholds (figures only).
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { startPostfixPeer, type PostfixPeer } from '../test/harness/postfix-daemon.ts';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { tlsSourceCapacity } from './tls-source.ts';

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
  // SEALPOST_BENCH_ROOT: another built checkout to measure (before/after comparisons).
  const bin = join(process.env.SEALPOST_BENCH_ROOT ?? '.', 'bin', 'sealpost.js');
  // SEALPOST_BENCH_DAEMON_STDOUT: the daemon's standard output goes to ours (e.g. with --trace-gc).
  return spawn(process.execPath, [...nodeArgs, bin, 'start-fg', '-c', dir], { stdio: ['ignore', process.env.SEALPOST_BENCH_DAEMON_STDOUT ? 'inherit' : 'ignore', 'inherit'] });
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


// ---------------------------------------------------------------- process figures

/** Every process below `pid` (children, grandchildren ...), from /proc. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number) => {
    let kids: string[] = [];
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) kids.push(...readFileSync(`/proc/${p}/task/${t}/children`, 'utf8').trim().split(' ').filter(Boolean));
    } catch {
      return;
    }
    for (const k of kids) {
      out.push(Number(k));
      walk(Number(k));
    }
  };
  walk(pid);
  return out;
}

function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of a process tree: the root's own time and its reaped children's
 * (cutime/cstime), plus every live descendant's own time and its reaped children's.
 */
export function treeCpu(root: number): number {
  let ticks = 0;
  for (const pid of [root, ...descendants(root)]) {
    const f = statFields(pid);
    if (f) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return ticks / 100;
}

/** Sum of VmRSS (MiB) over a process tree. */
export function treeRssMiB(root: number): number {
  let kb = 0;
  for (const pid of [root, ...descendants(root)]) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // Gone.
    }
  }
  return kb / 1024;
}

/** Samples the peak of treeRssMiB every 200 ms until stopped. */
function rssSampler(root: number): { stop(): number } {
  let peak = treeRssMiB(root);
  const t = setInterval(() => (peak = Math.max(peak, treeRssMiB(root))), 200);
  return {
    stop() {
      clearInterval(t);
      return Math.max(peak, treeRssMiB(root));
    },
  };
}

/**
 * Counts fsync-family system calls of a process tree with `perf stat` (tracepoints;
 * threads and processes created later are counted too). Undefined without perf.
 */
function fsyncCounter(root: number): { stop(): Promise<number | undefined> } {
  if (!existsSync('/usr/bin/perf')) return { stop: async () => undefined };
  const events = ['fsync', 'fdatasync', 'msync', 'sync_file_range'].map((e) => `syscalls:sys_enter_${e}`).join(',');
  const child = spawn('perf', ['stat', '-x', ',', '-e', events, '-p', [root, ...descendants(root)].join(',')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return {
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => {
          let n = 0;
          let seen = false;
          for (const line of err.split('\n')) {
            const m = /^(\d+),/.exec(line);
            if (m && line.includes('syscalls:sys_enter_')) {
              n += Number(m[1]);
              seen = true;
            }
          }
          resolve(seen ? n : undefined);
        });
        child.kill('SIGINT');
      }),
  };
}

export function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

// ---------------------------------------------------------------- one measured run

export interface RunFigures {
  readonly label: string;
  readonly sent: number;
  readonly other: number;
  readonly rate: number;
  readonly p50: number;
  readonly p99: number;
  readonly cpuMsPerMsg: number;
  readonly fsyncsPerMsg: number | undefined;
  readonly peakRssMiB: number;
  readonly load: string;
}

/** Load `port` with smtp-source and measure the MTA whose processes hang below `root`. */
async function measure(label: string, root: number, port: number, logFile: string, n: number): Promise<RunFigures> {
  await new Promise((r) => setTimeout(r, 1000));
  const cpu0 = treeCpu(root);
  const rss = rssSampler(root);
  const fsyncs = fsyncCounter(root);
  const t0 = process.hrtime.bigint();
  await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
  const f = await waitDelivered(logFile, n, 900_000);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = treeCpu(root) - cpu0;
  const syncs = await fsyncs.stop();
  const peak = rss.stop();
  const delays = [...f.delays].sort((a, b) => a - b);
  return {
    label, sent: f.sent, other: f.other, rate: f.sent / secs, p50: percentile(delays, 50), p99: percentile(delays, 99),
    cpuMsPerMsg: (cpu * 1000) / n, fsyncsPerMsg: syncs === undefined ? undefined : syncs / n, peakRssMiB: peak, load: loadavg(),
  };
}

function print(f: RunFigures): void {
  process.stdout.write(
    `relay: ${f.label}: ${f.rate.toFixed(0)} msgs/s (${f.sent} sent, ${f.other} not), latency p50 ${f.p50.toFixed(2)} s p99 ${f.p99.toFixed(2)} s, ` +
      `CPU ${f.cpuMsPerMsg.toFixed(2)} ms/msg, fsyncs ${f.fsyncsPerMsg === undefined ? 'n/a' : f.fsyncsPerMsg.toFixed(2)}/msg, peak RSS ${f.peakRssMiB.toFixed(0)} MiB (load ${f.load})\n`,
  );
}

export async function sealpostRun(label: string, n: number, sinkPort: number, extra: readonly string[]): Promise<RunFigures | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-relay-'));
  let daemon: ChildProcess | undefined;
  try {
    const port = await freePort();
    daemon = await startSealpost(dir, [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', ...extra], `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    await waitListening(port, 'sealpost');
    const f = await measure(label, daemon.pid!, port, join(dir, 'maillog'), n);
    print(f);
    return f;
  } finally {
    if (daemon) await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

function masterPid(peer: PostfixPeer): number {
  return Number(readFileSync(join(peer.dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
}

async function postfixRun(label: string, n: number, sinkPort: number, extra: readonly string[], tlsproxy = false): Promise<RunFigures | undefined> {
  const port = await freePort();
  let peer: PostfixPeer;
  try {
    peer = await startPostfixPeer('127.0.0.1', port, ['mynetworks = 127.0.0.0/8', `relayhost = [127.0.0.1]:${sinkPort}`, ...extra], {
      // Debian ships tlsproxy(8) commented out in master.cf; TLS connection reuse needs it.
      ...(tlsproxy ? { extraMasterCf: 'tlsproxy  unix  -       -       n       -       0       tlsproxy\n' } : {}),
    });
  } catch (err) {
    process.stdout.write(`relay: ${label}: skipped (${(err as Error).message.split('\n')[0]})\n`);
    return undefined;
  }
  try {
    const f = await measure(label, masterPid(peer), port, join(peer.dir, 'maillog'), n);
    print(f);
    return f;
  } finally {
    peer.stop();
  }
}

/** smtp-source → smtp-sink alone: the plain receiver's capacity. */
async function sinkCapacity(sinkPort: number, n: number): Promise<void> {
  const t0 = process.hrtime.bigint();
  await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${sinkPort}`]);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  process.stdout.write(`relay: receiver capacity alone: smtp-source -> smtp-sink ${(n / secs).toFixed(0)} msgs/s (a connection per message; load ${loadavg()})\n`);
}

function ratio(a: RunFigures | undefined, b: RunFigures | undefined, what: string): void {
  if (!a || !b) return;
  process.stdout.write(
    `relay: ${what}: sealpost/Postfix throughput ${(a.rate / b.rate).toFixed(2)}x, CPU per message ${(b.cpuMsPerMsg / a.cpuMsPerMsg).toFixed(2)}x less, p99 ${a.p99.toFixed(2)} s vs ${b.p99.toFixed(2)} s\n`,
  );
}

export function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'sink.crt');
  const key = join(dir, 'sink.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=sink.bench.test', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

export async function startTlsSink(port: number, cert: string, key: string): Promise<ChildProcess> {
  const sink = spawn(process.execPath, ['--import', 'tsx', 'bench/tls-sink.ts', '127.0.0.1', String(port), cert, key], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(port, 'tls-sink');
  return sink;
}

export async function bench(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source') || !existsSync('/usr/sbin/smtp-sink')) {
    process.stdout.write('relay: skipped (smtp-source/smtp-sink from the Debian postfix package are not installed)\n');
    return;
  }
  const quick = process.env.SEALPOST_BENCH_QUICK !== undefined && process.env.SEALPOST_BENCH_QUICK !== '';
  const n = Number(process.env.SEALPOST_BENCH_RELAY_N ?? (quick ? 3000 : 20_000));
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-relay-pki-'));
  chmodSync(dir, 0o755);
  let sink: ChildProcess | undefined;
  let tlsSink: ChildProcess | undefined;
  try {
    const sinkPort = await freePort();
    sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
    await waitListening(sinkPort, 'smtp-sink');
    const { cert, key } = makeCert(dir);
    const tlsPort = await freePort();
    tlsSink = await startTlsSink(tlsPort, cert, key);
    process.stdout.write(`relay: ${n} x 4 KB over ${SESSIONS} smtp-source sessions per run (load ${loadavg()})\n`);
    await sinkCapacity(sinkPort, Math.min(n, 10_000));
    for (const mode of ['per-message', 'reuse'] as const) {
      const c = await tlsSourceCapacity(tlsPort, Math.min(n, mode === 'reuse' ? 10_000 : 3000), SESSIONS, mode);
      process.stdout.write(`relay: receiver capacity alone: TLS client -> tls-sink ${c.toFixed(0)} msgs/s (${mode === 'reuse' ? 'reused TLS connections' : 'a TLS handshake per message, resumed'}; load ${loadavg()})\n`);
    }
    const plainS = await sealpostRun('plain, sealpost (default settings)', n, sinkPort, []);
    const plainP = await postfixRun('plain, Postfix 3.7 (default settings)', n, sinkPort, []);
    ratio(plainS, plainP, 'plain, default settings');
    const encS = await sealpostRun('encrypt, sealpost (default settings = TLS connection reuse)', n, tlsPort, ['smtp_tls_security_level = encrypt']);
    const pfEncrypt = ['smtp_tls_security_level = encrypt', 'smtp_tls_session_cache_database = btree:${data_directory}/smtp_scache'];
    const encP = await postfixRun('encrypt, Postfix 3.7 (Debian defaults: TLS session cache)', n, tlsPort, pfEncrypt);
    ratio(encS, encP, 'encrypt, default settings');
    const encPr = await postfixRun('encrypt, Postfix 3.7 with smtp_tls_connection_reuse = yes (tlsproxy)', n, tlsPort, [...pfEncrypt, 'smtp_tls_connection_reuse = yes'], true);
    ratio(encS, encPr, 'encrypt, both with connection reuse');
    if (!quick) {
      // For reference: sealpost the Postfix way (a TLS handshake per message, resumed).
      await sealpostRun('encrypt, sealpost with smtp_tls_connection_reuse = no', n, tlsPort, ['smtp_tls_security_level = encrypt', 'smtp_tls_connection_reuse = no']);
    }
  } finally {
    if (sink) sink.kill('SIGKILL');
    if (tlsSink) tlsSink.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
