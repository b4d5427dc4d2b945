/**
 * large.ts (bench) — large messages relayed end to end, as issue 15 measures it: a real
 * daemon (`sealpost start-fg` in a child process, fsync before 250, `relayhost =
 * [127.0.0.1]:SINK`, 10 concurrent deliveries to that destination) relays 20 messages of
 * 20 MB, submitted over 10 concurrent SMTP sessions, to a sink in this process that
 * un-stuffs each DATA stream (smtp/dot-stuff.ts DataReader) and hashes it as it arrives.
 * Prints the daemon's peak RSS (VmHWM) idle and at the end, the growth per concurrent
 * message, the most DATA transfers the sink saw at once, whether every message arrived
 * byte-identical (sha256 of everything below the Received: field sealpost adds, against
 * the sha256 of what was submitted), the wall time and the load average (the machine is
 * shared).
 *
 * `bench()` is imported by bench/run.ts. SEALPOST_BENCH_LARGE_MB (20), _N (20) and
 * _CONCURRENCY (10) change the run, SEALPOST_BENCH_LARGE_MAINCF adds main.cf lines (`;`-separated,
 * e.g. `sealpost_delivery_workers = 0`); SEALPOST_BENCH_ROOT runs another checkout (built with
 * `npm run build`). Run alone: `node --import tsx bench/large.ts`.
 * Not here: thresholds (figures only); TLS (relay-tls.ts); intake alone (intake-large.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataReader } from '../src/smtp/dot-stuff.ts';
import { freePort, waitListening } from './relay.ts';

/** VmHWM of a process, in kB. */
function peakKb(pid: number): number {
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

/** Deterministic content: a marker header, then `mb` MB of numbered 78-octet lines (none starts with "."). */
function* messagePieces(n: number, mb: number): Generator<Buffer> {
  // Date and Message-ID present: cleanup adds nothing below the marker.
  yield Buffer.from(`X-Bench-Id: ${n}\r\nFrom: bench@example.org\r\nTo: sink@example.com\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <large-${n}@bench.example>\r\nSubject: large ${n}\r\n\r\n`);
  const lines = Math.floor((mb * 1024 * 1024) / 78);
  const per = 840;
  for (let i = 0; i < lines; i += per) {
    const parts: string[] = [];
    for (let j = i; j < Math.min(lines, i + per); j++) parts.push(`${String(n).padStart(3, '0')} ${String(j).padStart(9, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+-'.slice(0, 62)}\r\n`);
    yield Buffer.from(parts.join(''));
  }
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

/** Submit messages `ids` one after the other on one SMTP session; returns each one's sha256. */
async function submitter(port: number, ids: readonly number[], mb: number): Promise<Map<number, string>> {
  const sums = new Map<number, string>();
  const sock = connect(port, '127.0.0.1');
  const next = replyReader(sock);
  const expect = async (code: string): Promise<void> => {
    const l = await next();
    if (!l.startsWith(code)) throw new Error(`expected ${code}, got ${l}`);
  };
  await expect('220');
  sock.write('EHLO bench.example\r\n');
  await expect('250');
  for (const id of ids) {
    sock.write('MAIL FROM:<bench@example.org>\r\nRCPT TO:<sink@example.com>\r\nDATA\r\n');
    await expect('250');
    await expect('250');
    await expect('354');
    const hash = createHash('sha256');
    for (const piece of messagePieces(id, mb)) {
      hash.update(piece);
      await write(sock, piece);
    }
    sock.write('.\r\n');
    await expect('250');
    sums.set(id, hash.digest('hex'));
  }
  sock.write('QUIT\r\n');
  sock.end();
  return sums;
}

interface Sink {
  readonly server: Server;
  readonly port: number;
  /** sha256 by X-Bench-Id of what arrived below the first line that starts with X-Bench-Id:. */
  readonly sums: Map<number, string>;
  /** Most DATA transfers in progress at once. */
  maxConcurrent: number;
  waitFor(n: number, timeoutMs: number): Promise<void>;
}

/** The hash of a DATA stream from its X-Bench-Id: line on (what sealpost added above it is skipped). */
class Hasher {
  private head: Buffer[] = [];
  private hash: Hash | undefined;
  private id = -1;
  push(data: Buffer): void {
    if (this.hash) {
      this.hash.update(data);
      return;
    }
    this.head.push(data);
    const text = Buffer.concat(this.head).toString('latin1');
    const at = text.search(/(^|\r\n)X-Bench-Id: /);
    if (at < 0 || !/X-Bench-Id: (\d+)\r\n/.test(text.slice(at))) return;
    const start = at === 0 && text.startsWith('X-Bench-Id: ') ? 0 : at + 2;
    this.id = Number(/X-Bench-Id: (\d+)/.exec(text.slice(start))![1]);
    this.hash = createHash('sha256').update(Buffer.from(text.slice(start), 'latin1'));
    this.head = [];
  }
  done(): { id: number; sum: string } {
    return { id: this.id, sum: this.hash?.digest('hex') ?? '' };
  }
}

async function startSink(): Promise<Sink> {
  let active = 0;
  const waiters: Array<() => void> = [];
  const sink: Sink = {
    server: createServer(),
    port: 0,
    sums: new Map(),
    maxConcurrent: 0,
    waitFor: (n, timeoutMs) => new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${sink.sums.size} of ${n} messages arrived`)), timeoutMs);
      const check = (): void => {
        if (sink.sums.size >= n) {
          clearTimeout(t);
          resolve();
        } else waiters.push(check);
      };
      check();
    }),
  };
  sink.server.on('connection', (sock: Socket) => {
    let buf: Buffer = Buffer.alloc(0);
    let reader: DataReader | undefined;
    let hasher: Hasher | undefined;
    sock.write('220 sink.bench ESMTP\r\n');
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length > 0) {
        if (reader && hasher) {
          const r = reader.push(buf);
          hasher.push(r.data);
          buf = r.rest;
          if (!r.done) return;
          const { id, sum } = hasher.done();
          sink.sums.set(id, sum);
          active--;
          reader = undefined;
          hasher = undefined;
          sock.write('250 2.0.0 Ok: queued\r\n');
          for (const w of waiters.splice(0)) w();
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.subarray(0, nl).toString('latin1').toUpperCase();
        buf = buf.subarray(nl + 2);
        if (line.startsWith('EHLO')) sock.write('250-sink.bench\r\n250-PIPELINING\r\n250-SIZE\r\n250 8BITMIME\r\n');
        else if (line.startsWith('DATA')) {
          reader = new DataReader();
          hasher = new Hasher();
          sink.maxConcurrent = Math.max(sink.maxConcurrent, ++active);
          sock.write('354 go ahead\r\n');
        } else if (line.startsWith('QUIT')) sock.end('221 2.0.0 Bye\r\n');
        else sock.write('250 2.0.0 Ok\r\n');
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => sink.server.listen(0, '127.0.0.1', () => resolve()));
  return Object.assign(sink, { port: (sink.server.address() as { port: number }).port });
}

async function startDaemon(root: string, dir: string, port: number, sinkPort: number, concurrency: number): Promise<ChildProcess> {
  writeFileSync(join(dir, 'main.cf'), [
    `queue_directory = ${dir}/queue`, `data_directory = ${dir}/data`, `maillog_file = ${dir}/maillog`,
    'compatibility_level = 3.11', ...(process.env.SEALPOST_BENCH_LARGE_MAINCF ? process.env.SEALPOST_BENCH_LARGE_MAINCF.split(';') : []), 'message_size_limit = 0', 'mynetworks = 127.0.0.0/8', 'inet_interfaces = 127.0.0.1',
    `relayhost = [127.0.0.1]:${sinkPort}`, 'smtp_tls_security_level = none',
    `default_destination_concurrency_limit = ${concurrency}`, `initial_destination_concurrency = ${concurrency}`, '',
  ].join('\n'));
  writeFileSync(join(dir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
  const child = spawn(process.execPath, [join(root, 'bin/sealpost.js'), 'start-fg', '-c', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(port, 'sealpost');
  return child;
}

export async function bench(): Promise<void> {
  const root = process.env.SEALPOST_BENCH_ROOT ?? process.cwd();
  const mb = Number(process.env.SEALPOST_BENCH_LARGE_MB ?? 20);
  const n = Number(process.env.SEALPOST_BENCH_LARGE_N ?? 20);
  const concurrency = Number(process.env.SEALPOST_BENCH_LARGE_CONCURRENCY ?? 10);
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-relay-large-'));
  // The daemon runs as mail_owner (sealpost) once it has bound its listener: it must reach the directory.
  chmodSync(dir, 0o755);
  const sink = await startSink();
  let child: ChildProcess | undefined;
  try {
    const port = await freePort();
    child = await startDaemon(root, dir, port, sink.port, concurrency);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = peakKb(child.pid!);
    const load0 = loadavg()[0]!;
    const t0 = Date.now();
    const ids = Array.from({ length: n }, (_v, i) => i);
    const lanes = Array.from({ length: concurrency }, (_v, lane) => ids.filter((i) => i % concurrency === lane));
    const sent = new Map<number, string>();
    for (const m of await Promise.all(lanes.map((l) => submitter(port, l, mb)))) for (const [k, v] of m) sent.set(k, v);
    await sink.waitFor(n, 900_000);
    const secs = (Date.now() - t0) / 1000;
    const peak = peakKb(child.pid!);
    const identical = ids.filter((i) => sink.sums.get(i) === sent.get(i)).length;
    const growth = (peak - idle) / 1024;
    process.stdout.write(
      `large: ${n} x ${mb} MB relayed over ${concurrency} sessions, ${concurrency} concurrent deliveries (at most ${sink.maxConcurrent} DATA transfers at once at the sink) in ${secs.toFixed(1)} s\n`
      + `large: daemon peak RSS ${(idle / 1024).toFixed(1)} MB idle -> ${(peak / 1024).toFixed(1)} MB (+${growth.toFixed(1)} MB, +${(growth / concurrency).toFixed(1)} MB per concurrent message)\n`
      + `large: ${identical} of ${n} arrived byte-identical (sha256); load average ${load0.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end (2 cores, shared)\n`,
    );
  } finally {
    if (child && child.exitCode === null) {
      const done = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await done;
    }
    await new Promise((r) => sink.server.close(r));
    if (process.env.SEALPOST_BENCH_SHOWLOG) process.stdout.write(readFileSync(join(dir, 'maillog'), 'utf8'));
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
