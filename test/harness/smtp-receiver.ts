/**
 * smtp-receiver.ts (test harness) — a scriptable SMTP receiver on a loopback
 * address, for delivery and TLS scenarios: real sockets, real STARTTLS
 * (certificates from pki.ts), per-command reply overrides, delays, drops,
 * plaintext injection before the TLS handshake, AUTH PLAIN/LOGIN.
 *
 * Contract:
 * - `startReceiver(opts)` listens on `opts.host` (default 127.0.0.2) and
 *   `opts.port` (default ephemeral) and resolves once listening.
 *   `startReceivers([...])` binds several receivers on different 127.0.0.x
 *   addresses with ONE shared free port (the test-lab convention:
 *   `smtp_tcp_port = P`).
 * - Every accepted message is recorded in `messages` (envelope, ESMTP
 *   parameters, un-stuffed data, TLS state, AUTH user); `transcript` holds
 *   `C: ...`/`S: ...` lines of every session; `connections` counts TCP
 *   connections accepted.
 * - Reply overrides return a full reply text (`550 5.1.1 no such user`,
 *   multi-line with `\r\n` between lines) or undefined for the default.
 *
 * - The delivery lab (`deliveryLab`, `labRequest`): a loopback DNS server, a
 *   config dir (sealpost_dns_resolvers, smtp_tcp_port = the receivers' port),
 *   the real TLS engine and SMTP agent, and queue files written the way the
 *   queue manager hands them to the agent.
 *
 * Not here: queueing, relay control, anything a real MTA decides. The
 * receiver never validates the protocol strictly; it only plays a role.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeQueueFile } from '../../src/queue/queue-file.ts';
import type { DsnNotify } from '../../src/queue/queue-file.ts';
import type { DeliveryRequest } from '../../src/delivery/types.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createResolver } from '../../src/delivery/dns/resolver.ts';
import { createSmtpAgent } from '../../src/delivery/smtp/agent.ts';
import { createTlsEngine } from '../../src/delivery/tls/engine.ts';
import type { DeliveryAgent, DeliveryResult, RecipientOutcome } from '../../src/delivery/types.ts';
import { TableSet } from '../../src/maps/registry.ts';
import { memoryMailLog } from '../../src/reports/maillog.ts';
import { EventBus } from '../../src/reports/events.ts';
import { mailLogSubscriber } from '../../src/reports/maillog-subscriber.ts';
import { tlsLogLevel } from '../../src/delivery/tls/summary.ts';
import { applySoftBounce } from '../../src/delivery/smtp/trouble.ts';
import type { Zone } from './dns-server.ts';
import { startDnsServer } from './dns-server.ts';
import { tempDir } from './cli.ts';

export interface ReceivedMessage {
  readonly mailFrom: string;
  /** Everything after `MAIL FROM:<...>` (ESMTP parameters), trimmed. */
  readonly mailParams: string;
  readonly rcptTo: string[];
  /** ESMTP parameters of each accepted RCPT TO, in order. */
  readonly rcptParams: string[];
  /** The content with dot-stuffing removed, the final CRLF of the last line kept. */
  readonly data: Buffer;
  readonly tls: boolean;
  readonly tlsProtocol?: string;
  /** The SNI name the client sent in its TLS handshake (DANE: the TLSA base domain; MTA-STS: the MX name). */
  readonly sni?: string;
  /** The TLS session was resumed (a session ticket or ID the client remembered). */
  readonly tlsResumed?: boolean;
  readonly authUser?: string;
  readonly helo: string;
  /** Which connection (1-based) carried the message. */
  readonly connection: number;
}

/** Per-connection facts handed to reply overrides. */
export interface SessionView {
  readonly connection: number;
  readonly tls: boolean;
  /** Messages accepted so far by the whole receiver. */
  readonly accepted: number;
  /** How many times this command was seen by the whole receiver (1 for the first). */
  readonly seen: number;
}

export type ReplyOverride = (arg: string, session: SessionView) => string | undefined;

export interface ReceiverReplies {
  readonly greeting?: string;
  readonly ehlo?: ReplyOverride;
  readonly helo?: ReplyOverride;
  readonly mail?: ReplyOverride;
  readonly rcpt?: ReplyOverride;
  /** Reply to the DATA command itself (default 354). */
  readonly data?: ReplyOverride;
  /** Reply after the end-of-data dot; the argument is the data as text. */
  readonly dataEnd?: ReplyOverride;
  readonly starttls?: ReplyOverride;
  readonly rset?: ReplyOverride;
  readonly auth?: ReplyOverride;
}

export interface ReceiverDelays {
  readonly greeting?: number;
  readonly ehlo?: number;
  readonly mail?: number;
  readonly rcpt?: number;
  readonly data?: number;
  readonly dataEnd?: number;
  readonly starttls?: number;
  readonly rset?: number;
  readonly quit?: number;
}

export interface ReceiverOptions {
  readonly host?: string;
  readonly port?: number;
  /** The name in the greeting and EHLO reply (default mx.test). */
  readonly name?: string;
  /** PEM file paths for STARTTLS. */
  readonly tls?: { readonly key: string; readonly cert: string; readonly ca?: string } | undefined;
  /** Default 'offer' when tls is given, else 'none'. */
  readonly starttls?: 'offer' | 'none' | 'refuse-454';
  /** The whole greeting reply (default `220 NAME ESMTP test receiver`). */
  readonly greeting?: string;
  readonly replies?: ReceiverReplies;
  /** Extra EHLO keyword lines (`AUTH PLAIN LOGIN` is added by `auth`). */
  readonly extensions?: readonly string[];
  /** Advertise REQUIRETLS inside TLS only, as RFC 8689 §3 has it (a plaintext EHLO never lists it). */
  readonly requireTls?: boolean;
  readonly pipelining?: boolean;
  /** SIZE limit to advertise (undefined: `SIZE` without a limit; null: no SIZE at all). */
  readonly size?: number | null;
  readonly eightBitMime?: boolean;
  readonly smtputf8?: boolean;
  readonly dsn?: boolean;
  /** Accept AUTH PLAIN/LOGIN for these users (user → password). */
  readonly auth?: { readonly users: Readonly<Record<string, string>>; readonly onlyOverTls?: boolean; readonly mechanisms?: readonly string[] };
  /** Close the connection when message data arrives ('body'), or after the final dot before replying ('dot'). */
  readonly dropDuringData?: boolean | 'body' | 'dot';
  /** Stop reading once DATA was accepted (the client's writes block: smtp_data_xfer_timeout). */
  readonly stallData?: boolean;
  /** Milliseconds to wait before each reply. */
  readonly delayMs?: ReceiverDelays;
  readonly minTlsVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  readonly maxTlsVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** Offer only anonymous (aNULL) cipher suites, TLS ≤ 1.2. */
  readonly anonymousOnly?: boolean;
  /** Plaintext written right after `220 ... ready to start TLS`, in the same write (RFC 3207 §6 attack). */
  readonly injectBeforeTls?: string;
  /** Say 220 to STARTTLS, then reset the connection when the ClientHello arrives (a failed handshake). */
  readonly breakTls?: boolean;
  /** Answer MAIL with 530 until STARTTLS was done. */
  readonly requireStarttls?: boolean;
}

export interface Receiver {
  readonly host: string;
  readonly port: number;
  readonly messages: ReceivedMessage[];
  readonly transcript: string[];
  /** TCP connections accepted so far. */
  readonly connections: number;
  /** The client address of each connection, in order. */
  readonly clientAddresses: string[];
  /** Resolves when `n` messages have been accepted (or rejects after timeoutMs). */
  waitForMessages(n: number, timeoutMs?: number): Promise<void>;
  /** Reset every open connection (keeps listening). */
  dropConnections(): Promise<void>;
  close(): Promise<void>;
}

const sleep = (ms: number | undefined): Promise<void> =>
  ms && ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();

/** Buffered reader over whichever socket is current (plain, then TLS). */
class Reader {
  buf: Buffer = Buffer.alloc(0);
  closed = false;
  private waiter: (() => void) | undefined;
  socket: Socket;
  private readonly onData = (c: Buffer): void => {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.closed = true;
    this.wake();
  };

  constructor(socket: Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('data', this.onData);
    socket.on('close', this.onEnd);
    socket.on('end', this.onEnd);
    socket.on('error', this.onEnd);
  }

  detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onEnd);
    this.socket.off('end', this.onEnd);
    this.buf = Buffer.alloc(0); // RFC 3207 §6: the server discards pre-TLS bytes too
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    return new Promise((r) => {
      this.waiter = r;
    });
  }

  async line(): Promise<string | undefined> {
    for (;;) {
      const lf = this.buf.indexOf(0x0a);
      if (lf >= 0) {
        const line = this.buf.subarray(0, lf).toString('utf8').replace(/\r$/, '');
        this.buf = this.buf.subarray(lf + 1);
        return line;
      }
      if (this.closed) return undefined;
      await this.wait();
    }
  }

  /** Until `.` alone on a line; returns the un-stuffed content, or undefined when the peer closed. */
  async data(onFirstBytes?: () => boolean): Promise<Buffer | undefined> {
    for (;;) {
      if (this.buf.length > 0 && onFirstBytes?.()) return undefined;
      const text = this.buf.toString('latin1');
      const end = text.startsWith('.\r\n') ? 0 : text.indexOf('\r\n.\r\n');
      if (end >= 0) {
        const body = end === 0 ? '' : text.slice(0, end + 2);
        this.buf = this.buf.subarray(end === 0 ? 3 : end + 5);
        // RFC 5321 §4.5.2: remove the stuffed leading dot of each line.
        return Buffer.from(body.replace(/(^|\r\n)\./g, '$1'), 'latin1');
      }
      if (this.closed) return undefined;
      await this.wait();
    }
  }
}

interface Envelope {
  mailFrom?: string;
  mailParams: string;
  rcptTo: string[];
  rcptParams: string[];
}

function pathOf(arg: string): { path: string; params: string } {
  const m = /^<([^>]*)>\s*(.*)$/.exec(arg.trim());
  return m ? { path: m[1]!, params: m[2]!.trim() } : { path: arg.trim(), params: '' };
}

function decodePlain(b64: string): { user: string; pass: string } | undefined {
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return undefined;
  return { user: parts[1]!, pass: parts[2]! };
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  const host = opts.host ?? '127.0.0.2';
  const name = opts.name ?? 'mx.test';
  const messages: ReceivedMessage[] = [];
  const transcript: string[] = [];
  const sockets = new Set<Socket>();
  const counts = new Map<string, number>();
  let connections = 0;
  const clientAddresses: string[] = [];
  let msgWaiters: Array<() => void> = [];
  const starttlsMode = opts.starttls ?? (opts.tls ? 'offer' : 'none');
  let secureContext: SecureContext | undefined;
  if (opts.tls) {
    secureContext = createSecureContext({
      key: readFileSync(opts.tls.key),
      cert: readFileSync(opts.tls.cert),
      ...(opts.tls.ca ? { ca: readFileSync(opts.tls.ca) } : {}),
      ...(opts.minTlsVersion ? { minVersion: opts.minTlsVersion } : {}),
      ...(opts.maxTlsVersion ? { maxVersion: opts.maxTlsVersion } : opts.anonymousOnly ? { maxVersion: 'TLSv1.2' as const } : {}),
      ...(opts.anonymousOnly ? { ciphers: 'aNULL:@SECLEVEL=0' } : {}),
    });
  }

  const seen = (cmd: string): number => {
    const n = (counts.get(cmd) ?? 0) + 1;
    counts.set(cmd, n);
    return n;
  };

  const serve = async (raw: Socket, connection: number): Promise<void> => {
    const reader = new Reader(raw);
    let socket: Socket = raw;
    let tls = false;
    let tlsProtocol: string | undefined;
    let sni: string | undefined;
    let tlsResumed = false;
    let authUser: string | undefined;
    let helo = '';
    let env: Envelope = { mailParams: '', rcptTo: [], rcptParams: [] };
    const view = (cmd: string): SessionView => ({ connection, tls, accepted: messages.length, seen: seen(cmd) });
    const send = (text: string): void => {
      for (const l of text.split('\r\n')) transcript.push(`S: ${l}`);
      if (!socket.destroyed) socket.write(`${text}\r\n`);
    };
    const reply = async (delay: number | undefined, override: ReplyOverride | undefined, cmd: string, arg: string, dflt: string): Promise<string> => {
      await sleep(delay);
      const r = override?.(arg, view(cmd)) ?? dflt;
      send(r);
      return r;
    };

    await sleep(opts.delayMs?.greeting);
    send(opts.replies?.greeting ?? opts.greeting ?? `220 ${name} ESMTP test receiver`);
    for (;;) {
      const line = await reader.line();
      if (line === undefined) break;
      transcript.push(`C: ${line}`);
      const sp = line.indexOf(' ');
      const verb = (sp < 0 ? line : line.slice(0, sp)).toUpperCase();
      const arg = sp < 0 ? '' : line.slice(sp + 1);
      if (verb === 'EHLO') {
        helo = arg;
        const ext: string[] = [];
        if (opts.pipelining ?? true) ext.push('PIPELINING');
        if (opts.size !== null) ext.push(opts.size === undefined ? 'SIZE' : `SIZE ${opts.size}`);
        if (!tls && starttlsMode !== 'none') ext.push('STARTTLS');
        if (opts.auth && (tls || !opts.auth.onlyOverTls)) ext.push(`AUTH ${(opts.auth.mechanisms ?? ['PLAIN', 'LOGIN']).join(' ')}`);
        ext.push('ENHANCEDSTATUSCODES');
        if (opts.eightBitMime ?? true) ext.push('8BITMIME');
        if (opts.dsn ?? true) ext.push('DSN');
        if (opts.smtputf8 ?? true) ext.push('SMTPUTF8');
        if (tls && opts.requireTls) ext.push('REQUIRETLS');
        ext.push(...(opts.extensions ?? []));
        const lines = [name, ...ext];
        const dflt = lines.map((l, i) => `250${i < lines.length - 1 ? '-' : ' '}${l}`).join('\r\n');
        await reply(opts.delayMs?.ehlo, opts.replies?.ehlo, 'ehlo', arg, dflt);
      } else if (verb === 'HELO') {
        helo = arg;
        await reply(opts.delayMs?.ehlo, opts.replies?.helo, 'helo', arg, `250 ${name}`);
      } else if (verb === 'STARTTLS') {
        if (tls || starttlsMode === 'none' || !secureContext) {
          send('502 5.5.1 Error: command not implemented');
          continue;
        }
        if (starttlsMode === 'refuse-454') {
          await reply(opts.delayMs?.starttls, opts.replies?.starttls, 'starttls', arg, '454 4.7.0 TLS not available due to local problem');
          continue;
        }
        await sleep(opts.delayMs?.starttls);
        const r = opts.replies?.starttls?.(arg, view('starttls')) ?? '220 2.0.0 Ready to start TLS';
        transcript.push(`S: ${r}`);
        if (opts.injectBeforeTls) transcript.push(`S: (injected) ${JSON.stringify(opts.injectBeforeTls)}`);
        socket.write(`${r}\r\n${opts.injectBeforeTls ?? ''}`);
        if (!r.startsWith('220')) continue;
        reader.detach();
        if (opts.breakTls) {
          raw.once('data', () => raw.resetAndDestroy());
          transcript.push('S: (TLS handshake broken on purpose)');
          break;
        }
        const ts = new TLSSocket(raw, { isServer: true, secureContext });
        const ok = await new Promise<boolean>((res) => {
          ts.once('secure', () => res(true));
          ts.once('error', () => res(false));
          ts.once('close', () => res(false));
        });
        if (!ok) {
          transcript.push('S: (TLS handshake failed)');
          raw.destroy();
          break;
        }
        socket = ts;
        tls = true;
        tlsProtocol = ts.getProtocol() ?? undefined;
        sni = typeof (ts as TLSSocket & { servername?: string | false }).servername === 'string' ? (ts as TLSSocket & { servername: string }).servername : undefined;
        tlsResumed = ts.isSessionReused();
        transcript.push(`S: (TLS established ${tlsProtocol})`);
        reader.attach(ts);
        env = { mailParams: '', rcptTo: [], rcptParams: [] };
        helo = '';
      } else if (verb === 'AUTH') {
        authUser = await doAuth(arg, reader, send, transcript, opts, view, tls) ?? authUser;
      } else if (verb === 'MAIL') {
        const { path, params } = pathOf(arg.replace(/^FROM:/i, ''));
        if (opts.requireStarttls && !tls) {
          send('530 5.7.0 Must issue a STARTTLS command first');
          continue;
        }
        const r = await reply(opts.delayMs?.mail, opts.replies?.mail, 'mail', path, '250 2.1.0 Ok');
        if (r.startsWith('2')) env = { mailFrom: path, mailParams: params, rcptTo: [], rcptParams: [] };
      } else if (verb === 'RCPT') {
        const { path, params } = pathOf(arg.replace(/^TO:/i, ''));
        if (env.mailFrom === undefined) {
          send('503 5.5.1 Error: need MAIL command');
          continue;
        }
        const r = await reply(opts.delayMs?.rcpt, opts.replies?.rcpt, 'rcpt', path, '250 2.1.5 Ok');
        if (r.startsWith('2')) {
          env.rcptTo.push(path);
          env.rcptParams.push(params);
        }
      } else if (verb === 'DATA') {
        if (env.mailFrom === undefined || env.rcptTo.length === 0) {
          await reply(opts.delayMs?.data, undefined, 'data', arg, env.mailFrom === undefined ? '503 5.5.1 Error: need RCPT command' : '554 5.5.1 Error: no valid recipients');
          continue;
        }
        const r = await reply(opts.delayMs?.data, opts.replies?.data, 'data', arg, '354 End data with <CR><LF>.<CR><LF>');
        if (!r.startsWith('354')) continue;
        if (opts.stallData) {
          socket.pause();
          transcript.push('S: (stalled during DATA)');
          await new Promise<void>((r) => socket.once('close', () => r()));
          break;
        }
        const drop = opts.dropDuringData === true || opts.dropDuringData === 'body';
        const data = await reader.data(drop ? () => true : undefined);
        if (data === undefined || opts.dropDuringData === 'dot') {
          transcript.push('S: (connection dropped during DATA)');
          socket.destroy();
          break;
        }
        transcript.push(`C: (${data.length} bytes of data)`);
        const r2 = await reply(opts.delayMs?.dataEnd, opts.replies?.dataEnd, 'dataEnd', data.toString('utf8'), `250 2.0.0 Ok: queued as M${messages.length + 1}`);
        if (r2.startsWith('2')) {
          const m: ReceivedMessage = {
            mailFrom: env.mailFrom, mailParams: env.mailParams, rcptTo: env.rcptTo, rcptParams: env.rcptParams,
            data, tls, helo, connection,
            ...(tlsProtocol ? { tlsProtocol } : {}),
            ...(sni ? { sni } : {}),
            ...(tls ? { tlsResumed } : {}),
            ...(authUser ? { authUser } : {}),
          };
          messages.push(m);
          const w = msgWaiters;
          msgWaiters = [];
          for (const f of w) f();
        }
        env = { mailParams: '', rcptTo: [], rcptParams: [] };
      } else if (verb === 'RSET') {
        env = { mailParams: '', rcptTo: [], rcptParams: [] };
        await reply(opts.delayMs?.rset, opts.replies?.rset, 'rset', arg, '250 2.0.0 Ok');
      } else if (verb === 'NOOP') {
        send('250 2.0.0 Ok');
      } else if (verb === 'QUIT') {
        await sleep(opts.delayMs?.quit);
        send('221 2.0.0 Bye');
        socket.end();
        break;
      } else {
        send('502 5.5.2 Error: command not recognized');
      }
    }
  };

  const server: Server = createServer((sock) => {
    connections++;
    clientAddresses.push(sock.remoteAddress ?? '');
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.setNoDelay(true);
    serve(sock, connections).catch(() => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    host,
    port,
    messages,
    transcript,
    clientAddresses,
    get connections() {
      return connections;
    },
    waitForMessages(n: number, timeoutMs = 5000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`receiver ${host}: ${messages.length} of ${n} messages after ${timeoutMs} ms`)), timeoutMs);
        const check = (): void => {
          if (messages.length >= n) {
            clearTimeout(timer);
            resolve();
          } else msgWaiters.push(check);
        };
        check();
      });
    },
    dropConnections: async () => {
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function doAuth(
  arg: string, reader: Reader, send: (t: string) => void, transcript: string[], opts: ReceiverOptions,
  view: (cmd: string) => SessionView, tls: boolean,
): Promise<string | undefined> {
  const override = opts.replies?.auth?.(arg, view('auth'));
  if (override !== undefined) {
    send(override);
    return undefined;
  }
  if (!opts.auth || (opts.auth.onlyOverTls && !tls)) {
    send('503 5.5.1 Error: authentication not enabled');
    return undefined;
  }
  const [mech, initial] = arg.split(' ');
  let user: string | undefined;
  let pass: string | undefined;
  const next = async (prompt: string): Promise<string | undefined> => {
    send(`334 ${prompt}`);
    const l = await reader.line();
    if (l !== undefined) transcript.push(`C: ${l}`);
    return l;
  };
  if (mech?.toUpperCase() === 'PLAIN') {
    const resp = initial ?? (await next(''));
    const p = resp === undefined ? undefined : decodePlain(resp);
    user = p?.user;
    pass = p?.pass;
  } else if (mech?.toUpperCase() === 'LOGIN') {
    const u = initial ?? (await next(Buffer.from('Username:').toString('base64')));
    const pw = u === undefined ? undefined : await next(Buffer.from('Password:').toString('base64'));
    user = u === undefined ? undefined : Buffer.from(u, 'base64').toString('utf8');
    pass = pw === undefined ? undefined : Buffer.from(pw, 'base64').toString('utf8');
  } else {
    send('535 5.7.8 Error: authentication failed: Invalid authentication mechanism');
    return undefined;
  }
  if (user !== undefined && opts.auth.users[user] !== undefined && opts.auth.users[user] === pass) {
    send('235 2.7.0 Authentication successful');
    return user;
  }
  send('535 5.7.8 Error: authentication failed: authentication failure');
  return undefined;
}

/**
 * Start one receiver per options entry on distinct loopback addresses
 * (default 127.0.0.2, .3, ...) sharing one free port. Retries with a new port
 * when another process holds it on one of the addresses.
 */
export async function startReceivers(list: readonly ReceiverOptions[]): Promise<Receiver[]> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = await startReceiver({ ...list[0], host: list[0]?.host ?? '127.0.0.2' });
    const started: Receiver[] = [first];
    try {
      for (let i = 1; i < list.length; i++) {
        started.push(await startReceiver({ ...list[i], host: list[i]?.host ?? `127.0.0.${i + 2}`, port: first.port }));
      }
      return started;
    } catch (err) {
      await Promise.all(started.map((r) => r.close()));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw new Error('startReceivers: no free port shared by all addresses');
}

/** A free port on all of `hosts` with nothing listening (for "connection refused" targets). */
export async function closedPort(hosts: readonly string[] = ['127.0.0.2']): Promise<number> {
  const r = await startReceiver({ host: hosts[0]! });
  const port = r.port;
  await r.close();
  return port;
}

// ------------------------------------------------------------ delivery lab

export interface LabMessage {
  readonly sender?: string;
  readonly recipients: ReadonlyArray<string | { address: string; origAddress?: string; orcpt?: string; notify?: DsnNotify[] }>;
  readonly content?: string | Buffer;
  readonly nexthops: readonly string[];
  readonly fallbackRelays?: readonly string[];
  readonly envid?: string;
  readonly ret?: 'FULL' | 'HDRS';
  readonly smtputf8?: boolean;
  readonly eightBitMime?: boolean;
  readonly requireTls?: boolean;
  readonly tlsRequiredNo?: boolean;
  readonly transport?: string;
  /** ms between arrival and entering the active queue (plaintext fallback after STARTTLS failure needs ≥ minimal_backoff_time). */
  readonly waited?: number;
  readonly queueId?: string;
}

let labSeq = 0;

/** Write a queue file under `dir` and return the DeliveryRequest for it (what the queue manager would send). */
export function labRequest(dir: string, m: LabMessage): DeliveryRequest {
  const content = m.content ?? 'Subject: test\r\nFrom: <a@example.org>\r\n\r\nhello\r\n';
  const buf = typeof content === 'string' ? Buffer.from(content) : content;
  const recipients = m.recipients.map((r) => (typeof r === 'string' ? { address: r } : r));
  const now = Date.now();
  const arrival = now - (m.waited ?? 0);
  const file = encodeQueueFile({
    arrivalTime: arrival, sender: m.sender ?? 'sender@example.org', recipients,
    ...(m.envid ? { envid: m.envid } : {}), ...(m.ret ? { ret: m.ret } : {}),
    smtputf8: m.smtputf8 ?? false, eightBitMime: m.eightBitMime ?? false,
    requireTls: m.requireTls ?? false, tlsRequiredNo: m.tlsRequiredNo ?? false,
  }, buf);
  mkdirSync(join(dir, 'active'), { recursive: true });
  const queueId = m.queueId ?? `4A${String(++labSeq).padStart(8, '0')}`;
  const path = join(dir, 'active', queueId);
  writeFileSync(path, file);
  let size = 0;
  for (let i = 0; i < buf.length; i++) if (!(buf[i] === 0x0d && buf[i + 1] === 0x0a)) size++;
  return {
    queueId, queueFile: path, sender: m.sender ?? 'sender@example.org',
    recipients: recipients.map((r, index) => ({
      index, address: r.address, origAddress: r.origAddress ?? r.address,
      ...(r.orcpt ? { orcpt: r.orcpt } : {}), ...(r.notify ? { notify: r.notify } : {}),
    })),
    ...(m.envid ? { envid: m.envid } : {}), ...(m.ret ? { ret: m.ret } : {}),
    smtputf8: m.smtputf8 ?? false, eightBitMime: m.eightBitMime ?? false,
    requireTls: m.requireTls ?? false, tlsRequiredNo: m.tlsRequiredNo ?? false,
    messageSize: size, arrivalTime: arrival, activeTime: now,
    transport: m.transport ?? 'smtp', nexthops: m.nexthops, fallbackRelays: m.fallbackRelays ?? [],
  };
}

export interface DeliveryLab {
  readonly dir: string;
  readonly agent: DeliveryAgent;
  readonly log: { readonly lines: string[] };
  readonly zone: Zone;
  deliver(m: LabMessage): Promise<DeliveryResult>;
  close(): Promise<void>;
}

/**
 * A loopback delivery lab: a DNS server with `zone`, a config dir whose main.cf
 * holds `mainCf` plus the lab settings (sealpost_dns_resolvers, smtp_tcp_port,
 * inet_protocols = ipv4), and an SMTP agent with the real TLS engine.
 */
export async function deliveryLab(zone: Zone, port: number, mainCf: Readonly<Record<string, string>> = {}): Promise<DeliveryLab> {
  const t = tempDir('sealpost-delivery-');
  const dns = await startDnsServer(zone);
  const params: Record<string, string> = {
    myhostname: 'client.test',
    inet_protocols: 'ipv4',
    smtp_tls_security_level: 'none',
    ...mainCf,
    sealpost_dns_resolvers: `127.0.0.1:${dns.port}`,
    smtp_tcp_port: String(port),
  };
  writeFileSync(join(t.dir, 'main.cf'), Object.entries(params).map(([k, v]) => `${k} = ${v}\n`).join(''));
  const config = loadConfig({ configDir: t.dir });
  const log = memoryMailLog();
  const tables = new TableSet({ baseDir: t.dir });
  const tls = createTlsEngine({ config, tables, log });
  const agent = createSmtpAgent({ config, resolver: createResolver(config), tls, tables, log, service: 'smtp' });
  // The lab plays the queue manager's part for the TLS lines: they are derived from the
  // session records by the mail log subscriber (the status= lines are not written here) ...
  const events = new EventBus((err) => { throw err; });
  events.subscribe(mailLogSubscriber({ log, resolutionLimit: () => 2 }));
  const tlsLog = tlsLogLevel(config);
  const softBounce = config.getBool('soft_bounce');
  return {
    dir: t.dir, agent, log, zone: dns.zone,
    deliver: async (m) => {
      const request = labRequest(t.dir, m);
      const raw = await agent.deliver(request);
      // ... and for soft_bounce, which the queue manager applies to every agent's outcomes (trouble.ts).
      const result = { ...raw, outcomes: raw.outcomes.map((o) => applySoftBounce(o, softBounce)) };
      for (const record of result.sessions ?? []) events.publish({ kind: 'tls-session', queueId: request.queueId, record, program: 'smtp', tlsLogLevel: tlsLog });
      return result;
    },
    close: async () => {
      await agent.close();
      await tables.close();
      await dns.close();
      t.cleanup();
    },
  };
}

/** The outcome for recipient `index` (throws when missing). */
export function outcomeOf(r: DeliveryResult, index = 0): RecipientOutcome {
  const o = r.outcomes.find((x) => x.index === index);
  if (!o) throw new Error(`no outcome for recipient ${index}: ${JSON.stringify(r.outcomes)}`);
  return o;
}
