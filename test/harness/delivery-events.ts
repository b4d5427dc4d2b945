/**
 * delivery-events.ts (test harness) — realistic delivery events
 * (reports/events.ts, delivery/outcome.ts) for the consumers' tests, until
 * the daemon publishes them: a verified DANE session, an MTA-STS one, a table
 * `secure` one, opportunistic Trusted/Untrusted/Anonymous sessions, plaintext,
 * and policy failures with their RFC 8460 result types and Postfix's texts.
 *
 * Contract: plain data only, deterministic (times and fingerprints derive
 * from the arguments); `publishMessage()` publishes in the queue manager's
 * order: received, then per session `tls-session` followed by its recipients'
 * `outcome`s, then `removed` when every recipient is final.
 */
import { createHash } from 'node:crypto';
import type { AppliedPolicy, PolicySourceName, TlsRptResultType, TlsSessionRecord } from '../../src/delivery/outcome.ts';
import type { TlsLevel, TlsTrust } from '../../src/delivery/tls/types.ts';
import type { EventBus } from '../../src/reports/events.ts';

export function fingerprint(seed: string): string {
  return createHash('sha256').update(seed).digest('hex').toUpperCase().match(/../g)!.join(':');
}

export interface SessionSpec {
  readonly domain: string;
  readonly time: number;
  readonly source?: PolicySourceName;
  readonly level?: TlsLevel;
  /** Absent: no TLS (plaintext or a failure before the handshake). */
  readonly trust?: TlsTrust;
  readonly protocol?: string;
  readonly failure?: { readonly type: TlsRptResultType; readonly reason: string; readonly enforced?: boolean };
  readonly plaintext?: boolean;
  readonly address?: string;
  readonly reused?: boolean;
  readonly matchedName?: string;
}

function policyOf(spec: SessionSpec): AppliedPolicy {
  const source = spec.source ?? 'default';
  const level = spec.level ?? (source === 'dane' ? 'dane' : source === 'mta-sts' ? 'secure' : 'may');
  const base = { source, domain: spec.domain, level, configuredLevel: level, mxHostPatterns: [] as string[], strings: [] as string[] };
  if (source === 'dane') return { ...base, type: 'tlsa', strings: [`3 1 1 ${fingerprint(spec.domain).replace(/:/g, '').toLowerCase()}`] };
  if (source === 'mta-sts') return { ...base, type: 'sts', stsMode: 'enforce', stsId: '20261201', mxHostPatterns: [`*.${spec.domain}`], strings: ['version: STSv1', 'mode: enforce', `mx: *.${spec.domain}`, 'max_age: 604800'] };
  if (source === 'table') return { ...base, type: 'no-policy-found', tableEntry: { table: 'hash:/etc/sealpost/tls_policy', key: spec.domain, value: level } };
  return { ...base, type: 'no-policy-found' };
}

export function session(spec: SessionSpec): TlsSessionRecord {
  const hostname = `mx.${spec.domain}`;
  const server = { hostname, address: spec.address ?? '192.0.2.25', port: 25, helo: hostname };
  const tls = spec.trust
    ? {
        protocol: spec.protocol ?? 'TLSv1.3',
        cipher: 'TLS_AES_256_GCM_SHA384',
        cipherBits: 256,
        cipherAlgBits: 256,
        trust: spec.trust,
        reused: spec.reused ?? false,
        peer: {
          certSha256: fingerprint(`cert:${hostname}`),
          pkeySha256: fingerprint(`key:${hostname}`),
          subject: `/CN=${hostname}`,
          issuer: '/CN=Test CA',
          ...(spec.trust === 'Verified' ? { matchedName: spec.matchedName ?? hostname } : {}),
          validTo: Date.UTC(2027, 11, 31),
        },
      }
    : undefined;
  const result = spec.failure
    ? { kind: 'failure' as const, type: spec.failure.type, reason: spec.failure.reason, enforced: spec.failure.enforced ?? true }
    : spec.trust
      ? { kind: 'success' as const }
      : { kind: 'plaintext' as const };
  return { time: spec.time, nexthop: spec.domain, policy: policyOf(spec), server, sendingIp: '127.0.0.1', ...(tls ? { tls } : {}), result, logLines: [] };
}

export interface MessageSpec {
  readonly queueId: string;
  readonly messageId?: string;
  readonly arrival: number;
  /** Recipients grouped by the session that served them; `status` per group. */
  /** `connUse`: Postfix's conn_use=N of the outcomes (≥ 2: the session ran on a cached connection). */
  readonly groups: ReadonlyArray<{ readonly session: SessionSpec; readonly recipients: readonly string[]; readonly status: 'sent' | 'deferred' | 'bounced'; readonly connUse?: number }>;
  readonly origin?: string;
  /** Publish `removed` after the outcomes (default: when no group is deferred). */
  readonly removed?: boolean;
}

/** Publish one message's life on the bus (see the header). */
export function publishMessage(bus: EventBus, m: MessageSpec): void {
  const nrcpt = m.groups.reduce((n, g) => n + g.recipients.length, 0);
  bus.publish({ kind: 'received', time: m.arrival, queueId: m.queueId, origin: m.origin ?? 'smtpd', sender: 'sender@origin.test', size: 4096, nrcpt, ...(m.messageId ? { messageId: m.messageId } : {}) });
  let last = m.arrival;
  for (const g of m.groups) {
    const record = session(g.session);
    last = Math.max(last, record.time);
    bus.publish({ kind: 'tls-session', queueId: m.queueId, record });
    for (const r of g.recipients) {
      const reason = g.status === 'sent' ? '250 2.0.0 Ok: queued as 4XyZ' : g.session.failure?.reason ?? (g.status === 'deferred' ? 'connect to mx: Connection timed out' : '550 5.1.1 User unknown');
      bus.publish({
        kind: 'outcome',
        time: record.time,
        queueId: m.queueId,
        ...(m.messageId ? { messageId: m.messageId } : {}),
        transport: 'smtp',
        nexthop: g.session.domain,
        recipient: r,
        origRecipient: r,
        status: g.status,
        dsn: g.status === 'sent' ? '2.0.0' : g.status === 'deferred' ? '4.7.5' : '5.7.5',
        reason,
        relay: `${record.server.hostname}[${record.server.address}]:25`,
        arrivalTime: m.arrival,
        session: record,
        ...(g.connUse !== undefined ? { connUse: g.connUse } : {}),
      });
    }
  }
  const final = m.removed ?? m.groups.every((g) => g.status !== 'deferred');
  if (final) bus.publish({ kind: 'removed', time: last, queueId: m.queueId, reason: 'delivered' });
}
