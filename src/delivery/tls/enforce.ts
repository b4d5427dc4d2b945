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
 * Every `fail` tries the next MX when the error is temporary (smtp_trouble.c
 * smtp_bulk_fail: a soft error is not final while backup servers remain);
 * `throttle` is Postfix's SMTP_MISC_FAIL_THROTTLE / smtp_site_fail().
 *
 * Contract: pure functions over (policy, server, event); no sockets, no clock.
 * An `invalid` policy is never connected with; if asked anyway every event fails
 * with its deferral (fail closed).
 *
 * Not here: the evaluation itself (verify.ts), the session state machine (delivery/smtp/).
 */
import type { ServerIdentity, TlsDecision, TlsEvaluation, TlsPolicy } from './types.ts';
import { mustMatch, tlsRequired } from './level.ts';
import { CONFIG_PROBLEM, HANDSHAKE_FAILURE, NOT_VERIFIED, notOffered, refused } from './reasons.ts';

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

/** `name[addr]` as smtp(8) session->namaddr. */
export function namaddr(server: ServerIdentity): string {
  return `${server.hostname}[${server.address}]`;
}

function fail(reason: string, dsn: string, throttle: boolean): TlsDecision {
  // smtp_trouble.c smtp_bulk_fail(): a soft error is not final while other
  // servers remain (next MX); a hard one bounces now. Only soft errors throttle.
  const soft = dsn.startsWith('4');
  return Object.freeze({ action: 'fail', reason, dsn, nextHost: soft, throttle: throttle && soft });
}

function invalidDecision(policy: TlsPolicy): TlsDecision {
  const d = policy.invalid ?? CONFIG_PROBLEM;
  return fail(d.reason, d.dsn, false);
}

/** Whether to send STARTTLS when offered: every level but `none` (smtp_proto.c: tls->level > TLS_LEV_NONE). */
export function wantStarttls(policy: TlsPolicy): boolean {
  return policy.level !== 'none' && policy.level !== 'invalid';
}

/** EHLO did not list STARTTLS. */
export function onStarttlsNotOffered(policy: TlsPolicy, server: ServerIdentity): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  // smtp_proto.c: "TLS is required, but was not offered by host %s" → smtp_site_fail (throttles).
  if (tlsRequired(policy.level)) {
    const d = notOffered(namaddr(server));
    return fail(d.reason, d.dsn, true);
  }
  return PLAINTEXT;
}

/** The enhanced status of a reply text (`454 4.7.0 ...`), else `N.0.0` from the reply code. */
export function replyDsn(replyText: string): string {
  const m = /^([245])\d\d[ -]?(?:([245]\.\d{1,3}\.\d{1,3})(?:\s|$))?/.exec(replyText.trim());
  if (!m) return '4.0.0';
  return m[2] ?? `${m[1]}.0.0`;
}

/** The server answered STARTTLS with a non-2xx reply (`replyText` in Postfix's log form). */
export function onStarttlsRefused(policy: TlsPolicy, server: ServerIdentity, replyText: string): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  // smtp_proto.c: at mandatory levels smtp_site_fail() with the server's reply;
  // otherwise "try to continue in plain-text mode" on the same connection.
  if (tlsRequired(policy.level)) {
    const d = refused(namaddr(server), replyText, replyDsn(replyText));
    return fail(d.reason, d.dsn, true);
  }
  return PLAINTEXT;
}

/** tls.connect() failed (handshake error, timeout, reset during the handshake). */
export function onHandshakeFailed(policy: TlsPolicy, _server: ServerIdentity, ctx: HandshakeContext): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  // smtp_proto.c: PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE → RETRY_AS_PLAINTEXT (only at may).
  if (policy.level === 'may' && ctx.plaintextFallbackOk) return RECONNECT_PLAINTEXT;
  // smtp_proto.c: smtp_misc_fail(state, level == may ? SMTP_NOTHROTTLE : SMTP_THROTTLE, "4.7.5", "Cannot start TLS: handshake failure").
  return fail(HANDSHAKE_FAILURE.reason, HANDSHAKE_FAILURE.dsn, policy.level !== 'may');
}

/** After a completed handshake and evaluate(). */
export function onPeerEvaluated(policy: TlsPolicy, evaluation: TlsEvaluation): TlsDecision {
  if (policy.level === 'invalid') return invalidDecision(policy);
  if (evaluation.failure) {
    // smtp_proto.c: TLS_MUST_MATCH and the certificate is absent or not matched →
    // smtp_site_fail(..., "4.7.5", "Server certificate not verified").
    return fail(evaluation.failure.reason, evaluation.failure.dsn, true);
  }
  if (mustMatch(policy.level) && evaluation.trust !== 'Verified') {
    return fail(NOT_VERIFIED.reason, NOT_VERIFIED.dsn, true);
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
  const configured = policy.configuredLevel ?? policy.level;
  if (policy.level === 'none') return configured === 'none' ? 'none' : `${configured}:none`;
  if (!used.tls) return `${configured}:none`;
  if (configured !== policy.level) return `${configured}:${policy.level}`;
  return configured;
}
