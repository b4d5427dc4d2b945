/**
 * socket-pair.ts (test harness) — two connected TCP sockets on loopback
 * (127.0.0.1, an ephemeral port, the listener closed at once), for unit tests
 * that inject one end into the SMTP client (SocketFactory) or the smtpd
 * session and script the other; and a tiny line-based peer to script it with.
 * Real sockets, so STARTTLS runs a real handshake over them.
 */
import { createServer, connect, type Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';

/** [near, far]: `near` goes to the code under test, the test drives `far`. */
export async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const accepted = new Promise<Socket>((r) => server.once('connection', r));
  const near = connect(port, '127.0.0.1');
  await new Promise<void>((r, j) => near.once('connect', r).once('error', j));
  const far = await accepted;
  server.close();
  near.setNoDelay(true);
  far.setNoDelay(true);
  return [near, far];
}

/** Line-by-line script of the far end: read commands, write replies, switch to TLS. */
export class ScriptedPeer {
  private buf = '';
  private waiters: Array<() => void> = [];
  private closed = false;
  /** Every line received (`C: ...`) and sent (`S: ...`). */
  readonly transcript: string[] = [];

  constructor(public socket: Socket) {
    this.attach(socket);
  }

  private attach(s: Socket): void {
    s.on('data', (c: Buffer) => {
      this.buf += c.toString('latin1');
      this.wake();
    });
    s.on('close', () => {
      this.closed = true;
      this.wake();
    });
    s.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** The next CRLF line (without it), or undefined when the peer went away. */
  async line(): Promise<string | undefined> {
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        this.transcript.push(`C: ${l}`);
        return l;
      }
      if (this.closed) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Read until `<CRLF>.<CRLF>` (DATA content), or undefined when the peer went away. */
  async data(): Promise<string | undefined> {
    for (;;) {
      const i = this.buf.indexOf('\r\n.\r\n');
      if (i >= 0) {
        const d = this.buf.slice(0, i + 2);
        this.buf = this.buf.slice(i + 5);
        return d;
      }
      if (this.closed) return undefined;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Wait until some content has arrived (without consuming it). */
  async someData(): Promise<void> {
    while (this.buf.length === 0 && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
  }

  send(text: string): void {
    for (const l of text.split('\r\n')) this.transcript.push(`S: ${l}`);
    this.socket.write(`${text}\r\n`);
  }

  /** Reply to each command in order; `expect` checks the command's verb. */
  async expect(verb: string, reply: string): Promise<string> {
    const l = await this.line();
    if (l === undefined || !l.toUpperCase().startsWith(verb)) throw new Error(`expected ${verb}, got ${l ?? 'EOF'}\n${this.transcript.join('\n')}`);
    this.send(reply);
    return l;
  }

  /** The server side of a TLS handshake on this socket (after `220` to STARTTLS). */
  async startTls(secureContext: SecureContext): Promise<void> {
    this.socket.removeAllListeners('data');
    this.buf = '';
    const tls = new TLSSocket(this.socket, { isServer: true, secureContext });
    await new Promise<void>((r, j) => tls.once('secure', r).once('error', j));
    this.socket = tls;
    this.attach(tls);
  }

  /** Reset the connection (RST). */
  reset(): void {
    this.socket.resetAndDestroy();
  }
}
