/**
 * demo-dns.ts — the smallest DNS server `sealpost demo` needs: UDP on
 * 127.0.0.1 (ephemeral port), answering MX and A questions for the demo zone
 * from a table given as data.
 *
 * Contract: `startDemoDns(zone)` resolves once bound; a name in the zone gets
 * its MX/A records (NOERROR, possibly without answers: NODATA), a name outside
 * it NXDOMAIN (RFC 1035 §4.1.1 RCODE 3). Malformed datagrams are ignored.
 * `close()` releases the port.
 *
 * Not here: TCP (the demo answers are far below 512 bytes), AAAA/TXT/TLSA,
 * recursion, DNSSEC. The test suite has its own richer server
 * (test/harness/dns-server.ts); src must not import test code.
 */
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';

export interface DemoZoneEntry {
  readonly MX?: ReadonlyArray<readonly [number, string]>;
  readonly A?: readonly string[];
}

export type DemoZone = Readonly<Record<string, DemoZoneEntry>>;

export interface DemoDns {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** RFC 1035 §4.1.1 RCODE 3: the name does not exist. */
const NXDOMAIN = 3;

/** The answer records for one question. */
export function demoAnswers(zone: DemoZone, name: string, type: string): Answer[] | undefined {
  const key = name.toLowerCase().replace(/\.$/, '');
  const entry = zone[key];
  if (!entry) return undefined;
  const base = { name, ttl: 60, class: 'IN' as const };
  if (type === 'MX') return (entry.MX ?? []).map(([preference, exchange]) => ({ ...base, type: 'MX' as const, data: { preference, exchange } }));
  if (type === 'A') return (entry.A ?? []).map((data) => ({ ...base, type: 'A' as const, data }));
  return [];
}

/** Encode the reply to one decoded query. */
export function demoReply(zone: DemoZone, query: DecodedPacket): Buffer | undefined {
  const q = query.questions?.[0];
  if (!q) return undefined;
  const answers = demoAnswers(zone, q.name, q.type);
  let flags = dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED);
  if (answers === undefined) flags |= NXDOMAIN;
  return dnsPacket.encode({ type: 'response', id: query.id ?? 0, flags, questions: [q], answers: answers ?? [] });
}

export async function startDemoDns(zone: DemoZone): Promise<DemoDns> {
  const udp = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    let query: DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return; // not a DNS packet: ignore
    }
    const reply = demoReply(zone, query);
    if (reply) udp.send(reply, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(0, '127.0.0.1', () => resolve());
  });
  udp.on('error', () => undefined);
  return {
    host: '127.0.0.1',
    port: (udp.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => udp.close(() => resolve())),
  };
}
