/**
 * concurrency.ts — the per-destination concurrency window with Postfix's
 * slow start and feedback (qmgr_queue.c throttle/unthrottle,
 * SCHEDULER_README "Destination concurrency scheduling").
 *
 * Contract: a small state machine, no I/O, no timers (the caller keeps the
 * dead-until time and calls `revive()`).
 *
 * - A new destination starts at `initial_destination_concurrency` (never
 *   above the destination limit).
 * - Success (a delivery that did not report a site failure): the failed
 *   cohort count is reset; while the window is below the limit and below
 *   busy + initial (no growth while the window is not in use), `success +=
 *   positive feedback` and each whole unit grows the window by one.
 * - Site failure: `failedCohorts += 1/window`; when it reaches
 *   `<transport>_destination_concurrency_failed_cohort_limit` the destination
 *   is dead ("throttled"); otherwise the window shrinks by the negative
 *   feedback, never below 1.
 * - Feedback values are numbers or `1/concurrency` (postconf(5)
 *   default_destination_concurrency_positive_feedback); Postfix 3.x defaults
 *   are 1, 1 and a cohort limit of 1.
 *
 * Not here: which queue gets a process (qmgr.ts), the dead timer.
 */

export interface WindowSettings {
  /** <transport>_destination_concurrency_limit; 0 = no limit. */
  readonly limit: number;
  /** <transport>_initial_destination_concurrency. */
  readonly initial: number;
  /** Positive feedback: a number, or 'window' for `1/concurrency`. */
  readonly positive: number | 'window';
  readonly negative: number | 'window';
  /** <transport>_destination_concurrency_failed_cohort_limit; 0 = never dead. */
  readonly failedCohortLimit: number;
}

/** postconf(5): a feedback value is `1/concurrency`, `1/N` or a number. */
export function parseFeedback(text: string): number | 'window' | undefined {
  const t = text.trim().toLowerCase();
  if (t === '1/concurrency' || t === '1/window') return 'window';
  const frac = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(t);
  if (frac) return Number(frac[2]) > 0 ? Number(frac[1]) / Number(frac[2]) : undefined;
  if (/^\d+(\.\d+)?$/.test(t)) return Number(t);
  return undefined;
}

export class ConcurrencyWindow {
  /** Current window; 0 when the destination is dead. */
  window: number;
  private success = 0;
  private failedCohorts = 0;

  constructor(private settings: WindowSettings) {
    this.window = initialWindow(settings);
  }

  get dead(): boolean {
    return this.window <= 0;
  }

  /** No failure since the last success (nothing worth remembering about this destination). */
  get clean(): boolean {
    return this.failedCohorts === 0 && !this.dead;
  }

  /** May another delivery start with `busy` in flight? */
  canStart(busy: number): boolean {
    return !this.dead && busy < Math.floor(this.window);
  }

  private feedback(v: number | 'window'): number {
    return v === 'window' ? 1 / Math.max(1, this.window) : v;
  }

  /** qmgr_queue_unthrottle: a delivery went through (or failed for a recipient only). */
  succeeded(busy: number): void {
    if (this.dead) return;
    this.failedCohorts = 0;
    const { limit, initial } = this.settings;
    if ((limit === 0 || this.window < limit) && this.window < busy + initial) {
      this.success += this.feedback(this.settings.positive);
      while (this.success >= 1) {
        this.success -= 1;
        if (limit === 0 || this.window < limit) this.window += 1;
      }
    }
  }

  /** qmgr_queue_throttle: the destination failed. Returns true when it is now dead. */
  failed(): boolean {
    if (this.dead) return true;
    this.failedCohorts += 1 / Math.max(1, this.window);
    const cohortLimit = this.settings.failedCohortLimit;
    if (cohortLimit > 0 && this.failedCohorts >= cohortLimit) {
      this.window = 0;
      this.success = 0;
      return true;
    }
    if (this.window > 1) this.window = Math.max(1, this.window - this.feedback(this.settings.negative));
    return false;
  }

  /** The dead timer expired (minimal_backoff_time): start over at the initial window. */
  revive(): void {
    this.window = initialWindow(this.settings);
    this.success = 0;
    this.failedCohorts = 0;
  }

  /** New settings after a reload; the window is clamped to the new limit. */
  update(settings: WindowSettings): void {
    this.settings = settings;
    if (!this.dead && settings.limit > 0 && this.window > settings.limit) this.window = settings.limit;
  }
}

function initialWindow(s: WindowSettings): number {
  const init = Math.max(1, s.initial);
  return s.limit > 0 ? Math.min(init, s.limit) : init;
}
