/**
 * dns-server.ts — a lab DNS server for tests: answers from a zone given as
 * data, on 127.0.0.1 (UDP and TCP on the same ephemeral port).
 *
 * Contract: `startDnsServer(zone)` serves every name in `zone` (case-insensitive,
 * no trailing dot). A name not in the zone → NXDOMAIN; a name without records
 * of the asked type → NOERROR with no answers (NODATA). Per-name switches:
 *   ad        set the AD bit (pretend the answer was DNSSEC-validated)
 *   servfail  answer SERVFAIL
 *   drop      never answer (timeouts)
 *   truncate  UDP answers carry TC=1 and no records (forces TCP)
 *   spoof     before the real UDP answer, send datagrams with a wrong ID and a
 *             wrong question (must be ignored by the client)
 * The zone object is live: tests may change it between queries. `queries`
 * records every question received (with transport) for assertions.
 *
 * Not here: recursion, CNAME chasing, DNSSEC signatures, wildcards.
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
  TXT?: string[];
  TLSA?: Array<[number, number, number, string]>;
  ad?: boolean;
  servfail?: boolean;
  drop?: boolean;
  truncate?: boolean;
  spoof?: boolean;
}

export type Zone = Record<string, ZoneEntry>;

export interface DnsLab {
  readonly host: string;
  readonly port: number;
  readonly zone: Zone;
  readonly queries: Array<{ name: string; type: string; transport: 'udp' | 'tcp' }>;
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
  const base = { name, ttl: 300, class: 'IN' as const };
  switch (type) {
    case 'MX':
      return (e.MX ?? []).map(([preference, exchange]) => ({ ...base, type: 'MX' as const, data: { preference, exchange } }));
    case 'A':
      return (e.A ?? []).map((data) => ({ ...base, type: 'A' as const, data }));
    case 'AAAA':
      return (e.AAAA ?? []).map((data) => ({ ...base, type: 'AAAA' as const, data }));
    case 'TXT':
      return (e.TXT ?? []).map((data) => ({ ...base, type: 'TXT' as const, data }));
    case 'TLSA':
      return (e.TLSA ?? []).map(([usage, selector, matchingType, hex]) => ({
        ...base, type: 'TLSA' as const, data: { usage, selector, matchingType, certificate: Buffer.from(hex, 'hex') },
      }));
    default:
      return [];
  }
}

/** Build the reply for one query; undefined = drop it. */
function respond(zone: Zone, query: DecodedPacket, transport: 'udp' | 'tcp'): Buffer[] | undefined {
  const q = query.questions?.[0];
  if (!q) return undefined;
  const entry = findEntry(zone, q.name);
  if (entry?.drop) return undefined;
  let flags = dnsPacket.AUTHORITATIVE_ANSWER | (query.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
  let answers: Answer[] = [];
  if (!entry) flags |= NXDOMAIN;
  else if (entry.servfail) flags |= SERVFAIL;
  else if (entry.truncate && transport === 'udp') flags |= dnsPacket.TRUNCATED_RESPONSE;
  else answers = recordsFor(q.name, q.type, entry);
  if (entry?.ad && !entry.servfail) flags |= dnsPacket.AUTHENTIC_DATA;
  const out: Buffer[] = [];
  if (entry?.spoof && transport === 'udp') {
    const fake = [{ name: q.name, type: 'A' as const, ttl: 300, class: 'IN' as const, data: '6.6.6.6' }];
    out.push(dnsPacket.encode({ type: 'response', id: ((query.id ?? 0) + 1) & 0xffff, flags, questions: [q], answers: fake }));
    out.push(dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags, questions: [{ ...q, name: `evil.${q.name}` }], answers: fake }));
  }
  out.push(dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags, questions: [q], answers }));
  return out;
}

function decode(msg: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(msg);
  } catch {
    return undefined;
  }
}

export async function startDnsServer(zone: Zone): Promise<DnsLab> {
  const queries: DnsLab['queries'] = [];
  const note = (p: DecodedPacket, transport: 'udp' | 'tcp'): void => {
    const q = p.questions?.[0];
    if (q) queries.push({ name: q.name, type: q.type, transport });
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
        for (const r of respond(zone, p, 'tcp') ?? []) {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(r.length);
          sock.write(Buffer.concat([len, r]));
        }
      }
    });
  });
  await new Promise<void>((res, rej) => {
    tcp.once('error', rej);
    tcp.listen(0, '127.0.0.1', () => res());
  });
  const port = (tcp.address() as AddressInfo).port;
  const udp: UdpSocket = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const p = decode(msg);
    if (!p) return;
    note(p, 'udp');
    for (const r of respond(zone, p, 'udp') ?? []) udp.send(r, rinfo.port, rinfo.address);
  });
  await new Promise<void>((res, rej) => {
    udp.once('error', rej);
    udp.bind(port, '127.0.0.1', () => res());
  });
  return {
    host: '127.0.0.1',
    port,
    zone,
    queries,
    close: async () => {
      for (const s of tcpSockets) s.destroy();
      await Promise.all([
        new Promise<void>((res) => tcp.close(() => res())),
        new Promise<void>((res) => udp.close(() => res())),
      ]);
    },
  };
}
