/**
 * expiry.ts — is a message with temporary failures returned to its sender,
 * does it get a delay warning? (Postfix qmgr(8), qmgr_active_done_2_generic).
 *
 * Contract: pure decisions from times in milliseconds and lifetimes in
 * seconds; no I/O.
 *
 * - postconf(5) maximal_queue_lifetime / bounce_queue_lifetime: a message
 *   with a deferred recipient expires when `now >= create_time + lifetime`,
 *   where the lifetime is bounce_queue_lifetime for the null sender (a bounce)
 *   and maximal_queue_lifetime otherwise. A lifetime of 0 therefore means
 *   "try once" (the comparison holds right after the first attempt).
 * - postsuper(1) -e/-f (Postfix ≥3.5): a forced expiry expires the message
 *   after its current attempt, whatever its age.
 * - postconf(5) delay_warning_time: 0 disables; otherwise one notice once the
 *   message is at least that old (qmgr compares `now >= warn_time - 1`), and
 *   never again (Postfix zeroes the warn record; sealpost keeps a marker, see
 *   Spool.markWarned).
 *
 * Not here: building the notices (reports/bounce.ts), writing them (qmgr.ts).
 */

export interface ExpirySettings {
  /** maximal_queue_lifetime, seconds. */
  readonly maximalQueueLifetimeSec: number;
  /** bounce_queue_lifetime, seconds. */
  readonly bounceQueueLifetimeSec: number;
  /** delay_warning_time, seconds (0 = off). */
  readonly delayWarningSec: number;
}

export interface MessageAge {
  readonly arrivalTime: number;
  readonly sender: string;
  readonly forcedExpire: boolean;
}

/** qmgr_active.c: expired after a temporary failure? */
export function isExpired(m: MessageAge, nowMs: number, s: ExpirySettings): boolean {
  if (m.forcedExpire) return true;
  const lifetime = m.sender === '' ? s.bounceQueueLifetimeSec : s.maximalQueueLifetimeSec;
  return nowMs >= m.arrivalTime + lifetime * 1000;
}

/** qmgr_active.c: is a delay warning due now (not yet sent, not expired)? */
export function isWarningDue(m: MessageAge, alreadyWarned: boolean, nowMs: number, s: ExpirySettings): boolean {
  if (s.delayWarningSec <= 0 || alreadyWarned) return false;
  // qmgr: event_time() >= message->warn_time - 1 (one second of slack).
  return nowMs >= m.arrivalTime + (s.delayWarningSec - 1) * 1000;
}
