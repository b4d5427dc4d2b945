/**
 * tls-source.ts (bench) — a small STARTTLS load client, the TLS counterpart
 * of smtp-source (which has no TLS), used to state a TLS receiver's capacity
 * alone (bench/relay.ts): `sessions` concurrent clients send `n` 4 KB
 * messages, either over one STARTTLS connection each (`reuse`) or with a new
 * connection and a resumed TLS handshake per message (`per-message`: the
 * session of the previous connection is offered again). Resolves with msgs/s.
 *
 * Not a test client (no checks beyond the reply codes); not a sender under
 * measurement.
 */
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

const BODY = `Subject: bench\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(50);

/** Line-oriented reply reader over a socket (the last line of a reply has a space after the code). */
class Replies {
  private buf = '';
  private waiters: Array<(line: string) => void> = [];
  private lines: string[] = [];

  constructor(private sock: Socket | TLSSocket) {
    this.attach(sock);
  }

  attach(sock: Socket | TLSSocket): void {
    this.sock = sock;
    sock.on('data', (c: Buffer) => {
      this.buf += c.toString('latin1');
      for (let nl = this.buf.indexOf('\r\n'); nl >= 0; nl = this.buf.indexOf('\r\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 2);
        if (line[3] === '-') continue;
        const w = this.waiters.shift();
        if (w) w(line);
        else this.lines.push(line);
      }
    });
  }

  detach(): void {
    this.sock.removeAllListeners('data');
  }

  next(): Promise<string> {
    const l = this.lines.shift();
    return l !== undefined ? Promise.resolve(l) : new Promise((r) => this.waiters.push(r));
  }

  async cmd(text: string, code: string): Promise<void> {
    this.sock.write(text);
    const line = await this.next();
    if (!line.startsWith(code)) throw new Error(`tls-source: ${text.trim().slice(0, 20)}: ${line}`);
  }
}

/** One connection up to a ready TLS session. */
async function open(port: number, session: Buffer | undefined): Promise<{ tls: TLSSocket; r: Replies }> {
  const sock = connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  const r = new Replies(sock);
  if (!(await r.next()).startsWith('220')) throw new Error('tls-source: no greeting');
  await r.cmd('EHLO tls-source.bench\r\n', '250');
  await r.cmd('STARTTLS\r\n', '220');
  r.detach();
  const tls = tlsConnect({ socket: sock, rejectUnauthorized: false, servername: 'sink.bench.test', ...(session ? { session } : {}) });
  await new Promise((resolve, reject) => tls.once('secureConnect', resolve).once('error', reject));
  r.attach(tls);
  await r.cmd('EHLO tls-source.bench\r\n', '250');
  return { tls, r };
}

async function send(r: Replies): Promise<void> {
  await r.cmd('MAIL FROM:<bench@example.org>\r\n', '250');
  await r.cmd('RCPT TO:<sink@example.com>\r\n', '250');
  await r.cmd('DATA\r\n', '354');
  await r.cmd(`${BODY}.\r\n`, '250');
}

export async function tlsSourceCapacity(port: number, n: number, sessions: number, mode: 'per-message' | 'reuse'): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: sessions }, async () => {
      let session: Buffer | undefined;
      let conn: { tls: TLSSocket; r: Replies } | undefined;
      for (let i = next++; i < n; i = next++) {
        if (!conn) {
          conn = await open(port, session);
          conn.tls.on('session', (s: Buffer) => (session = s));
        }
        await send(conn.r);
        if (mode === 'per-message') {
          conn.tls.end('QUIT\r\n');
          conn = undefined;
        }
      }
      conn?.tls.end('QUIT\r\n');
    }),
  );
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}
