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
 * `tlsFeatureField()` derives an outcome's `tls=` value from the record it
 * was decided on, as Postfix 3.11 keeps its pol_stats.
 *
 * Not here: deciding results (enforce.ts, verify.ts), logging (the mail log
 * subscriber derives its lines from these records).
 */
import type { AppliedPolicy, RequireTlsStatus, SessionResult, TlsFacts, TlsRptResultType, TlsSessionRecord } from '../outcome.ts';
import { tlsRequired } from '../tls/level.ts';
import { formatFeatures, type FeatureStatus } from '../tls/requiretls.ts';
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
  /** REQUIRETLS on the session (issue 12), when the message asked for it. */
  readonly requireTls?: RequireTlsStatus;
}

function base(p: RecordInput): Omit<TlsSessionRecord, 'result' | 'logLines'> {
  return {
    time: p.time,
    nexthop: p.server.nexthop,
    policy: p.applied,
    server: { hostname: p.server.hostname, address: p.server.address, port: p.server.port, ...(p.helo ? { helo: p.helo } : {}) },
    ...(p.sendingIp ? { sendingIp: p.sendingIp } : {}),
    ...(p.requireTls ? { requireTls: p.requireTls } : {}),
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

/**
 * postconf(5) smtp_log_tls_feature_status: the `tls=` value of an outcome
 * decided on `record` (absent: no TLS decision was reached on a connection),
 * as smtp(8) keeps its pol_stats (pol_stats_format(): `!` = the feature's
 * policy stopped delivery, `?` = never decided, `:final` = downgraded):
 *   - the level, activated before connecting: `L?` until decided;
 *   - plaintext (nothing required, STARTTLS absent or not wanted): `L:none`
 *     (`none` at level none);
 *   - STARTTLS absent or refused where the level requires TLS, or a
 *     certificate that failed a required match: `!L`; a failed handshake
 *     stays undecided (smtp_proto.c "Leave all TLS feature policy status
 *     info as 'undecided'"), and so does a level that was not what stopped
 *     delivery (a REQUIRETLS failure at `may`);
 *   - a completed handshake: `L`, or `L:used` (`dane:may`, `dane:halfdane`);
 * then `/` and the requiretls feature when REQUIRETLS is active for the
 * message (`secure/requiretls`, `may?/!requiretls:nocertmatch`).
 */
export function tlsFeatureField(
  applied: AppliedPolicy, record: Pick<TlsSessionRecord, 'tls' | 'result'> | undefined, requireTls?: FeatureStatus,
): string {
  const features: FeatureStatus[] = [levelFeature(applied, record)];
  if (requireTls) features.push(requireTls);
  return formatFeatures(features);
}

function levelFeature(applied: AppliedPolicy, record: Pick<TlsSessionRecord, 'tls' | 'result'> | undefined): FeatureStatus {
  const name = applied.configuredLevel;
  const undecided: FeatureStatus = { name, status: 'undecided' };
  if (!record) return undecided;
  const r = record.result;
  if (record.tls) {
    if (r.kind === 'failure' && r.enforced) return { name, status: 'violation' };
    // postconf(5) smtp_log_tls_feature_status: "tls=dane:halfdane" (an insecure MX RRset).
    return { name, final: applied.halfDane === true ? 'halfdane' : applied.level, status: 'compliant' };
  }
  if (r.kind === 'plaintext') return { name, final: 'none', status: 'compliant' };
  if (r.kind === 'failure' && r.type === 'starttls-not-supported' && tlsRequired(applied.level)) return { name, status: 'violation' };
  return undecided;
}
