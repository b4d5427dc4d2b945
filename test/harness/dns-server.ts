/**
 * dns-server.ts — a lab DNS server for tests: answers from a zone given as
 * data, on 127.0.0.1 (UDP and TCP on the same ephemeral port). It plays the
 * part of a local validating resolver: it signs nothing, but sets the AD bit
 * for the names the test calls secure — the trust model of Postfix and of
 * sealpost's DANE (RFC 7672 §1.3: the client trusts its resolver's AD bit).
 *
 * Contract: `startDnsServer(zone, options)` serves every name in `zone`
 * (case-insensitive, no trailing dot). A name not in the zone → NXDOMAIN; a
 * name without records of the asked type → NOERROR with no answers (NODATA).
 * Records: MX, A, AAAA, TXT (a string is one character-string, a string[] one
 * record of several), TLSA (usage, selector, matching type, hex data),
 * TLSA_RAW (hex rdata as is, for malformed records), CNAME (an alias: the
 * answer holds the CNAME and then the target's records, followed within the
 * zone as a recursive resolver would; RFC 6604: the rcode is the last name's).
 * Per-name switches:
 *   ad        the name is DNSSEC-secure: the AD bit is set when every name on
 *             the CNAME chain is secure and the query asked with DO (or AD)
 *             (RFC 6840 §5.7) — a query without DO never gets AD
 *   adLimit   AD for the first N answers about this name only, then no more
 *             (a resolver that "drops the AD bit halfway")
 *   servfail  answer SERVFAIL (what a validating resolver says for bogus data)
 *   drop      never answer (timeouts)
 *   truncate  UDP answers carry TC=1 and no records (forces TCP)
 *   spoof     before the real UDP answer, send datagrams with a wrong ID and a
 *             wrong question (must be ignored by the client)
 * Options: `secureZones` — NXDOMAIN for a name under one of these gets AD
 * (authenticated denial). `lab.stripAd = true` clears AD on every answer from
 * then on (the whole resolver stops validating).
 * The zone object is live: tests may change it between queries. `queries`
 * records every question received (with transport and DO) for assertions.
 *
 * Not here: DNSSEC signatures, wildcards, delegation.
 */
import { createSocket } from 'node:dgram';
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';

export interface ZoneEntry {
  MX?: Array<[number, string]>;
  A?: string[];
  AAAA?: string[];
  TXT?: Array<string | string[]>;
  TLSA?: Array<[number, number, number, string]>;
  /** TLSA rdata in hex, sent as is (malformed records). */
  TLSA_RAW?: string[];
  CNAME?: string;
  /** The TTL of this name's records (default 300 s). */
  ttl?: number;
  ad?: boolean;
  adLimit?: number;
  servfail?: boolean;
  drop?: boolean;
  truncate?: boolean;
  spoof?: boolean;
}

export type Zone = Record<string, ZoneEntry>;

export interface DnsLabOptions {
  /** NXDOMAIN answers for names under these get the AD bit. */
  secureZones?: string[];
}

export interface DnsLab {
  readonly host: string;
  readonly port: number;
  readonly zone: Zone;
  readonly queries: Array<{ name: string; type: string; transport: 'udp' | 'tcp'; dnssecOk: boolean }>;
  readonly options: DnsLabOptions;
  /** Set to true to clear the AD bit on every answer from now on. */
  stripAd: boolean;
  close(): Promise<void>;
}

const SERVFAIL = 2;
const NXDOMAIN = 3;

function findEntry(zone: Zone, name: string): ZoneEntry | undefined {
  const want = name.toLowerCase().replace(/\.$/, '');
  for (const [k, v] of Object.entries(zone)) if (k.toLowerCase() === want) return v;
  return undefined;
}

function recordsFor(name: string, type: string, e: ZoneEntry): Answer[] {
  const base = { name, ttl: e.ttl ?? 300, class: 'IN' as const };
  switch (type) {
    case 'MX':
      return (e.MX ?? []).map(([preference, exchange]) => ({ ...base, type: 'MX' as const, data: { preference, exchange } }));
    case 'A':
      return (e.A ?? []).map((data) => ({ ...base, type: 'A' as const, data }));
    case 'AAAA':
      return (e.AAAA ?? []).map((data) => ({ ...base, type: 'AAAA' as const, data }));
    case 'TXT':
      return (e.TXT ?? []).map((t) => ({ ...base, type: 'TXT' as const, data: Array.isArray(t) ? t.map((x) => Buffer.from(x, 'latin1')) : Buffer.from(t, 'latin1') }));
    case 'TLSA':
      return [
        ...(e.TLSA ?? []).map(([usage, selector, matchingType, hex]) => ({
          ...base, type: 'TLSA' as const, data: { usage, selector, matchingType, certificate: Buffer.from(hex, 'hex') },
        })),
        // dns-packet writes an UNKNOWN_<n> record's data verbatim: malformed TLSA rdata on the wire.
        ...(e.TLSA_RAW ?? []).map((hex) => ({ ...base, type: 'UNKNOWN_52', data: Buffer.from(hex, 'hex') }) as unknown as Answer),
      ];
    case 'CNAME':
      return e.CNAME ? [{ ...base, type: 'CNAME' as const, data: e.CNAME }] : [];
    default:
      return [];
  }
}

/** RFC 6840 §5.7: a validating resolver sets AD only for a query with DO or AD. */
function askedForAd(query: DecodedPacket): boolean {
  if (((query.flags ?? 0) & dnsPacket.AUTHENTIC_DATA) !== 0) return true;
  return (query.additionals ?? []).some((a) => a.type === 'OPT' && ((a.flags ?? 0) & dnsPacket.DNSSEC_OK) !== 0);
}

interface Resolution {
  readonly answers: Answer[];
  readonly rcode: number;
  readonly entries: ZoneEntry[];
  readonly drop: boolean;
  readonly truncate: boolean;
  readonly spoof: boolean;
}

/** Answer `name`/`type` from the zone, following CNAMEs within it (at most 8). */
function resolveInZone(zone: Zone, name: string, type: string): Resolution {
  const answers: Answer[] = [];
  const entries: ZoneEntry[] = [];
  let current = name;
  for (let hop = 0; hop < 8; hop++) {
    const entry = findEntry(zone, current);
    if (!entry) return { answers, rcode: NXDOMAIN, entries, drop: false, truncate: false, spoof: false };
    entries.push(entry);
    if (entry.drop) return { answers, rcode: 0, entries, drop: true, truncate: false, spoof: false };
    if (entry.servfail) return { answers: [], rcode: SERVFAIL, entries, drop: false, truncate: false, spoof: false };
    if (entry.CNAME && type !== 'CNAME') {
      answers.push(...recordsFor(current, 'CNAME', entry));
      current = entry.CNAME;
      continue;
    }
    answers.push(...recordsFor(current, type, entry));
    const first = entries[0]!;
    return { answers, rcode: 0, entries, drop: false, truncate: !!first.truncate, spoof: !!first.spoof };
  }
  return { answers: [], rcode: SERVFAIL, entries, drop: false, truncate: false, spoof: false };
}

/** Build the reply for one query; undefined = drop it. */
function respond(lab: DnsLab, adCount: Map<ZoneEntry, number>, query: DecodedPacket, transport: 'udp' | 'tcp'): Buffer[] | undefined {
  const q = query.questions?.[0];
  if (!q) return undefined;
  const r = resolveInZone(lab.zone, q.name, q.type);
  if (r.drop) return undefined;
  let flags = dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | r.rcode;
  let answers = r.answers;
  if (r.truncate && transport === 'udp' && r.rcode === 0) {
    flags |= dnsPacket.TRUNCATED_RESPONSE;
    answers = [];
  }
  if (r.rcode !== SERVFAIL && !lab.stripAd && askedForAd(query) && isSecure(lab, adCount, r, q.name)) flags |= dnsPacket.AUTHENTIC_DATA;
  const out: Buffer[] = [];
  if (r.spoof && transport === 'udp') {
    const fake = [{ name: q.name, type: 'A' as const, ttl: 300, class: 'IN' as const, data: '6.6.6.6' }];
    out.push(dnsPacket.encode({ type: 'response', id: ((query.id ?? 0) + 1) & 0xffff, flags, questions: [q], answers: fake }));
    out.push(dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags, questions: [{ ...q, name: `evil.${q.name}` }], answers: fake }));
  }
  out.push(dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags, questions: [q], answers }));
  return out;
}

/** Every name on the chain secure (and within its adLimit); NXDOMAIN under a secure zone. */
function isSecure(lab: DnsLab, adCount: Map<ZoneEntry, number>, r: Resolution, qname: string): boolean {
  if (r.entries.length === 0) {
    const n = qname.toLowerCase().replace(/\.$/, '');
    return (lab.options.secureZones ?? []).some((z) => n === z.toLowerCase() || n.endsWith(`.${z.toLowerCase()}`));
  }
  if (!r.entries.every((e) => e.ad)) return false;
  const first = r.entries[0]!;
  if (first.adLimit === undefined) return true;
  const used = adCount.get(first) ?? 0;
  adCount.set(first, used + 1);
  return used < first.adLimit;
}

function decode(msg: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
}

export async function startDnsServer(zone: Zone, options: DnsLabOptions = {}): Promise<DnsLab> {
  const queries: DnsLab['queries'] = [];
  const adCount = new Map<ZoneEntry, number>();
  const note = (p: DecodedPacket, transport: 'udp' | 'tcp'): void => {
    const q = p.questions?.[0];
    if (q) queries.push({ name: q.name, type: q.type, transport, dnssecOk: askedForAd(p) });
  };
  // The lab object is built first so respond() sees live switches (stripAd) and the live zone.
  const lab: DnsLab = {
    host: '127.0.0.1', port: 0, zone, queries, options, stripAd: false,
    close: async () => undefined,
  };
  const tcpSockets = new Set<Socket>();
  const tcp: Server = createServer((sock) => {
    tcpSockets.add(sock);
    sock.on('close', () => tcpSockets.delete(sock));
    sock.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        const p = decode(msg);
        if (!p) continue;
        note(p, 'tcp');
        for (const r of respond(lab, adCount, p, 'tcp') ?? []) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          sock.write(Buffer.concat([len, r]));
        }
      }
    });
  });
  const newUdp = (): UdpSocket => {
    const u = createSocket('udp4');
    u.on('message', (msg, rinfo) => {
      const p = decode(msg);
      if (!p) return;
      note(p, 'udp');
      for (const r of respond(lab, adCount, p, 'udp') ?? []) u.send(r, rinfo.port, rinfo.address);
    });
    return u;
  };
  let udp = newUdp();
  // TCP and UDP on one port number: the kernel picks a free TCP port, which another
  // process may hold for UDP. Then both are let go and another port is tried; a
  // listener left open on failure would keep the test process alive for ever.
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    await new Promise<void>((res, rej) => {
      tcp.once('error', rej);
      tcp.listen(0, '127.0.0.1', () => {
        tcp.off('error', rej);
        res();
      });
    });
    port = (tcp.address() as AddressInfo).port;
    const bound = await new Promise<Error | undefined>((res) => {
      const onError = (err: Error): void => res(err);
      udp.once('error', onError);
      udp.bind(port, '127.0.0.1', () => {
        udp.off('error', onError);
        res(undefined);
      });
    });
    if (!bound) break;
    await new Promise<void>((res) => tcp.close(() => res()));
    udp.close();
    if ((bound as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 20) throw bound;
    udp = newUdp();
  }
  (lab as { port: number }).port = port;
  lab.close = async () => {
    for (const s of tcpSockets) s.destroy();
    await Promise.all([
      new Promise<void>((res) => tcp.close(() => res())),
      new Promise<void>((res) => udp.close(() => res())),
    ]);
  };
  return lab;
}
