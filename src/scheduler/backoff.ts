/**
 * backoff.ts — when a deferred message is tried again (Postfix qmgr(8)).
 *
 * Contract: pure arithmetic on seconds and milliseconds, no I/O, no clock.
 *
 * Postfix's rule (qmgr_active.c, qmgr_active_done_3_generic): the delay
 * before the next attempt is the message's age in the queue, clamped to
 * [minimal_backoff_time, maximal_backoff_time]:
 *
 *     delay = clamp(now - create_time, minimal_backoff_time, maximal_backoff_time)
 *
 * "Since we look at actual time in queue, not time since last delivery
 * attempt, backoff times will be distributed" — the delay therefore roughly
 * doubles with each attempt (age grows by the previous delay) until it hits
 * the maximum. The next-attempt time is kept in the deferred file's mtime
 * (qmgr_active_defer() sets the file's time stamps into the future); a
 * deferred-queue scan only picks up files whose mtime is not in the future.
 * sealpost's create_time is the envelope's arrival time (postsuper -r keeps
 * it, as Postfix keeps the original arrival time).
 *
 * Not here: moving files (spool.ts), expiry (expiry.ts).
 */

export interface BackoffSettings {
  /** minimal_backoff_time, seconds. */
  readonly minimalSec: number;
  /** maximal_backoff_time, seconds. */
  readonly maximalSec: number;
}

/** qmgr_active.c: seconds until the next attempt for a message of age `ageSec`. */
export function backoffDelaySec(ageSec: number, s: BackoffSettings): number {
  // qmgr_active.c: a message without a create time gets the minimum.
  if (!Number.isFinite(ageSec) || ageSec < 0) return s.minimalSec;
  let delay = Math.floor(ageSec);
  if (delay > s.maximalSec) delay = s.maximalSec;
  if (delay < s.minimalSec) delay = s.minimalSec;
  return delay;
}

/** The next attempt time (ms since the epoch) for a message that arrived at `arrivalMs`. */
export function nextAttemptTime(nowMs: number, arrivalMs: number, s: BackoffSettings): number {
  return nowMs + backoffDelaySec((nowMs - arrivalMs) / 1000, s) * 1000;
}

/** A deferred file is due when its mtime (the next attempt time) is not in the future. */
export function isDue(mtimeMs: number, nowMs: number): boolean {
  return mtimeMs <= nowMs;
}
