/**
 * intake.ts (bench) — SMTP intake as a client sees it: a real daemon
 * (`sealpost start-fg` in a child process, fsync on, as in production)
 * receives 5,000 messages of 4 KB over 20 concurrent sessions from clients
 * in this process. Prints msgs/s and the p50/p99 latency from the client's
 * end-of-DATA (`\r\n.\r\n` written) to the `250 ... queued as` reply — the
 * time the durable write costs a sender — and, for comparison, the wall time
 * of Debian's `smtp-source` pushing the same load.
 *
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_INTAKE_N changes the
 * message count. Run alone: `node --import tsx bench/intake.ts`.
 * Not here: thresholds (figures only); delivery (see the delivery issue).
 */
import { spawn, execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SESSIONS = 20;
const SIZE = 4096;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Reads complete SMTP replies (the last line has a space after the code). */
class Replies {
  private buf = '';
  private waiting: ((line: string) => void) | undefined;
  private ready: string[] = [];
  constructor(sock: Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl).replace(/\r$/, '');
        this.buf = this.buf.slice(nl + 1);
        if (line[3] === '-') continue;
        if (this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          w(line);
        } else this.ready.push(line);
      }
    });
  }
  next(): Promise<string> {
    const r = this.ready.shift();
    if (r !== undefined) return Promise.resolve(r);
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

async function expect(replies: Replies, code: string, what: string): Promise<void> {
  const line = await replies.next();
  if (!line.startsWith(code)) throw new Error(`unexpected reply to ${what}: ${line}`);
}

async function session(port: number, count: number, body: string, latencies: number[]): Promise<void> {
  const sock = connect(port, '127.0.0.1');
  sock.setNoDelay(true); // a client that waits for each reply must not sit behind Nagle's algorithm
  const replies = new Replies(sock);
  await expect(replies, '220', 'connect');
  sock.write('EHLO bench.example\r\n');
  await expect(replies, '250', 'EHLO');
  for (let i = 0; i < count; i++) {
    sock.write('MAIL FROM:<bench@example.org>\r\n');
    await expect(replies, '250', 'MAIL');
    sock.write('RCPT TO:<sink@example.com>\r\n');
    await expect(replies, '250', 'RCPT');
    sock.write('DATA\r\n');
    await expect(replies, '354', 'DATA');
    sock.write(body);
    const t0 = process.hrtime.bigint();
    sock.write('\r\n.\r\n');
    await expect(replies, '250', 'end of DATA');
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  sock.write('QUIT\r\n');
  await expect(replies, '221', 'QUIT');
  sock.end();
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

async function startDaemon(dir: string, port: number): Promise<ChildProcess> {
  writeFileSync(
    join(dir, 'main.cf'),
    [`queue_directory = ${dir}/queue`, `data_directory = ${dir}/data`, `maillog_file = ${dir}/maillog`, 'compatibility_level = 3.11', ''].join('\n'),
  );
  writeFileSync(join(dir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\n`);
  const child = spawn(process.execPath, ['bin/sealpost.js', 'start-fg', '-c', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error('the daemon did not start listening');
}

async function stopDaemon(child: ChildProcess): Promise<void> {
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await done;
}

export async function bench(): Promise<void> {
  const n = Number(process.env.SEALPOST_BENCH_INTAKE_N ?? 5000);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-intake-'));
  const line = 'x'.repeat(76) + '\r\n';
  const body = 'From: bench@example.org\r\nTo: sink@example.com\r\nSubject: bench\r\n\r\n' + line.repeat(Math.ceil(SIZE / line.length));
  try {
    const port = await freePort();
    const child = await startDaemon(dir, port);
    try {
      const latencies: number[] = [];
      const per = Math.ceil(n / SESSIONS);
      const t0 = process.hrtime.bigint();
      await Promise.all(Array.from({ length: SESSIONS }, (_, i) => session(port, Math.min(per, n - i * per), body, latencies)));
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      latencies.sort((a, b) => a - b);
      const queued = readdirSync(join(dir, 'queue', 'incoming')).length;
      process.stdout.write(`intake: ${n} x 4 KB over ${SESSIONS} sessions, fsync on: ${(n / secs).toFixed(0)} msgs/s (${secs.toFixed(2)} s, ${queued} queue files)\n`);
      process.stdout.write(
        `intake: end-of-DATA -> 250 latency p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms\n`,
      );
      if (existsSync('/usr/sbin/smtp-source')) {
        const s0 = process.hrtime.bigint();
        await new Promise<void>((resolve, reject) =>
          execFile('/usr/sbin/smtp-source', ['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`], { timeout: 600000 }, (err) =>
            err ? reject(err) : resolve(),
          ),
        );
        const s = Number(process.hrtime.bigint() - s0) / 1e9;
        process.stdout.write(`intake: smtp-source -s ${SESSIONS} -m ${n} -l ${SIZE}: ${(n / s).toFixed(0)} msgs/s (${s.toFixed(2)} s)\n`);
      }
    } finally {
      await stopDaemon(child);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
