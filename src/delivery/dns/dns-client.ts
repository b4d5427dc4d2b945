/**
 * dns-client.ts — a small DNS client (what RFC 1034 calls a resolver): one question to a configured
 * recursive (or lab) server over UDP, TCP when the answer is truncated.
 *
 * Contract: `DnsClient.query(name, type)` sends RD=1 with an EDNS0 OPT record
 * carrying the DO bit (so a validating resolver reports the AD bit), waits at
 * most the per-query deadline (ms and/or AbortSignal) and tries the servers in
 * order, round after round, until the deadline. It returns
 * `{ rcode, answers, authenticatedData }` for NOERROR (incl. NODATA) and
 * NXDOMAIN — those are answers, not errors. It throws `DnsTimeoutError` when
 * the deadline passes without a usable reply, `DnsServerError` when every
 * reply was SERVFAIL/REFUSED/other failure rcodes.
 * Replies are accepted only from the queried server address/port, with the
 * random query ID and the same question (spoofed or stale datagrams are
 * ignored and we keep waiting). The reply is read by our own bounds-checked
 * parser (wire.ts): `records` holds the raw answer records with their rdata
 * (what resolver.ts decodes, and TLSA rdata for tlsa.ts); `answers` is
 * dns-packet's decoding of the same reply, kept for callers that want it —
 * empty when dns-packet cannot decode a record (a truncated TLSA rdata, say)
 * that our parser reads fine.
 *
 * Not here: caching, CNAME chasing, DNSSEC validation (we trust the AD bit of
 * the configured resolver, as Postfix does with smtp_dns_support_level=dnssec),
 * mapping answers to MX/address results (resolver.ts).
 */
import { createSocket } from 'node:dgram';
import { connect, isIPv6 } from 'node:net';
import { randomInt } from 'node:crypto';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, RecordType } from 'dns-packet';
import { parseReply, sameName, WireError } from './wire.ts';
import type { RawRecord, WireReply } from './wire.ts';

/** One configured DNS server. */
export interface DnsServer {
  readonly host: string;
  readonly port: number;
}

export interface DnsQueryOptions {
  /** Overall deadline for this query across all servers and retries. */
  readonly timeoutMs?: number;
  /** Aborting ends the query early with a DnsTimeoutError. */
  readonly signal?: AbortSignal;
}

export interface DnsResponse {
  /** 'NOERROR' or 'NXDOMAIN'. */
  readonly rcode: 'NOERROR' | 'NXDOMAIN';
  readonly answers: Answer[];
  /** The answer section as raw records (wire.ts), CNAMEs included, in reply order. */
  readonly records: readonly RawRecord[];
  /** The whole reply (names inside rdata may be compressed against it). */
  readonly message: Buffer;
  /** The AD bit of the reply (RFC 4035 §3.2.3): only meaningful from a validating resolver. */
  readonly authenticatedData: boolean;
}

/** Base class of every DNS lookup failure (a temporary condition for delivery). */
export class DnsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DnsError';
  }
}

/** No usable reply before the deadline (or the caller aborted). */
export class DnsTimeoutError extends DnsError {
  constructor(message: string) {
    super(message);
    this.name = 'DnsTimeoutError';
  }
}

/** The server replied with a failure rcode (SERVFAIL, REFUSED, FORMERR, ...). */
export class DnsServerError extends DnsError {
  readonly rcode: string;
  constructor(message: string, rcode: string) {
    super(message);
    this.name = 'DnsServerError';
    this.rcode = rcode;
  }
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'] as const;
export function rcodeName(flags: number): string {
  const n = flags & 0xf;
  return RCODES[n] ?? `RCODE${n}`;
}

/** Build the query bytes (pure). RFC 6891: OPT with DO bit; 1232-byte UDP payload (DNS flag day 2020). */
export function encodeQuery(id: number, name: string, type: RecordType): Buffer {
  const packet: Packet = {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name: stripDot(name), class: 'IN' }],
    additionals: [{
      type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0,
      flags: dnsPacket.DNSSEC_OK, flag_do: true, options: [],
    }],
  };
  return dnsPacket.encode(packet);
}

/**
 * Does `reply` answer our query? RFC 5452 §4.3: accept only a response with the
 * same ID and question; anything else is ignored, not an error.
 */
export function matchesQuery(reply: DecodedPacket, id: number, name: string, type: RecordType): boolean {
  if (reply.type !== 'response' || reply.id !== id) return false;
  const q = reply.questions?.[0];
  if (!q || reply.questions?.length !== 1) return false;
  return q.type === type && stripDot(q.name).toLowerCase() === stripDot(name).toLowerCase();
}

export function stripDot(name: string): string {
  return name.length > 1 && name.endsWith('.') ? name.slice(0, -1) : name;
}

type Attempt =
  | { kind: 'reply'; reply: WireReply; message: Buffer }
  | { kind: 'timeout' };

/** RFC 1035 TYPE numbers of the questions we ask. */
const TYPE_NUMBER: Partial<Record<RecordType, number>> = { A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 };

/** The wire-level twin of matchesQuery(): same ID, QR set, exactly our question. */
export function replyMatches(reply: WireReply, id: number, name: string, type: RecordType): boolean {
  if (!reply.header.response || reply.header.id !== id || !reply.question) return false;
  const want = TYPE_NUMBER[type];
  return want !== undefined && reply.question.type === want && sameName(reply.question.name, stripDot(name));
}

export class DnsClient {
  readonly servers: readonly DnsServer[];
  readonly defaultTimeoutMs: number;

  constructor(servers: readonly DnsServer[], defaultTimeoutMs = 5000) {
    if (servers.length === 0) throw new Error('DnsClient: no servers');
    this.servers = servers;
    this.defaultTimeoutMs = defaultTimeoutMs;
  }

  async query(name: string, type: RecordType, opts: DnsQueryOptions = {}): Promise<DnsResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? this.defaultTimeoutMs);
    // Two rounds over the servers; each try gets an equal share of what is left.
    const tries = this.servers.length * 2;
    let lastServerError: DnsServerError | undefined;
    for (let i = 0; i < tries; i++) {
      if (opts.signal?.aborted) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      const server = this.servers[i % this.servers.length]!;
      const slice = Math.max(Math.floor(remaining / (tries - i)), Math.min(remaining, 50));
      const result = await this.attempt(server, name, type, slice, opts.signal);
      if (result.kind === 'timeout') continue;
      const rcode = rcodeName(result.reply.header.flags);
      if (rcode === 'NOERROR' || rcode === 'NXDOMAIN') {
        return {
          rcode,
          answers: tryDecode(result.message)?.answers ?? [],
          records: result.reply.answers,
          message: result.message,
          authenticatedData: result.reply.header.authenticatedData,
        };
      }
      lastServerError = new DnsServerError(
        `${server.host}:${server.port} answered ${rcode} for name=${stripDot(name)} type=${type}`,
        rcode,
      );
    }
    if (lastServerError) throw lastServerError;
    throw new DnsTimeoutError(
      opts.signal?.aborted
        ? `DNS query aborted for name=${stripDot(name)} type=${type}`
        : `no reply from DNS server(s) for name=${stripDot(name)} type=${type} within ${opts.timeoutMs ?? this.defaultTimeoutMs} ms`,
    );
  }

  private async attempt(server: DnsServer, name: string, type: RecordType, ms: number, signal?: AbortSignal): Promise<Attempt> {
    const id = randomInt(0, 0x10000);
    const query = encodeQuery(id, name, type);
    const started = Date.now();
    const udp = await udpExchange(server, query, ms, signal, (p) => replyMatches(p, id, name, type));
    if (udp.kind === 'timeout' || !udp.reply.header.truncated) return udp;
    // RFC 7766 §5: a truncated UDP answer is retried over TCP.
    const left = ms - (Date.now() - started);
    if (left <= 0) return { kind: 'timeout' };
    return tcpExchange(server, query, left, signal, (p) => replyMatches(p, id, name, type));
  }
}

/**
 * One exchange's settlement: resolves once, with a timeout after `ms` or on
 * abort, and runs `release` (close the socket) exactly once.
 */
function settleOnce(
  resolve: (a: Attempt) => void, ms: number, signal: AbortSignal | undefined, release: () => void,
): (a: Attempt) => void {
  let done = false;
  const finish = (a: Attempt): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    release();
    resolve(a);
  };
  const onAbort = (): void => finish({ kind: 'timeout' });
  const timer = setTimeout(onAbort, ms);
  signal?.addEventListener('abort', onAbort);
  return finish;
}

function udpExchange(
  server: DnsServer, query: Buffer, ms: number, signal: AbortSignal | undefined,
  accept: (p: WireReply) => boolean,
): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4');
    const finish = settleOnce(resolve, ms, signal, () => socket.close());
    socket.on('error', () => finish({ kind: 'timeout' }));
    socket.on('message', (msg, rinfo) => {
      if (rinfo.port !== server.port || normalizeAddr(rinfo.address) !== normalizeAddr(server.host)) return;
      const reply = tryParse(msg);
      if (reply && accept(reply)) finish({ kind: 'reply', reply, message: msg });
    });
    socket.send(query, server.port, server.host, (err) => {
      if (err) finish({ kind: 'timeout' });
    });
  });
}

function tcpExchange(
  server: DnsServer, query: Buffer, ms: number, signal: AbortSignal | undefined,
  accept: (p: WireReply) => boolean,
): Promise<Attempt> {
  return new Promise((resolve) => {
    const socket = connect({ host: server.host, port: server.port });
    let buf = Buffer.alloc(0);
    const finish = settleOnce(resolve, ms, signal, () => socket.destroy());
    socket.on('error', () => finish({ kind: 'timeout' }));
    socket.on('close', () => finish({ kind: 'timeout' }));
    socket.on('connect', () => {
      // RFC 1035 §4.2.2: TCP messages carry a two-byte length prefix.
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      socket.write(Buffer.concat([len, query]));
    });
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const reply = tryParse(msg);
        if (reply && accept(reply)) return finish({ kind: 'reply', reply, message: Buffer.from(msg) });
      }
    });
  });
}

function tryParse(msg: Buffer): WireReply | undefined {
  try {
    return parseReply(msg);
  } catch (err) {
    if (err instanceof WireError) return undefined; // garbage datagram: ignore, keep waiting
    throw err;
  }
}

function tryDecode(msg: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
}

function normalizeAddr(a: string): string {
  return a.toLowerCase().replace(/^::ffff:/, '');
}
