/**
 * published-checks.ts — the certificate checks of the published policies,
 * after the handshake: DANE (RFC 7672, through dane.ts matchDane()) and the
 * MTA-STS `testing` checks (RFC 8461 §5: evaluated and recorded, never
 * enforced).
 *
 * Contract (pure over PeerFacts):
 * - `evaluateDane(plan, facts, server, opts)`: the TlsEvaluation of a DANE
 *   server. The CA store plays no part (`rejectUnauthorized: false`; OpenSSL's
 *   PKIX verdict only words the no-match log line as Postfix does); a
 *   mismatch is `Server certificate not verified` (4.7.5) with the RFC 8460
 *   type matchDane() decided — there is no fallback (the session fails, the
 *   next MX is tried). The matched record and name go into the peer facts.
 * - `stsTestingCheck(policy, plan, facts, server, opts)`: what an MTA-STS
 *   `enforce` policy would have said of this connection (the MX host listed,
 *   TLS ≥ 1.2, a chain trusted by the MTA-STS roots naming the MX host, as
 *   verify.ts judges `secure`), or undefined when it would have passed.
 * - `withStsTesting(policy, outcome)`: a session's TLS outcome under a
 *   `testing` policy, with what would have failed recorded as a failure that
 *   was not enforced (`enforced: false`) and logged as one line
 *   (`MTA-STS policy of D (mode testing) would have failed: ...`); a
 *   session that used no TLS at all is such a failure too.
 *
 * Not here: the TLSA lookup and the decision to use DANE (sources/dane.ts),
 * what a failure means for delivery (enforce.ts).
 */
import type { SessionResult, TlsRptResultType } from '../outcome.ts';
import { stsReasons } from '../mta-sts/match.ts';
import { matchDane, type DaneDigests } from './dane.ts';
import { NOT_VERIFIED } from './reasons.ts';
import { cipherBits } from './summary.ts';
import type { ConnectPolicy, DanePlan, ServerIdentity, StsPlan, TlsEvaluation } from './types.ts';
import { evaluatePeer, peerRecord, type PeerFacts, type VerifyOptions } from './verify.ts';

export interface DaneCheckOptions {
  readonly digests: DaneDigests;
  readonly maxDepth: number;
  readonly logLevel: number;
  readonly now?: number;
}

const where = (s: ServerIdentity): string => `${s.hostname}[${s.address}]:${s.port}`;

/** The evaluation of a DANE server (see the header). */
export function evaluateDane(plan: DanePlan, facts: PeerFacts, server: ServerIdentity, opts: DaneCheckOptions): TlsEvaluation {
  const v = matchDane({
    records: plan.records,
    chain: facts.chain,
    matchNames: plan.matchNames,
    level: plan.halfdane ? 'halfdane' : plan.level,
    mustFail: plan.mustFail,
    digests: opts.digests,
    where: where(server),
    maxDepth: opts.maxDepth,
    logLevel: opts.logLevel,
    pkixTrusted: facts.authorized,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
  });
  const leaf = facts.chain[0];
  const peer = leaf
    ? Object.freeze({ ...peerRecord(leaf, v.ok ? v.matchedName : undefined), ...(v.ok ? { matchedTlsa: v.presentation } : {}) })
    : undefined;
  return Object.freeze({
    protocol: facts.protocol,
    cipher: facts.cipher,
    ...cipherBits(facts.cipher),
    ...(facts.summaryExtra ? { summaryExtra: facts.summaryExtra } : {}),
    trust: v.trust,
    logLines: v.logLines,
    ...(v.ok ? {} : { failure: NOT_VERIFIED, failureType: v.type }),
    ...(peer ? { peer } : {}),
  });
}

const PROTOCOLS = ['SSLv3', 'TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** What an MTA-STS policy in mode `testing` would have failed on this connection (see the header). */
export function stsTestingCheck(
  policy: ConnectPolicy, plan: StsPlan, facts: PeerFacts, server: ServerIdentity, opts: VerifyOptions,
): { readonly type: TlsRptResultType; readonly reason: string } | undefined {
  if (!plan.listed) return { type: 'validation-failure', reason: stsReasons.testing(plan.domain, stsReasons.notListed(plan.domain, plan.mxHost)) };
  // RFC 8461 §7.2: TLS 1.2 or later.
  if (PROTOCOLS.indexOf(facts.protocol) < PROTOCOLS.indexOf('TLSv1.2')) {
    return { type: 'validation-failure', reason: stsReasons.testing(plan.domain, `${where(server)} negotiated ${facts.protocol}, older than TLS 1.2`) };
  }
  // RFC 8461 §4.2: a chain to a trusted root, naming the MX host — verify.ts's `secure` with match=hostname.
  const shadow = evaluatePeer({ ...policy, level: 'secure', match: [plan.mxHost] }, facts, server, { digest: opts.digest, maxDepth: opts.maxDepth, logLevel: 1 });
  if (!shadow.failure) return undefined;
  const what = shadow.logLines[0] ?? `${NOT_VERIFIED.reason} for ${where(server)}`;
  return { type: shadow.failureType ?? 'validation-failure', reason: stsReasons.testing(plan.domain, what) };
}

/** A session's TLS step as session.ts reports it (the fields this module reads and rewrites). */
export interface OutcomeLike {
  readonly result: SessionResult;
  readonly evaluation?: TlsEvaluation;
  readonly logLines: readonly string[];
}

/** A session's outcome under an MTA-STS `testing` policy (see the header); unchanged otherwise. */
export function withStsTesting<T extends OutcomeLike>(policy: ConnectPolicy, outcome: T): T {
  const plan = policy.sts;
  if (plan?.mode !== 'testing' || outcome.result.kind === 'failure') return outcome;
  let failure = outcome.evaluation?.stsTesting;
  if (!plan.listed) failure = { type: 'validation-failure', reason: stsReasons.testing(plan.domain, stsReasons.notListed(plan.domain, plan.mxHost)) };
  else if (outcome.result.kind === 'plaintext') failure = { type: 'starttls-not-supported', reason: stsReasons.testing(plan.domain, `no TLS with MX host ${plan.mxHost}`) };
  if (!failure) return outcome;
  return { ...outcome, result: { kind: 'failure', type: failure.type, reason: failure.reason, enforced: false }, logLines: [...outcome.logLines, failure.reason] };
}
