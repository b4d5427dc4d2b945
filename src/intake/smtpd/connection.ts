/**
 * connection.ts — the byte side of one SMTP server connection: command lines
 * (line-reader.ts), DATA content (dot-stuff.ts DataReader), replies, read
 * deadlines (smtpd_timeout) and the switch to TLS.
 *
 * Contract:
 * - `readLine()` / `readData()` resolve with what arrived, or `eof` when the
 *   client went away, or `timeout` after `timeoutMs` without a complete line /
 *   without any DATA bytes.
 * - `readData()` hands the line reader's buffered bytes to the DataReader
 *   first; after the end of data, what followed it goes back to the line
 *   reader (pipelined commands). Only `<CR><LF>.<CR><LF>` ends DATA (the
 *   DataReader's rule), so no bare-CR/LF variant splits one DATA into two.
 * - `startTls()` first discards everything the client sent after the
 *   STARTTLS command — RFC 3207 §6: pipelined plaintext must not be
 *   executed inside TLS — then runs the server handshake on the same socket.
 * - Writes go straight to the socket; `close()` ends it (FIN after the
 *   pending replies), `destroy()` cuts it.
 *
 * Not here: what the lines mean (session.ts and the command handlers).
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { LineReader } from '../../smtp/line-reader.ts';
import type { SmtpLine } from '../../smtp/line-reader.ts';
import type { DataReader } from '../../smtp/dot-stuff.ts';

export type ReadResult<T> = T | 'eof' | 'timeout';

export class SmtpConnection {
  socket: Socket;
  readonly reader: LineReader;
  private ended = false;
  private wake: (() => void) | undefined;
  private dataSink: ((chunk: Buffer) => void) | undefined;
  private readonly onDataBound = (chunk: Buffer) => this.onData(chunk);
  private readonly onEndBound = () => this.onEnd();

  constructor(
    socket: Socket,
    lineLimit: number,
    public timeoutMs: number,
  ) {
    this.socket = socket;
    this.reader = new LineReader({ maxLineLength: lineLimit });
    this.attach(socket);
  }

  get closed(): boolean {
    return this.ended;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onDataBound);
    socket.on('end', this.onEndBound);
    socket.on('close', this.onEndBound);
    socket.on('error', this.onEndBound);
  }

  private detach(socket: Socket): void {
    socket.off('data', this.onDataBound);
    socket.off('end', this.onEndBound);
    socket.off('close', this.onEndBound);
    socket.off('error', this.onEndBound);
  }

  private onData(chunk: Buffer): void {
    if (this.dataSink) this.dataSink(chunk);
    else this.reader.push(chunk);
    this.notify();
  }

  private onEnd(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Wait until new bytes arrive, the peer goes away, or the deadline passes. */
  private waitForInput(): Promise<'input' | 'timeout'> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve('timeout');
      }, this.timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve('input');
      };
    });
  }

  async readLine(): Promise<ReadResult<SmtpLine>> {
    for (;;) {
      const line = this.reader.next();
      if (line) return line;
      if (this.ended) return 'eof';
      if ((await this.waitForInput()) === 'timeout') return 'timeout';
    }
  }

  /**
   * Read DATA content until `<CR><LF>.<CR><LF>`, passing un-stuffed chunks to
   * `sink`. Returns 'done', 'eof' or 'timeout'.
   */
  async readData(dr: DataReader, sink: (data: Buffer) => void): Promise<ReadResult<'done'>> {
    let finished = false;
    const feed = (chunk: Buffer): void => {
      if (finished) {
        this.reader.push(chunk);
        return;
      }
      const r = dr.push(chunk);
      if (r.data.length > 0) sink(r.data);
      if (r.done) {
        finished = true;
        this.dataSink = undefined;
        if (r.rest.length > 0) this.reader.push(r.rest);
      }
    };
    const buffered = this.reader.takeBuffered();
    this.dataSink = feed;
    if (buffered.length > 0) feed(buffered);
    try {
      while (!finished) {
        if (this.ended) return 'eof';
        if ((await this.waitForInput()) === 'timeout') return 'timeout';
      }
      return 'done';
    } finally {
      this.dataSink = undefined;
    }
  }

  write(text: string): void {
    if (!this.ended && !this.socket.destroyed) this.socket.write(text);
  }

  /** RFC 3207 §6: drop pipelined plaintext, then handshake. Resolves false when the handshake failed. */
  async startTls(context: SecureContext): Promise<{ ok: true; socket: TLSSocket } | { ok: false; reason: string }> {
    this.reader.discard();
    return this.wrapTls(context);
  }

  /** Run the TLS server handshake on the current socket (also smtpd_tls_wrappermode). */
  wrapTls(context: SecureContext): Promise<{ ok: true; socket: TLSSocket } | { ok: false; reason: string }> {
    const plain = this.socket;
    this.detach(plain);
    return this.awaitHandshake(new TLSSocket(plain, { isServer: true, secureContext: context }));
  }

  private awaitHandshake(secure: TLSSocket): Promise<{ ok: true; socket: TLSSocket } | { ok: false; reason: string }> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done({ ok: false, reason: 'timeout' }), this.timeoutMs);
      const onError = (err: Error) => done({ ok: false, reason: err.message });
      const onClose = () => done({ ok: false, reason: 'lost connection' });
      const done = (r: { ok: true; socket: TLSSocket } | { ok: false; reason: string }) => {
        clearTimeout(timer);
        secure.off('secure', onSecure);
        secure.off('error', onError);
        secure.off('close', onClose);
        if (r.ok) {
          this.socket = secure;
          this.attach(secure);
        } else {
          this.ended = true;
          secure.destroy();
        }
        resolve(r);
      };
      const onSecure = () => done({ ok: true, socket: secure });
      secure.once('secure', onSecure);
      secure.once('error', onError);
      secure.once('close', onClose);
    });
  }

  /** Send what is pending, then close. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.end(() => resolve());
      // Do not wait forever for a peer that never reads.
      setTimeout(() => {
        this.socket.destroy();
        resolve();
      }, 1000).unref();
    });
  }

  destroy(): void {
    this.ended = true;
    this.socket.destroy();
    this.notify();
  }
}
