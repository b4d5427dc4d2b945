/**
 * enforce.ts — what each TLS event in an SMTP session means under a policy:
 * Postfix's smtp_proto.c/smtp_trouble.c decisions as one visible table.
 *
 *   level            no STARTTLS         STARTTLS refused      handshake failed                     peer evaluated
 *   none             plaintext           (not asked)           (not asked)                          continue
 *   may              plaintext           plaintext             reconnect-plaintext if allowed,      continue (never fails)
 *                                                               else fail 4.7.5, no throttle
 *   encrypt+         fail 4.7.4,         fail (server's DSN),  fail 4.7.5, throttle                 fail `Server certificate
 *                    throttle            throttle if 4xx                                            not verified` 4.7.5, throttle
 *
 * Every `fail` says whether the failure is of the throttling kind
 * (smtp_site_fail() vs smtp_misc_fail(..., SMTP_NOTHROTTLE)); whether that
 * means "next MX" and "throttle the destination" is the one failure policy of
 * delivery/smtp/trouble.ts (`failVerdict`: a soft error tries the next MX
 * and only soft errors throttle). Every `fail` names its RFC 8460 result
 * type (starttls-not-supported, certificate-*, validation-failure), decided
 * here or by verify.ts, never re-derived from the reason text.
 *
 * Contract: pure functions over (policy, server, event); no sockets, no clock.
 * An invalid policy is never connected with; if asked anyway every event fails
 * with its deferral (fail closed).
 *
 * Published policies: DANE failures keep Postfix's texts exactly (Postfix has
 * DANE built in); a DANE `halfdane` success (insecure MX RRset) is `Trusted`
 * and continues, as tls_client.c. Under an MTA-STS `enforce` policy every
 * failure keeps Postfix's text as its prefix and names the policy
 * (`...: MTA-STS policy of D demands TLS 1.2 or later with a valid
 * certificate for MX`, mta-sts/match.ts stsReasons), so the log line and
 * `mailq` say which source refused the server.
 *
 * Not here: the evaluation itself (verify.ts), the session state machine (delivery/smtp/).
 */
import type { TlsRptResultType } from '../outcome.ts';
import { failVerdict, namaddr as formatNamaddr, replyDsn } from '../smtp/trouble.ts';
import type { ConnectPolicy, ServerIdentity, TlsDecision, TlsEvaluation, TlsPolicy } from './types.ts';
import { mustMatch, tlsRequired } from './level.ts';
import { HANDSHAKE_FAILURE, NOT_VERIFIED, notOffered, refused } from './reasons.ts';
import { stsReasons } from '../mta-sts/match.ts';

export interface HandshakeContext {
  /**
   * smtp.h PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE: the message waited at
   * least minimal_backoff_time before this active-queue entry (or it is a trace
   * request), no SASL password applies to the destination, and REQUIRETLS does
   * not require TLS. The SMTP client computes it.
   */
  readonly plaintextFallbackOk: boolean;
}

const CONTINUE: TlsDecision = Object.freeze({ action: 'continue' });
const PLAINTEXT: TlsDecision = Object.freeze({ action: 'plaintext' });
const RECONNECT_PLAINTEXT: TlsDecision = Object.freeze({ action: 'reconnect-plaintext' });

/** `name[addr]` as smtp(8) session->namaddr (trouble.ts words it). */
export function namaddr(server: ServerIdentity): string {
  return formatNamaddr(server.hostname, server.address);
}

function fail(reason: string, dsn: string, throttles: boolean, type: TlsRptResultType, policy?: ConnectPolicy): TlsDecision {
  const sts = policy?.sts;
  const text = sts?.mode === 'enforce' ? stsReasons.withPolicy(reason, sts.domain, sts.mxHost) : reason;
  return Object.freeze({ action: 'fail', reason: text, dsn, ...failVerdict(dsn, throttles), type });
}

function invalidDecision(policy: Extract<TlsPolicy, { level: 'invalid' }>): TlsDecision {
  return fail(policy.invalid.reason, policy.invalid.dsn, false, 'validation-failure');
}

/** Whether to send STARTTLS when offered: every level but `none` (smtp_proto.c: tls->level > TLS_LEV_NONE). */
export function wantStarttls(policy: TlsPolicy): policy is ConnectPolicy {
  return policy.level !== 'none' && policy.level !== 'invalid';
}

/** EHLO did not list STARTTLS. */
export function onStarttlsNotOffered(policy: TlsPolicy, server: ServerIdentity): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  // smtp_proto.c: "TLS is required, but was not offered by host %s" → smtp_site_fail (throttles).
  if (tlsRequired(policy.level)) {
    const d = notOffered(namaddr(server));
    return fail(d.reason, d.dsn, true, 'starttls-not-supported', policy);
  }
  return PLAINTEXT;
}

/** The enhanced status of a reply text (trouble.ts has the one parser). */
export { replyDsn };

/** The server answered STARTTLS with a non-2xx reply (`replyText` in Postfix's log form). */
export function onStarttlsRefused(policy: TlsPolicy, server: ServerIdentity, replyText: string): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  // smtp_proto.c: at mandatory levels smtp_site_fail() with the server's reply;
  // otherwise "try to continue in plain-text mode" on the same connection.
  if (tlsRequired(policy.level)) {
    const d = refused(namaddr(server), replyText, replyDsn(replyText));
    return fail(d.reason, d.dsn, true, 'starttls-not-supported', policy);
  }
  return PLAINTEXT;
}

/** tls.connect() failed (handshake error, timeout, reset during the handshake). */
export function onHandshakeFailed(policy: TlsPolicy, _server: ServerIdentity, ctx: HandshakeContext): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  // smtp_proto.c: PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE → RETRY_AS_PLAINTEXT (only at may).
  if (policy.level === 'may' && ctx.plaintextFallbackOk) return RECONNECT_PLAINTEXT;
  // smtp_proto.c: smtp_misc_fail(state, level == may ? SMTP_NOTHROTTLE : SMTP_THROTTLE, "4.7.5", "Cannot start TLS: handshake failure").
  return fail(HANDSHAKE_FAILURE.reason, HANDSHAKE_FAILURE.dsn, policy.level !== 'may', 'validation-failure', policy);
}

/** After a completed handshake and evaluate(). */
export function onPeerEvaluated(policy: TlsPolicy, evaluation: TlsEvaluation): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  if (evaluation.failure) {
    // smtp_proto.c: TLS_MUST_MATCH and the certificate is absent or not matched →
    // smtp_site_fail(..., "4.7.5", "Server certificate not verified").
    return fail(evaluation.failure.reason, evaluation.failure.dsn, true, evaluation.failureType ?? 'validation-failure', policy);
  }
  // tls_client.c: a halfdane match (insecure MX RRset) is Trusted, and that is enough.
  if (policy.dane?.halfdane && evaluation.trust === 'Trusted') return CONTINUE;
  if (mustMatch(policy.level) && evaluation.trust !== 'Verified') {
    return fail(NOT_VERIFIED.reason, NOT_VERIFIED.dsn, true, 'certificate-not-trusted', policy);
  }
  return CONTINUE;
}

/**
 * postconf(5) smtp_log_tls_feature_status: the `tls=` value of the delivery
 * line: the level, `:downgrade` when the level actually used is weaker
 * (`may:none` = no STARTTLS, plaintext; `dane:may` = dane without TLSA).
 * Empty for an invalid policy (no connection was made; the field is omitted).
 */
export function tlsFeatureStatus(policy: TlsPolicy, used: { readonly tls: boolean; readonly evaluation?: TlsEvaluation }): string {
  if (policy.level === 'invalid') return '';
  return featureStatus(policy.level, policy.configuredLevel ?? policy.level, used.tls);
}

function featureStatus(level: ConnectPolicy['level'], configured: ConnectPolicy['level'], tls: boolean): string {
  if (level === 'none') return configured === 'none' ? 'none' : `${configured}:none`;
  if (!tls) return `${configured}:none`;
  if (configured !== level) return `${configured}:${level}`;
  return configured;
}
