/**
 * record.ts — the session records of one delivery attempt (delivery/outcome.ts
 * TlsSessionRecord), built from what a session's TLS step reported
 * (session.ts TlsOutcome) or from a per-server policy decision not to connect.
 *
 * Contract: pure; plain data out (it crosses the worker boundary). One
 * record per connection that reached the TLS decision (opened or reused) and
 * one per server the policy said not to connect to. A connection that broke
 * before the TLS decision (greeting, EHLO) or was never made gets none: it
 * says nothing about TLS.
 *
 * Not here: deciding results (enforce.ts, verify.ts), logging (the mail log
 * subscriber derives its lines from these records).
 */
import type { AppliedPolicy, SessionResult, TlsFacts, TlsRptResultType, TlsSessionRecord } from '../outcome.ts';
import type { TlsEvaluation } from '../tls/types.ts';
import type { ServerTarget } from './connect.ts';
import type { TlsOutcome } from './session.ts';

/** The TLS facts of a completed handshake. */
export function tlsFacts(e: TlsEvaluation, reused: boolean): TlsFacts {
  return Object.freeze({
    protocol: e.protocol,
    cipher: e.cipher,
    cipherBits: e.cipherBits,
    cipherAlgBits: e.cipherAlgBits,
    trust: e.trust,
    reused,
    ...(e.summaryExtra ? { summaryExtra: e.summaryExtra } : {}),
    ...(e.peer ? { peer: e.peer } : {}),
  });
}

export interface RecordInput {
  readonly time: number;
  readonly applied: AppliedPolicy;
  readonly server: ServerTarget;
  readonly helo?: string | undefined;
  readonly sendingIp?: string | undefined;
}

function base(p: RecordInput): Omit<TlsSessionRecord, 'result' | 'logLines'> {
  return {
    time: p.time,
    nexthop: p.server.nexthop,
    policy: p.applied,
    server: { hostname: p.server.hostname, address: p.server.address, port: p.server.port, ...(p.helo ? { helo: p.helo } : {}) },
    ...(p.sendingIp ? { sendingIp: p.sendingIp } : {}),
  };
}

/** A session's record: what its TLS step gave; `reused` for a cached connection used again. */
export function sessionRecord(p: RecordInput, tls: TlsOutcome, reused: boolean): TlsSessionRecord {
  return Object.freeze({
    ...base(p),
    ...(tls.evaluation ? { tls: tlsFacts(tls.evaluation, reused) } : {}),
    result: tls.result,
    // A reused connection logs no certificate lines again (only `TLS connection reused`).
    logLines: reused ? [] : tls.logLines,
  });
}

/** A server the policy said not to connect to (an MTA-STS policy that does not list it, a failed per-server lookup). */
export function notConnectedRecord(p: RecordInput, reason: string, type: TlsRptResultType | undefined): TlsSessionRecord {
  const result: SessionResult = { kind: 'failure', type: type ?? 'validation-failure', reason, enforced: true };
  return Object.freeze({ ...base(p), result, logLines: [] });
}
