/**
 * intake-large.ts (bench) — what a large message costs the daemon's memory at intake: a
 * real daemon (`sealpost start-fg` in a child process; master.cf has only the smtpd
 * listener, so nothing is delivered and only intake is measured) receives one, then (in a
 * fresh daemon) three concurrent 20 MB messages over SMTP. Prints the daemon's peak RSS
 * (VmHWM in /proc/PID/status) idle and after the 250 replies, and the growth per message.
 *
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_LARGE_MB changes the size, and
 * SEALPOST_BENCH_ROOT runs another checkout (built with `npm run build`) for a before/after
 * comparison. Run alone: `node --import tsx bench/intake-large.ts`.
 * Not here: thresholds (figures only); delivery (the queue to the socket is measured by the
 * relay bench).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** VmHWM and VmRSS of a process, in kB. */
function memory(pid: number): { hwm: number; rss: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

function replyReader(sock: Socket): () => Promise<string> {
  let buf = '';
  const ready: string[] = [];
  let waiting: ((l: string) => void) | undefined;
  sock.setEncoding('latin1');
  sock.on('data', (c: string) => {
    buf += c;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line[3] === '-') continue;
      if (waiting) {
        const w = waiting;
        waiting = undefined;
        w(line);
      } else ready.push(line);
    }
  });
  return () => (ready.length > 0 ? Promise.resolve(ready.shift()!) : new Promise((r) => (waiting = r)));
}

async function write(sock: Socket, data: Buffer | string): Promise<void> {
  if (!sock.write(data)) await new Promise((r) => sock.once('drain', r));
}

/** One SMTP transaction with a `mb`-megabyte body written in 64 KiB pieces. */
async function send(port: number, mb: number): Promise<void> {
  const sock = connect(port, '127.0.0.1');
  const next = replyReader(sock);
  const expect = async (code: string) => {
    const l = await next();
    if (!l.startsWith(code)) throw new Error(`expected ${code}, got ${l}`);
  };
  await expect('220');
  sock.write('EHLO bench.example\r\n');
  await expect('250');
  sock.write('MAIL FROM:<bench@example.org>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n');
  await expect('250');
  await expect('250');
  await expect('354');
  await write(sock, 'From: bench@example.org\r\nSubject: large\r\n\r\n');
  const line = Buffer.from(`${'y'.repeat(76)}\r\n`);
  const piece = Buffer.concat(Array.from({ length: Math.floor(65536 / line.length) }, () => line));
  for (let sent = 0; sent < mb * 1024 * 1024; sent += piece.length) await write(sock, piece);
  sock.write('.\r\n');
  await expect('250');
  sock.write('QUIT\r\n');
  sock.end();
}

async function startDaemon(root: string, dir: string, port: number): Promise<ChildProcess> {
  writeFileSync(join(dir, 'main.cf'), [`queue_directory = ${dir}/queue`, `data_directory = ${dir}/data`, `maillog_file = ${dir}/maillog`, 'message_size_limit = 0', ''].join('\n'));
  writeFileSync(join(dir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\n`);
  const child = spawn(process.execPath, [join(root, 'bin/sealpost.js'), 'start-fg', '-c', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
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

async function measure(root: string, mb: number, concurrent: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-large-'));
  // The daemon runs as mail_owner (sealpost) once it has bound its listener: it must reach the directory.
  chmodSync(dir, 0o755);
  try {
    const port = await freePort();
    const child = await startDaemon(root, dir, port);
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const idle = memory(child.pid!);
      await Promise.all(Array.from({ length: concurrent }, () => send(port, mb)));
      const after = memory(child.pid!);
      const growth = (after.hwm - idle.hwm) / 1024;
      process.stdout.write(
        `intake-large: ${concurrent} x ${mb} MB: peak RSS ${(idle.hwm / 1024).toFixed(1)} MB idle -> ${(after.hwm / 1024).toFixed(1)} MB (+${growth.toFixed(1)} MB, +${(growth / concurrent).toFixed(1)} MB per message)\n`,
      );
    } finally {
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    }
  } finally {
    if (process.env.SEALPOST_BENCH_SHOWLOG) process.stdout.write(readFileSync(join(dir, 'maillog'), 'utf8'));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  const root = process.env.SEALPOST_BENCH_ROOT ?? process.cwd();
  const mb = Number(process.env.SEALPOST_BENCH_LARGE_MB ?? 20);
  await measure(root, mb, 1);
  await measure(root, mb, 3);
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
