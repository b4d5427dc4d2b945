/**
 * destination-queue.ts — one per-destination queue of the queue manager:
 * the delivery requests waiting for one (transport, next hop) pair, how many
 * are in flight, the concurrency window, and whether the destination is dead
 * (Postfix's QMGR_QUEUE: todo list, busy list, window, dsn of the throttle).
 *
 * Contract:
 * - `key()` is the identity: transport + next hops + fallback relays. Mail for
 *   different destinations never shares a queue, so a dead or slow
 *   destination only ever holds up its own mail.
 * - Entries are taken in FIFO order (`take()`) only when the window allows;
 *   `complete()` is called when the agent answered.
 * - A dead queue (window 0) starts no deliveries; `kill()` records the reason
 *   and until when, and hands back the waiting entries so the caller defers
 *   them in one batch (`delivery temporarily suspended: REASON`).
 * - Rate delay (postconf(5) default_destination_rate_delay): at most one
 *   delivery start per delay; a delay forces the window to 1 as in Postfix.
 *
 * Not here: the agent call, outcomes (qmgr.ts).
 */
import { ConcurrencyWindow, type WindowSettings } from './concurrency.ts';

export interface DestinationKey {
  readonly transport: string;
  readonly nexthops: readonly string[];
  readonly fallbackRelays: readonly string[];
}

export function destinationKey(d: DestinationKey): string {
  return `${d.transport}\u0000${d.nexthops.join(',')}\u0000${d.fallbackRelays.join(',')}`;
}

export interface DestinationSettings extends WindowSettings {
  /** <transport>_destination_rate_delay in ms (0 = none). */
  readonly rateDelayMs: number;
}

export class DestinationQueue<E> {
  readonly transport: string;
  readonly nexthops: readonly string[];
  readonly fallbackRelays: readonly string[];
  private readonly waiting: E[] = [];
  private head = 0;
  busy = 0;
  private readonly window: ConcurrencyWindow;
  /** Why and until when the destination is dead. */
  deadReason: { readonly reason: string; readonly dsn: string } | undefined;
  deadUntil = 0;
  private lastStart = -Infinity;
  private rateDelayMs: number;

  constructor(d: DestinationKey, settings: DestinationSettings) {
    this.transport = d.transport;
    this.nexthops = d.nexthops;
    this.fallbackRelays = d.fallbackRelays;
    this.rateDelayMs = settings.rateDelayMs;
    this.window = new ConcurrencyWindow(this.effective(settings));
  }

  private effective(s: DestinationSettings): WindowSettings {
    // postconf(5) default_destination_rate_delay: a non-zero delay means one delivery at a time.
    return s.rateDelayMs > 0 ? { ...s, limit: 1, initial: 1 } : s;
  }

  key(): string {
    return destinationKey(this);
  }

  get size(): number {
    return this.waiting.length - this.head;
  }

  get dead(): boolean {
    return this.window.dead;
  }

  /** No failure remembered: an idle queue can be forgotten. */
  get clean(): boolean {
    return this.window.clean;
  }

  get windowSize(): number {
    return this.window.window;
  }

  /** The destination's name for logs (`smtp:[relay]:587`). */
  describe(): string {
    return `${this.transport}:${this.nexthops.join(',')}`;
  }

  add(entry: E): void {
    this.waiting.push(entry);
  }

  /** When the next delivery may start (rate delay), or 0 when a start is allowed now. */
  nextStartAt(now: number): number {
    if (this.rateDelayMs <= 0) return 0;
    const at = this.lastStart + this.rateDelayMs;
    return at > now ? at : 0;
  }

  /** Whether an entry can start now. */
  ready(now: number): boolean {
    return this.size > 0 && this.window.canStart(this.busy) && this.nextStartAt(now) === 0;
  }

  /** The next entry, counted busy. Caller checked ready(). */
  take(now: number): E {
    const e = this.waiting[this.head]!;
    this.waiting[this.head++] = undefined as unknown as E;
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
    this.busy++;
    this.lastStart = now;
    return e;
  }

  /** The agent answered. `siteFailure` = the destination itself failed. Returns true when it is now dead. */
  complete(siteFailure: boolean): boolean {
    this.busy--;
    if (siteFailure) return this.window.failed();
    this.window.succeeded(this.busy + 1);
    return false;
  }

  /** Mark dead until `until`; returns the waiting entries (now removed). */
  kill(reason: { reason: string; dsn: string }, until: number): E[] {
    this.deadReason = reason;
    this.deadUntil = until;
    return this.drain();
  }

  /** Remove and return every waiting entry. */
  drain(): E[] {
    const out = this.waiting.slice(this.head);
    this.waiting.length = 0;
    this.head = 0;
    return out;
  }

  /** The dead timer ran out: deliveries may start again. */
  revive(): void {
    this.deadReason = undefined;
    this.deadUntil = 0;
    this.window.revive();
  }

  update(settings: DestinationSettings): void {
    this.rateDelayMs = settings.rateDelayMs;
    this.window.update(this.effective(settings));
  }
}
