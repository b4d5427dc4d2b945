/**
 * smtp-client.ts (test harness) — a tiny scripted raw-socket SMTP client for
 * tests that need byte-exact control (smuggling, pipelining, STARTTLS buffer
 * discard), and `startTestSmtpd()` to run a listener on 127.0.0.1 with an
 * ephemeral port, a fresh spool and an in-memory mail log.
 *
 * Contract: `RawSmtp.send()` writes bytes exactly as given; `reply()` returns
 * the next complete reply (all its lines, CRLF-joined, no final CRLF) or
 * throws after a deadline; `closed()` resolves when the server has closed the
 * connection. Nothing here interprets SMTP beyond finding reply boundaries.
 */
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.ts';
import { createSpool } from '../../src/queue/spool.ts';
import type { Spool, SpoolOptions } from '../../src/queue/spool.ts';
import { memoryMailLog } from '../../src/reports/maillog.ts';
import { startSmtpd } from '../../src/intake/smtpd/server.ts';
import type { SmtpdListener } from '../../src/intake/smtpd/server.ts';
import { tempDir } from './cli.ts';

export class RawSmtp {
  private buf = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private ended = false;
  socket: Socket;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  private attach(socket: Socket): void {
    socket.on('data', (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.wake();
    });
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static open(port: number, opts: { tls?: boolean } = {}): Promise<RawSmtp> {
    return new Promise((resolve, reject) => {
      const s: Socket = opts.tls
        ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => resolve(new RawSmtp(s)))
        : connect({ host: '127.0.0.1', port }, () => resolve(new RawSmtp(s)));
      s.once('error', reject);
    });
  }

  send(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next complete reply, e.g. `250-a\r\n250 b` → '250-a\r\n250 b'. */
  async reply(timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.buf.toString('latin1');
      let at = 0;
      for (;;) {
        const nl = text.indexOf('\r\n', at);
        if (nl < 0) break;
        const line = text.slice(at, nl);
        at = nl + 2;
        if (/^\d{3}(?: |$)/.test(line)) {
          this.buf = this.buf.subarray(at);
          return text.slice(0, at - 2);
        }
      }
      if (this.ended) throw new Error(`connection closed; pending: ${JSON.stringify(text)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; pending: ${JSON.stringify(text)}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Send a line (CRLF added) and return the reply. */
  async cmd(line: string): Promise<string> {
    this.send(`${line}\r\n`);
    return this.reply();
  }

  /** Resolves true when the server closes within the deadline. */
  async closed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  /** Bytes received but not consumed as a reply. */
  pending(): string {
    return this.buf.toString('latin1');
  }

  /** Upgrade after `220 Ready to start TLS`. */
  async startTls(): Promise<TLSSocket> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, rejectUnauthorized: false }, () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.attach(secure);
    return secure;
  }

  end(): void {
    this.socket.destroy();
  }
}

export interface TestSmtpd {
  readonly port: number;
  readonly spool: Spool;
  readonly dir: string;
  readonly log: { readonly lines: string[] };
  readonly listener: SmtpdListener;
  readonly queued: string[];
  /** Every message in incoming/, decoded. */
  messages(): Promise<Array<Awaited<ReturnType<Spool['readMessage']>> & { id: string }>>;
  stop(): Promise<void>;
}

/** A listener on 127.0.0.1:0 with its own config dir (main.cf from `mainCf`), spool and memory log. */
export async function startTestSmtpd(
  overrides: Record<string, string> = {},
  opts: { mainCf?: string; spool?: SpoolOptions; setup?: (dir: string) => void } = {},
): Promise<TestSmtpd> {
  const { dir, cleanup } = tempDir('sealpost-smtpd-');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'main.cf'), opts.mainCf ?? '');
  opts.setup?.(dir);
  // smtpd_peername_lookup = no: these tests expect Postfix's unknown[addr] whatever /etc/hosts says
  // (the client name lookup has its own tests: test/unit/intake/smtpd/peer-name.test.ts).
  const config = loadConfig({ configDir: dir, overrides: { myhostname: 'mx.test.example', smtpd_error_sleep_time: '0', smtpd_peername_lookup: 'no', ...overrides } });
  const spool = await createSpool(join(dir, 'queue'), opts.spool);
  const log = memoryMailLog();
  const queued: string[] = [];
  let listener: SmtpdListener;
  try {
    listener = await startSmtpd({ host: '127.0.0.1', port: 0 }, { config, spool, log, serviceName: 'smtp', onQueued: (id) => queued.push(id) });
  } catch (e) {
    cleanup();
    throw e;
  }
  return {
    port: listener.address.port,
    spool,
    dir,
    log,
    listener,
    queued,
    async messages() {
      const out = [];
      for (const id of spool.list('incoming')) out.push({ id, ...(await spool.readMessage('incoming', id)) });
      return out;
    },
    async stop() {
      await listener.close({ graceful: false, timeoutMs: 0 });
      cleanup();
    },
  };
}
