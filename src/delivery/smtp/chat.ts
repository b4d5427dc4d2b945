/**
 * chat.ts — the SMTP client's socket I/O (Postfix smtp_chat.c): write
 * commands, read replies, each with its own deadline, and keep a short
 * transcript for debugging.
 *
 * Contract:
 * - `SmtpChat` owns one socket (plain, later TLS). `reply(timeoutMs)` resolves
 *   with the next SmtpReply in arrival order (pipelined replies queue up) or
 *   rejects with a `ChatFailure` of kind `lost` (peer closed or reset),
 *   `timeout` (deadline passed; the socket is then destroyed) or `protocol`
 *   (a malformed reply; the parser is poisoned). A malformed line takes its
 *   place in the arrival order: the replies that arrived before it (in the
 *   same read) are still delivered, and the failure comes when the caller
 *   asks for the reply after them — so the 220 to STARTTLS is taken even
 *   when junk follows it in the same read, and `detach()` then discards the
 *   junk (smtp_proto.c smtp_start_tls() purges the stream the same way).
 * - `write(data, timeoutMs)` resolves once the data is handed to the kernel
 *   (after `drain` when the socket buffer was full) or rejects the same way.
 * - `detach()` hands the raw socket over for the TLS handshake and throws
 *   away everything received but not yet consumed: RFC 3207 §6 — nothing the
 *   server sent before the handshake may be acted on after it.
 * - The caller turns a ChatFailure into Postfix's reason text (trouble.ts);
 *   this file knows no SMTP semantics beyond reply boundaries.
 *
 * Not here: what a reply means, TLS policy, timeouts' parameter names.
 */
import type { Socket } from 'node:net';
import { ReplyParser, ReplyProtocolError, SmtpReply } from '../../smtp/reply.ts';

export type ChatFailureKind = 'lost' | 'timeout' | 'protocol';

/** A socket-level failure; the session is unusable afterwards. */
export class ChatFailure extends Error {
  readonly kind: ChatFailureKind;
  constructor(kind: ChatFailureKind, detail: string) {
    super(detail);
    this.kind = kind;
    this.name = 'ChatFailure';
  }
}

const TRANSCRIPT_LINES = 64;

type Waiter = { resolve: (r: SmtpReply) => void; reject: (e: ChatFailure) => void; timer: NodeJS.Timeout };

export class SmtpChat {
  private socket: Socket;
  private parser = new ReplyParser();
  private readonly replies: SmtpReply[] = [];
  private waiter: Waiter | undefined;
  private failure: ChatFailure | undefined;
  /** A protocol error that arrived behind the queued replies: raised once they are consumed. */
  private damaged: ChatFailure | undefined;
  /** Last lines sent (`C: ...`) and received (`S: ...`), bounded. */
  readonly transcript: string[] = [];

  private readonly onData = (chunk: Buffer): void => {
    for (const item of this.parser.push(chunk)) {
      if (item instanceof ReplyProtocolError) {
        // Behind the replies already queued (the parser ignores input from now on).
        this.damaged = new ChatFailure('protocol', `${item.detail}${item.line ? `: ${item.line}` : ''}`);
        break;
      }
      this.note(`S: ${item.text()}`);
      this.replies.push(item);
    }
    this.deliver();
  };
  private readonly onClose = (): void => {
    this.fail(new ChatFailure('lost', 'connection closed by server'));
  };
  private readonly onError = (err: Error): void => {
    this.fail(new ChatFailure('lost', err.message));
  };

  constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  /** The current socket (TLS after upgrade). */
  get current(): Socket {
    return this.socket;
  }

  /** True when the connection failed or was closed. */
  get broken(): boolean {
    return this.failure !== undefined || this.damaged !== undefined || this.socket.destroyed;
  }

  /** True while idle and clean: no failure and no unread reply (a cached session must be silent). */
  get idle(): boolean {
    return !this.broken && this.replies.length === 0 && !this.parser.inReply && this.waiter === undefined;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('end', this.onClose);
    socket.on('error', this.onError);
  }

  private note(line: string): void {
    if (this.transcript.length >= TRANSCRIPT_LINES) this.transcript.shift();
    this.transcript.push(line.length > 200 ? `${line.slice(0, 200)}...` : line);
  }

  private fail(f: ChatFailure): void {
    if (this.failure) return;
    // A malformed reply that arrived first is what broke the conversation.
    this.failure = this.damaged ?? f;
    const w = this.waiter;
    this.waiter = undefined;
    if (w) {
      clearTimeout(w.timer);
      w.reject(this.failure);
    }
  }

  private deliver(): void {
    const w = this.waiter;
    if (!w) return;
    if (this.replies.length === 0) {
      if (this.damaged) this.fail(this.damaged);
      return;
    }
    this.waiter = undefined;
    clearTimeout(w.timer);
    w.resolve(this.replies.shift()!);
  }

  /** The next reply, within `timeoutMs`. */
  reply(timeoutMs: number): Promise<SmtpReply> {
    const next = this.replies.shift();
    if (next) return Promise.resolve(next);
    if (this.damaged) this.fail(this.damaged);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        const f = new ChatFailure('timeout', `no reply within ${timeoutMs} ms`);
        this.fail(f);
        this.socket.destroy();
        reject(f);
      }, timeoutMs);
      this.waiter = { resolve, reject, timer };
    });
  }

  /** Write command lines (with their CRLF) or raw bytes, within `timeoutMs`. `redact` keeps secrets out of the transcript. */
  write(data: string | Buffer, timeoutMs: number, redact = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (redact) {
      this.note('C: (authentication data)');
    } else if (typeof data === 'string') {
      for (const l of data.split('\r\n')) if (l !== '') this.note(`C: ${l}`);
    } else {
      this.note(`C: (${data.length} bytes)`);
    }
    const ok = this.socket.write(data);
    if (ok) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const socket = this.socket;
      const done = (): void => {
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onDrain);
      };
      const onDrain = (): void => {
        done();
        if (this.failure) reject(this.failure);
        else resolve();
      };
      const timer = setTimeout(() => {
        done();
        const f = new ChatFailure('timeout', `write not drained within ${timeoutMs} ms`);
        this.fail(f);
        socket.destroy();
        reject(f);
      }, timeoutMs);
      socket.on('drain', onDrain);
      // The connection closing while we wait ends the wait too (rejected with the failure).
      socket.once('close', onDrain);
    });
  }

  /**
   * Stop reading and hand the socket to the TLS layer. RFC 3207 §6: discard
   * every byte received before the handshake (queued replies and the parser's
   * partial input).
   */
  detach(): Socket {
    const s = this.socket;
    s.off('data', this.onData);
    s.off('close', this.onClose);
    s.off('end', this.onClose);
    s.off('error', this.onError);
    this.replies.length = 0;
    this.damaged = undefined;
    this.parser = new ReplyParser();
    return s;
  }

  /** Continue the conversation over `socket` (the TLS socket after the handshake). */
  upgrade(socket: Socket): void {
    this.socket = socket;
    this.parser = new ReplyParser();
    this.replies.length = 0;
    this.attach(socket);
  }

  /** Close without QUIT. */
  destroy(): void {
    this.fail(new ChatFailure('lost', 'closed locally'));
    this.socket.destroy();
  }
}
