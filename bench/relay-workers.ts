/**
 * relay-workers.ts (bench) — where sealpost's CPU goes during a relay run,
 * thread by thread, with `sealpost_delivery_workers` = 0 (the SMTP client in
 * the master's thread), 1 and 2 (issue 14: choose the default by
 * measurement). smtp-source (20 sessions) → sealpost → smtp-sink (plain) or
 * bench/tls-sink.ts (`encrypt`), the worker counts interleaved, ROUNDS
 * rounds. Printed per run: msgs/s, p99 latency, CPU per message of the
 * whole process and its split — the main thread (intake, queue manager, log),
 * the delivery worker threads, and the rest (V8's garbage-collector and
 * compiler threads, libuv's file-system pool) — and the peak RSS.
 *
 * SEALPOST_BENCH_NODE_ARGS passes node options to the daemon (e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` for a profile per thread).
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_WORKERS_N (default
 * 5000; 2000 with SEALPOST_BENCH_QUICK). Run alone:
 * `node --import tsx bench/relay-workers.ts`. Figures only.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, loadavg, percentile, procFigures, runSmtpSource, startSealpost, stopDaemon, waitDelivered, waitListening } from './relay.ts';

const SESSIONS = 20;

/** CPU seconds per thread of a process (utime + stime), by thread id. */
function threadCpu(pid: number): Map<number, number> {
  const m = new Map<number, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(Number(t), (Number(f[11]) + Number(f[12])) / 100);
    } catch {
      // The thread ended.
    }
  }
  return m;
}

/** Threads started by the daemon after it was ready: the delivery workers (they start with the first delivery). */
async function run(mode: 'plain' | 'encrypt', workers: number, n: number, sinkPort: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-workers-'));
  let daemon: ChildProcess | undefined;
  try {
    const port = await freePort();
    daemon = await startSealpost(
      dir,
      [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', `smtp_tls_security_level = ${mode === 'plain' ? 'none' : 'encrypt'}`, `sealpost_delivery_workers = ${workers}`],
      `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`,
    );
    await waitListening(port, 'sealpost');
    await new Promise((r) => setTimeout(r, 1000));
    const pid = daemon.pid!;
    const before = threadCpu(pid);
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', '4096', '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = threadCpu(pid);
    let main = 0;
    let workerCpu = 0;
    let rest = 0;
    for (const [tid, cpu] of after) {
      const d = cpu - (before.get(tid) ?? 0);
      if (tid === pid) main += d;
      else if (!before.has(tid) && d > 0.05) workerCpu += d;
      else rest += d;
    }
    const ms = (x: number) => ((x * 1000) / n).toFixed(2);
    const delays = [...f.delays].sort((a, b) => a - b);
    process.stdout.write(
      `relay-workers: ${mode}, sealpost_delivery_workers = ${workers}: ${(f.sent / secs).toFixed(0)} msgs/s, p99 ${percentile(delays, 99).toFixed(2)} s, ` +
        `CPU ${ms(main + workerCpu + rest)} ms/msg (main thread ${ms(main)}, delivery threads ${ms(workerCpu)}, other threads ${ms(rest)}), ` +
        `peak RSS ${procFigures(pid).peakRssMiB.toFixed(0)} MiB (load ${loadavg()})\n`,
    );
  } finally {
    if (daemon) await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source') || !existsSync('/usr/sbin/smtp-sink')) {
    process.stdout.write('relay-workers: skipped (smtp-source/smtp-sink from the Debian postfix package are not installed)\n');
    return;
  }
  const quick = process.env.SEALPOST_BENCH_QUICK !== undefined && process.env.SEALPOST_BENCH_QUICK !== '';
  const n = Number(process.env.SEALPOST_BENCH_WORKERS_N ?? (quick ? 2000 : 5000));
  const rounds = quick ? 1 : 2;
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-workers-pki-'));
  chmodSync(dir, 0o755);
  let sink: ChildProcess | undefined;
  let tlsSink: ChildProcess | undefined;
  try {
    const sinkPort = await freePort();
    sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
    await waitListening(sinkPort, 'smtp-sink');
    const cert = join(dir, 'sink.crt');
    const key = join(dir, 'sink.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=sink.bench.test', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const tlsPort = await freePort();
    tlsSink = spawn(process.execPath, ['--import', 'tsx', 'bench/tls-sink.ts', '127.0.0.1', String(tlsPort), cert, key], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitListening(tlsPort, 'tls-sink');
    for (let r = 0; r < rounds; r++) {
      for (const mode of ['plain', 'encrypt'] as const) {
        for (const w of [0, 1, 2]) await run(mode, w, n, mode === 'plain' ? sinkPort : tlsPort);
      }
    }
  } finally {
    if (sink) sink.kill('SIGKILL');
    if (tlsSink) tlsSink.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
