/**
 * socketmap.ts — the `socketmap:` table type (socketmap_table(5)): a client
 * for `socketmap:inet:host:port:name` and `socketmap:unix:/path:name`, the
 * protocol MTA-STS resolvers (postfix-mta-sts-resolver) speak.
 *
 * Contract:
 * - One request and one reply per lookup, each a netstring: request
 *   `name<space>key`; reply `OK <data>` (found), `NOTFOUND ` (not found),
 *   `TEMP|TIMEOUT|PERM <reason>` (error result).
 * - One connection per table, reused for every lookup; lookups are serialized
 *   on it. When the server closed it (idle timeout, restart), the request is
 *   retried once on a new connection, as Postfix's auto_clnt does.
 * - Every lookup has a deadline (`options.timeoutMs`, default 10 s; Postfix
 *   hard-codes 100 s — socketmap_table(5) BUGS: "The protocol limits are not
 *   yet configurable"); replies are limited to 100000 bytes.
 * - Fail closed: a server that is down, times out, sends garbage or an
 *   oversized reply, or answers TEMP/TIMEOUT/PERM gives an `error` result with
 *   one line naming the table — never `notfound`. After a timeout or garbage
 *   the connection is dropped (its stream position is unknown).
 * - Keys are sent as given: Postfix does not fold socketmap keys either.
 *
 * Not here: netstring framing (netstring.ts), the lookup orders (domain-walk.ts).
 */
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { ConfigError } from '../lib/errors.ts';
import { encodeNetstring, NetstringDecoder, NetstringError } from './netstring.ts';
import { found, lookupError, NOT_FOUND } from './types.ts';
import type { LookupResult, LookupTable, OpenOptions, TableType } from './types.ts';

/** socketmap_table(5): "replies are not longer than 100000 characters". */
export const SOCKETMAP_MAX_REPLY = 100000;
export const SOCKETMAP_DEFAULT_TIMEOUT_MS = 10_000;

export type SocketmapEndpoint =
  | { readonly kind: 'inet'; readonly host: string; readonly port: number; readonly map: string }
  | { readonly kind: 'unix'; readonly path: string; readonly map: string };

/** Parse `inet:host:port:name` or `unix:/path:name` (the part after `socketmap:`). */
export function parseSocketmapName(name: string): SocketmapEndpoint {
  const cut = name.lastIndexOf(':');
  const map = cut < 0 ? '' : name.slice(cut + 1);
  const endpoint = cut < 0 ? name : name.slice(0, cut);
  const usage = 'use socketmap:inet:host:port:name or socketmap:unix:/path:name';
  if (map === '' || /\s/.test(map)) throw new ConfigError(`socketmap:${name}: missing or bad socketmap name; ${usage}`);
  if (endpoint.startsWith('unix:')) {
    const path = endpoint.slice(5);
    if (path === '') throw new ConfigError(`socketmap:${name}: missing socket path; ${usage}`);
    return { kind: 'unix', path, map };
  }
  if (endpoint.startsWith('inet:')) {
    const hostPort = endpoint.slice(5);
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]+)$/.exec(hostPort);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port < 1 || port > 65535) throw new ConfigError(`socketmap:${name}: bad host:port "${hostPort}"; ${usage}`);
    return { kind: 'inet', host: m[1] ?? m[2]!, port, map };
  }
  throw new ConfigError(`socketmap:${name}: unsupported endpoint type "${endpoint.split(':')[0]}"; ${usage}`);
}

/** Interpret one reply frame (socketmap_table(5) REPLY FORMAT). */
export function parseSocketmapReply(reply: string, spec: string): LookupResult {
  const space = reply.indexOf(' ');
  const status = space < 0 ? reply : reply.slice(0, space);
  const data = space < 0 ? '' : reply.slice(space + 1);
  switch (status) {
    case 'OK':
      return found(data);
    case 'NOTFOUND':
      return NOT_FOUND;
    case 'TEMP':
    case 'TIMEOUT':
    case 'PERM':
      return lookupError(`${spec}: server replied ${status}${data ? `: ${oneLine(data)}` : ''}`);
    default:
      return lookupError(`${spec}: malformed reply "${oneLine(reply).slice(0, 100)}"`);
  }
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** Why a request failed; `retry` says a fresh connection may succeed. */
class RequestFailure extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
  ) {
    super(message);
  }
}

/** One live connection and the reply bytes it has received. */
class Connection {
  readonly decoder = new NetstringDecoder(SOCKETMAP_MAX_REPLY);
  closed = false;
  private waiter: ((err?: Error) => void) | undefined;
  /** True once any byte of the current request's reply arrived. */
  replyStarted = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.replyStarted = true;
      this.decoder.push(chunk);
      this.wake();
    });
    socket.on('end', () => this.markClosed());
    socket.on('close', () => this.markClosed());
    socket.on('error', (err) => {
      this.markClosed();
      this.wake(err);
    });
  }

  private markClosed(): void {
    this.closed = true;
    this.wake();
  }

  private wake(err?: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.(err);
  }

  /** Resolve at the next data/close/error event. */
  waitEvent(): Promise<Error | undefined> {
    return new Promise((resolve) => {
      this.waiter = (err) => resolve(err);
    });
  }
}

class SocketmapTable implements LookupTable {
  readonly type = 'socketmap';
  readonly keyKind = 'fixed' as const;
  private conn: Connection | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly timeoutMs: number;

  constructor(
    readonly name: string,
    readonly spec: string,
    private readonly endpoint: SocketmapEndpoint,
    options: OpenOptions,
  ) {
    this.timeoutMs = options.timeoutMs ?? SOCKETMAP_DEFAULT_TIMEOUT_MS;
  }

  lookup(key: string): Promise<LookupResult> {
    const run = this.queue.then(() => this.lookupNow(key));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.drop();
  }

  private async lookupNow(key: string): Promise<LookupResult> {
    const deadline = Date.now() + this.timeoutMs;
    const request = encodeNetstring(`${this.endpoint.map} ${key}`);
    // Reconnect once: a reused connection may have been closed by the server
    // since the last request (auto_clnt(3) retries once on a stream error).
    for (let attempt = 0; ; attempt++) {
      const reused = this.conn !== undefined && !this.conn.closed;
      try {
        const reply = await this.exchange(request, deadline);
        return parseSocketmapReply(reply, this.spec);
      } catch (err) {
        this.drop();
        if (err instanceof RequestFailure && err.retry && reused && attempt === 0) continue;
        return lookupError(`${this.spec}: ${(err as Error).message}`);
      }
    }
  }

  /** Send one request and wait for one reply frame before the deadline. */
  private async exchange(request: Buffer, deadline: number): Promise<string> {
    const conn = await this.connection(deadline);
    conn.replyStarted = false;
    conn.socket.write(request);
    for (;;) {
      let frame: Buffer | undefined;
      try {
        frame = conn.decoder.next();
      } catch (err) {
        if (err instanceof NetstringError) throw new RequestFailure(`bad reply: ${err.message}`, false);
        throw err;
      }
      if (frame) {
        if (conn.decoder.pending > 0) throw new RequestFailure('server sent more than one reply', false);
        return frame.toString('utf8');
      }
      if (conn.closed) {
        const started = conn.replyStarted;
        throw new RequestFailure(started ? 'connection closed in the middle of a reply' : 'connection closed by server', !started);
      }
      const err = await withDeadline(conn.waitEvent(), deadline, this.timeoutMs);
      if (err) throw new RequestFailure(describeSocketError(err), !conn.replyStarted);
    }
  }

  private async connection(deadline: number): Promise<Connection> {
    if (this.conn && !this.conn.closed) return this.conn;
    this.drop();
    const e = this.endpoint;
    const socket = e.kind === 'unix' ? createConnection({ path: e.path }) : createConnection({ host: e.host, port: e.port });
    socket.unref();
    const conn = new Connection(socket);
    this.conn = conn;
    const connected = new Promise<Error | undefined>((resolve) => {
      socket.once('connect', () => resolve(undefined));
      socket.once('error', (err) => resolve(err));
    });
    const err = await withDeadline(connected, deadline, this.timeoutMs);
    if (err) throw new RequestFailure(`connect: ${describeSocketError(err)}`, false);
    return conn;
  }

  private drop(): void {
    if (this.conn) this.conn.socket.destroy();
    this.conn = undefined;
  }
}

/** Resolve with the promise's value, or reject with a timeout error at the deadline. */
async function withDeadline<T>(promise: Promise<T>, deadline: number, timeoutMs: number): Promise<T> {
  const left = deadline - Date.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RequestFailure(`timeout after ${formatMs(timeoutMs)}`, false)), Math.max(0, left));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'Connection refused',
  ENOENT: 'No such file or directory',
  ECONNRESET: 'Connection reset by peer',
  EPIPE: 'Broken pipe',
  EACCES: 'Permission denied',
  ETIMEDOUT: 'Connection timed out',
};

function describeSocketError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code && ERRNO_TEXT[code]) ?? err.message;
}

export const socketmapType: TableType = {
  type: 'socketmap',
  keyKind: 'fixed',
  listed: true,
  open: async (name, spec, options) => new SocketmapTable(name, spec, parseSocketmapName(name), options),
};
