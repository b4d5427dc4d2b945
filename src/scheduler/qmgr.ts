/**
 * qmgr.ts — the queue manager, Postfix's qmgr(8): it moves mail from
 * incoming/ (and due mail from deferred/) into active/, routes each
 * recipient, groups recipients into per-destination queues, hands delivery
 * requests to the transport's agent within the concurrency limits, applies
 * the outcomes, sends bounces and delay notices, and then removes the
 * message or defers it with a backoff. While it has room and nothing waits in
 * its feed, it lets the store put new mail straight into active/ (QueueStore
 * setActiveGate; docs/queue-format.md "Straight into active/").
 *
 * Contract:
 * - Crash safety (Postfix's): `start()` moves everything left in active/ back
 *   to incoming/ first. A recipient is marked done only after its outcome; a
 *   non-delivery notice is written to the queue (sender <>) BEFORE the
 *   bounced recipients are marked done. Nothing is lost; a crash can only
 *   duplicate messages that were in flight. (A message whose recipients all
 *   succeed is removed without marking them first: a crash in between
 *   re-delivers an in-flight message, nothing else.)
 * - Memory: at most qmgr_message_active_limit envelopes are loaded; deferred
 *   mail is picked by file mtime without reading envelopes (feed.ts).
 * - Isolation: one DestinationQueue per (transport, next hops). A dead
 *   destination (its agent reported siteDeferral and its failed-cohort
 *   limit was reached) starts nothing for minimal_backoff_time; its waiting
 *   mail, and new mail for it, is deferred in a batch with
 *   `delivery temporarily suspended: REASON` (qmgr_deliver.c), logged as
 *   `sealpost/error` like Postfix's retry service, without any connection.
 *   Other destinations keep going.
 * - Files that vanish or move under it (postsuper -d/-h/-r) are skipped:
 *   ENOENT is never an error.
 * - Events (reports/events.ts): every recipient outcome (the agents', and
 *   the ones it decides itself: routing, dead destinations, missing
 *   transports), every TLS session record of a delivery (once each, before
 *   that delivery's outcomes, in one synchronous run), `removed` when a
 *   message leaves the queue (`deleted` when postsuper took it), `received`
 *   for the notices it queues. soft_bounce is applied here, once, to every
 *   outcome (delivery/smtp/trouble.ts). The mail log is a subscriber: each
 *   outcome under the agent's program (`sealpost/smtp`, `sealpost/relay/smtp`),
 *   routing outcomes under `sealpost/qmgr`, `ID: removed`.
 * - Logs itself (Postfix's shapes): `sealpost/qmgr: ID: from=<s>, size=N,
 *   nrcpt=N (queue active)`, `ID: from=<s>, status=expired, returned to
 *   sender`; notices as `sealpost/bounce: ID: sender non-delivery
 *   notification: NEWID` / `sender delay notification: NEWID`.
 * - The store is the QueueStore interface (queue/store.ts), never the spool's files.
 *
 * Not here: routing (resolve.ts), per-destination windows (destination-queue.ts,
 * concurrency.ts), time arithmetic (backoff.ts, expiry.ts), the agents.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { FlushRequest } from '../daemon/flush.ts';
import { applySoftBounce } from '../delivery/smtp/trouble.ts';
import type { DeliveryRecipient, DeliveryRequest, DeliveryResult, RecipientOutcome } from '../delivery/types.ts';
import { isNotFound } from '../lib/fs-errors.ts';
import { messageFlags, QueueFileFormatError, type QueueEnvelope, type QueueRecipient } from '../queue/queue-file.ts';
import type { QueueStore } from '../queue/store.ts';
import { buildBounce, postmasterCopy, type BounceParams, type BounceRecipient } from '../reports/bounce.ts';
import { formatExpired, formatQueueActive, resolutionLimitOf } from '../reports/delivery-log.ts';
import { EventBus, type MessageRemovedEvent } from '../reports/events.ts';
import type { MailLog } from '../reports/maillog.ts';
import { mailLogSubscriber } from '../reports/maillog-subscriber.ts';
import { nextAttemptTime } from './backoff.ts';
import { DestinationQueue, destinationKey, type DestinationKey } from './destination-queue.ts';
import { isExpired, isWarningDue, type ExpirySettings } from './expiry.ts';
import { QueueFeed, type FeedItem } from './feed.ts';
import type { QmgrRuntime, Route, RuntimeFactory, TransportHandle } from './types.ts';

export interface QueueManagerOptions {
  readonly store: QueueStore;
  readonly log: MailLog;
  /**
   * The delivery event stream (reports/events.ts) the queue manager publishes
   * outcomes, TLS sessions, removals and notice arrivals on. The caller
   * subscribes the mail log first (maillog-subscriber.ts). Without one, the
   * queue manager makes its own with the mail log on `log` as its only subscriber.
   */
  readonly events?: EventBus;
  readonly config: LoadedConfig;
  readonly runtime: RuntimeFactory;
  readonly now?: () => number;
  /** How often incoming/ is re-read for files nobody announced (default 5 s). */
  readonly incomingScanMs?: number;
}

interface ActiveMessage {
  readonly id: string;
  readonly envelope: QueueEnvelope;
  readonly activeTime: number;
  /** Outstanding delivery entries + 1 while being routed. */
  refcount: number;
  /** May have a delay log or warning marker (not a fresh arrival). */
  sideFiles: boolean;
  readonly deferred: Map<number, { readonly dsn: string; readonly reason: string }>;
  readonly bounced: BounceRecipient[];
  /** The file vanished (postsuper): forget the message. */
  gone: boolean;
}

interface Entry {
  readonly msg: ActiveMessage;
  readonly recipients: readonly QueueRecipient[];
}

interface TransportState {
  handle: TransportHandle;
  busy: number;
  readonly queues: Map<string, DestinationQueue<Entry>>;
  /** Queues with waiting entries, in round-robin order. */
  readonly rr: Array<DestinationQueue<Entry>>;
}

/** How many messages are activated (renamed, read, routed) at the same time. */
const ACTIVATION_PARALLELISM = 16;
const ROUTE_BATCH = 100;

function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

function noticeRecipient(r: QueueRecipient, status: string, action: 'failed' | 'delayed', reason: string, o?: RecipientOutcome): BounceRecipient {
  return {
    index: r.index,
    address: r.address,
    origAddress: r.origAddress,
    ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    ...(r.notify !== undefined ? { notify: r.notify } : {}),
    status,
    action,
    reason,
    // RecipientOutcome.remoteMta is `dns; host` (delivery/types.ts); the notice wants the host (bounce.ts adds `dns; `).
    ...(o?.remoteMta !== undefined ? { remoteMta: o.remoteMta.replace(/^dns; /, '') } : {}),
    ...(o?.remoteReply !== undefined ? { remoteReply: o.remoteReply } : {}),
  };
}

/** `delivery temporarily suspended: REASON` (qmgr_deliver.c), never doubled. */
export function suspendedReason(reason: string): string {
  const prefix = 'delivery temporarily suspended: ';
  return reason.startsWith(prefix) ? reason : prefix + reason;
}

export class QueueManager {
  private readonly store: QueueStore;
  private readonly log: MailLog;
  private readonly events: EventBus;
  private config: LoadedConfig;
  private runtime: QmgrRuntime | undefined;
  private readonly feed: QueueFeed;
  private readonly now: () => number;
  private readonly active = new Map<string, ActiveMessage>();
  private readonly transports = new Map<string, TransportState>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly pending = new Set<Promise<unknown>>();
  private activating = 0;
  /** New mail admitted straight into active/ whose commit has not ended yet (admit()). */
  private readonly admitted = new Set<string>();
  /** Admitted mail that landed in active/, by landing time, until its onQueued activates it. */
  private readonly landedDirect = new Map<string, number>();
  private feeding = false;
  private feedAgain = false;
  private started = false;
  private stopping = false;
  private closed = false;
  private rateTimer: NodeJS.Timeout | undefined;
  private deferredTimer: NodeJS.Timeout | undefined;
  private incomingTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: QueueManagerOptions) {
    this.store = opts.store;
    // After stop() returns, a delivery abandoned at the grace limit may still finish: it must not write to a closed log.
    this.log = {
      write: (service, text) => {
        if (!this.closed) opts.log.write(service, text);
      },
      warn: (service, text) => {
        if (!this.closed) opts.log.warn(service, text);
      },
      close: () => undefined,
    };
    this.config = opts.config;
    this.feed = new QueueFeed(opts.store);
    this.now = opts.now ?? Date.now;
    this.events = opts.events ?? new EventBus((err) => this.log.warn('qmgr', `event subscriber failed: ${err instanceof Error ? err.message : String(err)}`));
    if (!opts.events) this.events.subscribe(mailLogSubscriber({ log: this.log, resolutionLimit: () => resolutionLimitOf(this.config) }));
  }

  // ---- life cycle ---------------------------------------------------------

  /** Recover active/, start the scans and deliver. */
  async start(): Promise<void> {
    this.runtime = await this.opts.runtime(this.config);
    // qmgr(8): messages left in active/ by a crash or stop go back to incoming/.
    for (const id of await this.store.list('active')) await this.store.move(id, 'active', 'incoming');
    await this.feed.scanIncoming();
    await this.feed.startDeferredScan(false);
    this.started = true;
    this.armTimers();
    this.store.setActiveGate?.(this.gate);
    this.kick();
  }

  /**
   * New mail straight into active/ (spool.ts ActiveGate): admitted only while nothing waits
   * in the feed (so new mail never overtakes incoming or deferred mail, whose alternation
   * feed.ts keeps) and the active queue and the activation window have room. A landed
   * message is activated when its onQueued comes, after the listener's own log lines (the
   * mail log keeps Postfix's order: smtpd client=, cleanup message-id=, then qmgr); one
   * whose onQueued never comes (the client left before the 250) by the next incoming scan.
   */
  private readonly gate = {
    admit: (id: string): boolean => {
      if (!this.started || this.stopping || !this.feed.idle) return false;
      const busy = this.activating + this.admitted.size + this.landedDirect.size;
      if (busy >= ACTIVATION_PARALLELISM || this.active.size + busy >= Math.max(1, this.config.getInt('qmgr_message_active_limit'))) return false;
      this.admitted.add(id);
      return true;
    },
    landed: (id: string, ok: boolean): void => {
      if (this.admitted.delete(id) && ok) this.landedDirect.set(id, this.now());
    },
  };

  /** Activate new mail that is in active/ already (gate); a stopping queue manager leaves it there for the next start. */
  private activateDirect(id: string): void {
    if (this.stopping) return;
    this.activating++;
    this.track(
      this.activate({ queue: 'active', id, fresh: true }).finally(() => {
        this.activating--;
        this.kick();
      }),
    );
  }

  private armTimers(): void {
    if (this.deferredTimer) clearInterval(this.deferredTimer);
    if (this.incomingTimer) clearInterval(this.incomingTimer);
    // postconf(5) queue_run_delay: the deferred queue scan interval.
    const runDelay = Math.max(1, this.config.getTime('queue_run_delay')) * 1000;
    this.deferredTimer = setInterval(() => {
      if (!this.feed.deferredScanActive) this.track(this.feed.startDeferredScan(false).then(() => this.kick()));
    }, runDelay);
    this.deferredTimer.unref();
    this.incomingTimer = setInterval(() => {
      this.activateLanded();
      this.track(this.feed.scanIncoming().then(() => this.kick()));
    }, this.opts.incomingScanMs ?? 5000);
    this.incomingTimer.unref();
  }

  /** A new message is in incoming/ (listeners, pickup, notices) — or was admitted into active/ (gate). */
  onQueued(id: string): void {
    if (this.landedDirect.delete(id)) {
      this.activateDirect(id);
      return;
    }
    this.feed.addIncoming(id, true);
    if (this.started) this.kick();
  }

  /** postqueue -f / -i / -s. */
  async flush(request: FlushRequest): Promise<void> {
    if (request.kind === 'all') {
      // qmgr(8): a flush also brings dead destinations back to life.
      this.reviveAll();
      await this.feed.scanIncoming();
      await this.feed.startDeferredScan(true);
    } else if (request.kind === 'queue_id') {
      const where = await this.store.locate(request.id, ['deferred', 'incoming']);
      if (where === 'deferred') this.feed.addDeferredNow(request.id);
      else if (where === 'incoming') this.feed.addIncoming(request.id);
    } else {
      await this.flushSite(request.site.toLowerCase());
    }
    this.kick();
  }

  /** postqueue -s SITE: deferred mail with a pending recipient in that domain (or routed to that next hop). */
  private async flushSite(site: string): Promise<void> {
    const bare = site.replace(/^\[(.*)\](:\d+)?$/, '$1');
    for (const t of this.transports.values()) {
      for (const q of t.queues.values()) if (q.dead && q.nexthops.some((h) => h.toLowerCase() === site || h.toLowerCase() === bare)) q.revive();
    }
    for (const id of await this.store.list('deferred')) {
      let env: QueueEnvelope;
      try {
        env = await this.store.readEnvelope('deferred', id);
      } catch {
        continue;
      }
      if (env.recipients.some((r) => r.status === 'pending' && (domainOf(r.address) === site || domainOf(r.address) === bare))) this.feed.addDeferredNow(id);
    }
  }

  /** New configuration: new router, agents and settings; in-flight deliveries finish on the old agents. */
  async reload(config: LoadedConfig): Promise<void> {
    const next = await this.opts.runtime(config);
    const old = this.runtime;
    this.runtime = next;
    this.config = config;
    for (const [name, t] of this.transports) {
      const handle = next.transport(name);
      if (!handle) continue; // no longer in master.cf: its queues drain on the old agent
      t.handle = handle;
      for (const q of t.queues.values()) q.update(handle.destination);
    }
    if (this.started) this.armTimers();
    const inFlight = [...this.pending];
    if (old) this.track(Promise.allSettled(inFlight).then(() => old.close()));
    this.kick();
  }

  /** Landed messages whose onQueued has not come for a second (the listener failed after the commit): activated now. */
  private activateLanded(): void {
    const before = this.now() - 1000;
    for (const [id, at] of this.landedDirect) {
      if (at > before) break;
      this.landedDirect.delete(id);
      this.activateDirect(id);
    }
  }

  /** Stop: no new deliveries; wait up to graceMs for those in flight; messages stay in active/ for the next start. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    this.store.setActiveGate?.(undefined);
    for (const t of [this.deferredTimer, this.incomingTimer, this.rateTimer, ...this.timers]) if (t) clearTimeout(t);
    this.timers.clear();
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, graceMs));
    });
    const drain = (async () => {
      while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    })();
    await Promise.race([drain, grace]);
    if (timer) clearTimeout(timer);
    this.closed = true;
    await this.runtime?.close().catch(() => undefined);
  }

  /** Counters for tests and metrics. */
  stats(): { active: number; inFlight: number; queues: number; dead: string[] } {
    let inFlight = 0;
    let queues = 0;
    const dead: string[] = [];
    for (const t of this.transports.values()) {
      inFlight += t.busy;
      for (const q of t.queues.values()) {
        queues++;
        if (q.dead) dead.push(q.describe());
      }
    }
    return { active: this.active.size, inFlight, queues, dead };
  }

  private track<T>(p: Promise<T>): void {
    const q = p.catch((err: unknown) => this.log.warn('qmgr', `internal error: ${err instanceof Error ? err.message : String(err)}`));
    this.pending.add(q);
    void q.finally(() => this.pending.delete(q));
  }

  // ---- feeding the active queue -------------------------------------------

  private kick(): void {
    if (!this.started || this.stopping) return;
    this.pump();
    if (this.feeding) {
      this.feedAgain = true;
      return;
    }
    this.feeding = true;
    this.track(
      this.feedLoop().finally(() => {
        this.feeding = false;
        if (this.feedAgain) {
          this.feedAgain = false;
          this.kick();
        }
      }),
    );
  }

  private async feedLoop(): Promise<void> {
    const limit = Math.max(1, this.config.getInt('qmgr_message_active_limit'));
    while (!this.stopping && this.activating < ACTIVATION_PARALLELISM && this.active.size + this.activating < limit) {
      const item = await this.feed.next(this.now());
      if (!item) return;
      this.activating++;
      this.track(
        this.activate(item).finally(() => {
          this.activating--;
          this.kick();
        }),
      );
    }
  }

  /** Move one file into active/, read it, route it. */
  private async activate(item: FeedItem): Promise<void> {
    const { id } = item;
    if (this.active.has(id)) return;
    // Mail admitted straight into active/ (gate) is there already.
    if (item.queue !== 'active' && !(await this.store.move(id, item.queue, 'active'))) return; // vanished or moved (postsuper)
    let envelope: QueueEnvelope;
    try {
      envelope = await this.store.readEnvelope('active', id);
    } catch (err) {
      if (isNotFound(err)) return;
      if (err instanceof QueueFileFormatError) {
        this.log.warn('qmgr', `${id}: ${err.message}: moving the file to the corrupt queue`);
        await this.store.quarantine('active', id);
        return;
      }
      throw err;
    }
    const msg: ActiveMessage = {
      id,
      envelope,
      activeTime: this.now(),
      refcount: 1,
      sideFiles: !item.fresh,
      deferred: new Map(),
      bounced: [],
      gone: false,
    };
    this.active.set(id, msg);
    // The previous attempt's delay reasons go; this attempt writes new ones.
    if (item.queue === 'deferred') await this.store.clearDelayReasons(id);
    const pending = envelope.recipients.filter((r) => r.status === 'pending');
    this.log.write('qmgr', formatQueueActive(id, envelope.sender, envelope.messageSize, pending.length));
    if (!envelope.forcedExpire) await this.route(msg, pending);
    else {
      // postsuper -e/-f: no delivery attempt; the message expires below.
      for (const r of pending) msg.deferred.set(r.index, { dsn: '4.7.0', reason: 'message is administratively expired' });
    }
    this.release(msg);
  }

  // ---- routing ------------------------------------------------------------

  private async resolveAll(msg: ActiveMessage, rcpts: readonly QueueRecipient[]): Promise<Route[]> {
    const router = this.runtime!.router;
    const out: Route[] = [];
    for (let i = 0; i < rcpts.length; i += ROUTE_BATCH) {
      const batch = rcpts.slice(i, i + ROUTE_BATCH);
      out.push(
        ...(await Promise.all(
          batch.map((r) =>
            router.resolve(r.address, msg.envelope.sender).catch(
              (err: unknown): Route => ({ kind: 'defer', dsn: '4.3.0', reason: `address resolver failure: ${err instanceof Error ? err.message : String(err)}` }),
            ),
          ),
        )),
      );
    }
    return out;
  }

  private async route(msg: ActiveMessage, rcpts: readonly QueueRecipient[]): Promise<void> {
    const routes = await this.resolveAll(msg, rcpts);
    const groups = new Map<string, { dest: DestinationKey; rcpts: QueueRecipient[] }>();
    const now = this.now();
    const later: Array<() => Promise<void>> = [];
    const softBounce = this.config.getBool('soft_bounce');
    rcpts.forEach((r, i) => {
      const route = routes[i]!;
      if (route.kind !== 'deliver') {
        // postconf(5) soft_bounce, applied once (trouble.ts), as for every agent's outcome.
        const o = applySoftBounce({ status: route.kind === 'defer' ? 'deferred' : 'bounced', dsn: route.dsn }, softBounce);
        if (o.status === 'deferred') later.push(() => this.deferRecipient(msg, r, 'qmgr', o.dsn, route.reason, now));
        else {
          this.logOutcome('qmgr', msg, r, { dsn: o.dsn, status: 'bounced', reason: route.reason, now });
          msg.bounced.push(noticeRecipient(r, o.dsn, 'failed', route.reason));
        }
      } else {
        const dest: DestinationKey = { transport: route.transport, nexthops: route.nexthops, fallbackRelays: route.fallbackRelays };
        const key = destinationKey(dest);
        const g = groups.get(key);
        if (g) g.rcpts.push(r);
        else groups.set(key, { dest, rcpts: [r] });
      }
    });
    for (const { dest, rcpts: list } of groups.values()) {
      const handle = this.runtime!.transport(dest.transport);
      if (!handle) {
        // qmgr(8): a transport that master.cf does not define.
        for (const r of list) later.push(() => this.deferRecipient(msg, r, 'qmgr', '4.3.0', 'mail transport unavailable', now));
        continue;
      }
      const t = this.transportState(handle);
      const q = this.queueFor(t, dest);
      if (q.dead) {
        const why = q.deadReason!;
        for (const r of list) later.push(() => this.deferRecipient(msg, r, 'error', why.dsn, suspendedReason(why.reason), now, dest.transport));
        continue;
      }
      const limit = Math.max(1, handle.recipientLimit);
      for (let i = 0; i < list.length; i += limit) {
        msg.refcount++;
        q.add({ msg, recipients: list.slice(i, i + limit) });
      }
      if (!t.rr.includes(q)) t.rr.push(q);
    }
    this.pump();
    for (const f of later) await f();
  }

  private transportState(handle: TransportHandle): TransportState {
    let t = this.transports.get(handle.name);
    if (!t) {
      t = { handle, busy: 0, queues: new Map(), rr: [] };
      this.transports.set(handle.name, t);
    }
    return t;
  }

  private queueFor(t: TransportState, dest: DestinationKey): DestinationQueue<Entry> {
    const key = destinationKey(dest);
    let q = t.queues.get(key);
    if (!q) {
      q = new DestinationQueue<Entry>(dest, t.handle.destination);
      t.queues.set(key, q);
    }
    return q;
  }

  // ---- scheduling -----------------------------------------------------------

  /** Start every delivery the limits allow (transport maxproc, destination windows, rate delays). */
  private pump(): void {
    if (!this.started || this.stopping) return;
    const now = this.now();
    let wakeAt = Infinity;
    for (const t of this.transports.values()) {
      while (t.handle.maxproc === 0 || t.busy < t.handle.maxproc) {
        const picked = this.pickQueue(t, now);
        if (picked.wakeAt < wakeAt) wakeAt = picked.wakeAt;
        if (!picked.queue) break;
        const entry = picked.queue.take(now);
        t.busy++;
        this.track(this.deliver(t, picked.queue, entry));
      }
    }
    if (wakeAt < Infinity && !this.rateTimer) {
      this.rateTimer = setTimeout(() => {
        this.rateTimer = undefined;
        this.pump();
      }, Math.max(1, wakeAt - now));
      this.rateTimer.unref();
    }
  }

  /** Round robin over the transport's queues with waiting mail. */
  private pickQueue(t: TransportState, now: number): { queue?: DestinationQueue<Entry>; wakeAt: number } {
    let wakeAt = Infinity;
    for (let n = t.rr.length; n > 0; n--) {
      const q = t.rr.shift()!;
      if (q.size === 0) {
        this.maybeDrop(t, q);
        continue;
      }
      t.rr.push(q);
      if (q.ready(now)) return { queue: q, wakeAt };
      const at = q.nextStartAt(now);
      if (at > 0 && at < wakeAt) wakeAt = at;
    }
    return { wakeAt };
  }

  /**
   * Forget an idle queue (its window starts over next time, as in Postfix's
   * qmgr_queue_done). Deliberately unlike Postfix, a queue that has failures
   * since its last success is kept: mail that trickles in one message at a
   * time for a dead destination still adds up to a failed cohort, instead of
   * each message opening a fresh queue and a fresh connection attempt.
   */
  private maybeDrop(t: TransportState, q: DestinationQueue<Entry>): void {
    if (q.size === 0 && q.busy === 0 && q.clean) t.queues.delete(q.key());
  }

  private request(entry: Entry, q: DestinationQueue<Entry>): DeliveryRequest {
    const e = entry.msg.envelope;
    return {
      queueId: entry.msg.id,
      queueFile: this.store.path('active', entry.msg.id),
      sender: e.sender,
      recipients: entry.recipients as readonly DeliveryRecipient[],
      ...messageFlags(e),
      messageSize: e.messageSize,
      arrivalTime: e.arrivalTime,
      activeTime: entry.msg.activeTime,
      transport: q.transport,
      nexthops: q.nexthops,
      fallbackRelays: q.fallbackRelays,
    };
  }

  private async deliver(t: TransportState, q: DestinationQueue<Entry>, entry: Entry): Promise<void> {
    const handle = t.handle;
    const started = this.now();
    let result: DeliveryResult;
    try {
      result = await handle.agent.deliver(this.request(entry, q));
    } catch (err) {
      // delivery/types.ts: a rejection is a programming error; the mail waits.
      this.log.warn('qmgr', `${entry.msg.id}: ${handle.name} delivery agent failed: ${err instanceof Error ? err.message : String(err)}`);
      const timing = { started, connected: started, finished: this.now() };
      result = { outcomes: entry.recipients.map((r) => ({ index: r.index, status: 'deferred', dsn: '4.3.0', reason: 'unknown mail transport error', relay: 'none', timing })) };
    }
    t.busy--;
    const wasDead = q.dead;
    const nowDead = q.complete(result.siteDeferral !== undefined) && !wasDead;
    // The queue dies right after this delivery's lines are published (before any await, so nothing
    // else is dispatched to it): the outcome that throttled comes first in the log, as in Postfix
    // (smtp(8) logs it, then qmgr suspends the destination).
    const kill = nowDead ? () => this.killQueue(q, result.siteDeferral!) : undefined;
    try {
      await this.applyOutcomes(entry, result, handle, kill);
    } finally {
      this.release(entry.msg);
      if (q.size === 0) this.maybeDrop(t, q);
      this.pump();
    }
  }

  /**
   * Apply an agent's result: soft_bounce once (trouble.ts), publish the
   * delivery's TLS sessions and then its outcomes in one synchronous run (so
   * the mail log writes a delivery's TLS lines right before its `status=`
   * lines), then `afterPublish` (the dead-destination kill, whose batch
   * deferrals so follow the outcome that caused them), then record
   * deferrals and marks in the store.
   */
  private async applyOutcomes(entry: Entry, result: DeliveryResult, handle: TransportHandle, afterPublish?: () => void): Promise<void> {
    const msg = entry.msg;
    const byIndex = new Map(result.outcomes.map((o) => [o.index, o]));
    const softBounce = this.config.getBool('soft_bounce');
    const settled = entry.recipients.map((r) => {
      const now = this.now();
      const o = byIndex.get(r.index) ?? { index: r.index, status: 'deferred', dsn: '4.3.0', reason: 'unknown mail transport error', relay: 'none', timing: { started: now, connected: now, finished: now } };
      return { r, o: applySoftBounce(o, softBounce) };
    });
    this.publishDelivery(msg, result, settled, handle);
    afterPublish?.();
    const sent: number[] = [];
    for (const { r, o } of settled) {
      if (o.status === 'sent') sent.push(r.index);
      else if (o.status === 'bounced') msg.bounced.push(noticeRecipient(r, o.dsn, 'failed', o.reason, o));
      else await this.recordDeferral(msg, r, o.dsn, o.reason);
    }
    // Skip the per-recipient marks when the whole message is about to be removed (see the header).
    const allSent = sent.length === entry.recipients.length;
    const removedNext = allSent && msg.refcount === 1 && msg.deferred.size === 0 && msg.bounced.length === 0;
    if (sent.length > 0 && !removedNext && !msg.gone) {
      try {
        await this.store.markDone('active', msg.id, sent);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        msg.gone = true;
      }
    }
  }

  /** The events of one delivery: its sessions (once each), then one outcome per recipient. */
  private publishDelivery(msg: ActiveMessage, result: DeliveryResult, settled: readonly { r: QueueRecipient; o: RecipientOutcome }[], handle: TransportHandle): void {
    if (this.closed) return;
    const sessions = result.sessions ?? [];
    for (const record of sessions) {
      this.events.publish({ kind: 'tls-session', queueId: msg.id, record, program: handle.logProgram, ...(handle.tlsLogLevel !== undefined ? { tlsLogLevel: handle.tlsLogLevel } : {}) });
    }
    for (const { r, o } of settled) {
      const session = o.session !== undefined ? sessions[o.session] : undefined;
      this.publishOutcome(msg, r, o, { program: handle.logProgram, transport: handle.name, nexthop: session?.nexthop ?? '', ...(session ? { session } : {}) });
    }
  }

  private publishOutcome(
    msg: ActiveMessage, r: QueueRecipient, o: Pick<RecipientOutcome, 'status' | 'dsn' | 'reason' | 'relay' | 'timing' | 'connUse' | 'tls'>,
    via: { program: string; transport: string; nexthop: string; session?: NonNullable<DeliveryResult['sessions']>[number] },
  ): void {
    if (this.closed) return;
    this.events.publish({
      kind: 'outcome',
      time: o.timing.finished,
      queueId: msg.id,
      transport: via.transport,
      nexthop: via.nexthop,
      recipient: r.address,
      origRecipient: r.origAddress,
      status: o.status,
      dsn: o.dsn,
      reason: o.reason,
      relay: o.relay,
      arrivalTime: msg.envelope.arrivalTime,
      ...(via.session ? { session: via.session } : {}),
      program: via.program,
      activeTime: msg.activeTime,
      timing: o.timing,
      ...(o.connUse !== undefined ? { connUse: o.connUse } : {}),
      ...(o.tls !== undefined ? { tls: o.tls } : {}),
    });
  }

  private removed(queueId: string, reason: MessageRemovedEvent['reason']): void {
    if (!this.closed) this.events.publish({ kind: 'removed', time: this.now(), queueId, reason });
  }

  /** An outcome the queue manager decides itself (routing, a dead destination, a missing transport): relay=none, no agent. */
  private logOutcome(
    program: string,
    msg: ActiveMessage,
    r: QueueRecipient,
    p: { dsn: string; status: 'deferred' | 'bounced'; reason: string; now: number; transport?: string },
  ): void {
    const timing = { started: p.now, connected: p.now, finished: p.now };
    this.publishOutcome(msg, r, { status: p.status, dsn: p.dsn, reason: p.reason, relay: 'none', timing }, { program, transport: p.transport ?? program, nexthop: '' });
  }

  private async deferRecipient(msg: ActiveMessage, r: QueueRecipient, program: string, dsn: string, reason: string, now: number, transport?: string): Promise<void> {
    this.logOutcome(program, msg, r, { dsn, status: 'deferred', reason, now, ...(transport ? { transport } : {}) });
    await this.recordDeferral(msg, r, dsn, reason);
  }

  /** The delay reason goes to defer/ID (mailq shows it) and is kept for an expiry notice. */
  private async recordDeferral(msg: ActiveMessage, r: QueueRecipient, dsn: string, reason: string): Promise<void> {
    msg.deferred.set(r.index, { dsn, reason });
    msg.sideFiles = true;
    if (msg.gone) return;
    await this.store.setDelayReason(msg.id, { index: r.index, address: r.address, reason, status: dsn });
  }

  /** The destination is dead: defer its waiting mail in a batch, revive it after minimal_backoff_time. */
  private killQueue(q: DestinationQueue<Entry>, why: { reason: string; dsn: string }): void {
    const backoffMs = this.config.getTime('minimal_backoff_time') * 1000;
    const entries = q.kill(why, this.now() + backoffMs);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      q.revive();
      const t = this.transports.get(q.transport);
      if (t) this.maybeDrop(t, q);
      this.pump();
    }, backoffMs);
    timer.unref();
    this.timers.add(timer);
    if (entries.length === 0) return;
    this.track(
      (async () => {
        const reason = suspendedReason(why.reason);
        for (const entry of entries) {
          const now = this.now();
          for (const r of entry.recipients) await this.deferRecipient(entry.msg, r, 'error', why.dsn, reason, now, q.transport);
          this.release(entry.msg);
        }
      })(),
    );
  }

  private reviveAll(): void {
    for (const t of this.transports.values()) for (const q of t.queues.values()) if (q.dead) q.revive();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  // ---- finishing a message ------------------------------------------------

  private release(msg: ActiveMessage): void {
    if (--msg.refcount === 0) this.track(this.finish(msg));
  }

  private expirySettings(): ExpirySettings {
    return {
      maximalQueueLifetimeSec: this.config.getTime('maximal_queue_lifetime'),
      bounceQueueLifetimeSec: this.config.getTime('bounce_queue_lifetime'),
      delayWarningSec: this.config.getTime('delay_warning_time'),
    };
  }

  /** qmgr_active_done(): notices, then remove or defer. */
  private async finish(msg: ActiveMessage): Promise<void> {
    try {
      if (!msg.gone) await this.finishFile(msg);
      else this.removed(msg.id, 'deleted');
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.warn('qmgr', `${msg.id}: ${err instanceof Error ? err.message : String(err)}: the message stays in the active queue until the next start`);
      }
    } finally {
      this.active.delete(msg.id);
      this.kick();
    }
  }

  private async finishFile(msg: ActiveMessage): Promise<void> {
    const id = msg.id;
    if (msg.bounced.length > 0) {
      // The notice is queued before the recipients are marked done (crash safety).
      if (!(await this.sendNotice('failure', msg, msg.bounced))) {
        for (const b of msg.bounced) msg.deferred.set(b.index, { dsn: '4.3.0', reason: 'bounce notice could not be queued' });
      } else await this.store.markDone('active', id, msg.bounced.map((b) => b.index));
    }
    if (msg.deferred.size === 0) {
      if (await this.store.remove('active', id, { sideFiles: msg.sideFiles })) this.removed(id, 'delivered');
      return;
    }
    const now = this.now();
    const settings = this.expirySettings();
    const env = msg.envelope;
    if (isExpired(env, now, settings)) {
      this.log.write('qmgr', formatExpired(id, env.sender));
      const rcpts = env.recipients
        .filter((r) => msg.deferred.has(r.index))
        .map((r) => {
          const d = msg.deferred.get(r.index)!;
          return noticeRecipient(r, d.dsn, 'failed', d.reason);
        });
      if (await this.sendNotice('failure', msg, rcpts)) {
        if (await this.store.remove('active', id)) this.removed(id, 'expired');
        return;
      }
    } else if (isWarningDue(env, false, now, settings) && !(await this.store.isWarned(id))) {
      const rcpts = env.recipients
        .filter((r) => msg.deferred.has(r.index))
        .map((r) => {
          const d = msg.deferred.get(r.index)!;
          return noticeRecipient(r, d.dsn, 'delayed', d.reason);
        });
      if (await this.sendNotice('delay', msg, rcpts)) await this.store.markWarned(id);
    }
    // qmgr_active_defer(): the time stamp first, then the rename, so a scan never sees a stale time.
    await this.store.setNextAttempt(
      'active',
      id,
      nextAttemptTime(now, env.arrivalTime, { minimalSec: this.config.getTime('minimal_backoff_time'), maximalSec: this.config.getTime('maximal_backoff_time') }),
    );
    await this.store.move(id, 'active', 'deferred');
  }

  /** Build and queue a notice (and the notify_classes postmaster copy). True when queued or none is due (null sender, NOTIFY=NEVER). */
  private async sendNotice(kind: 'failure' | 'delay', msg: ActiveMessage, recipients: BounceRecipient[]): Promise<boolean> {
    if (recipients.length === 0) return true;
    const what = kind === 'failure' ? 'non-delivery' : 'delay';
    try {
      const content = await this.store.readContent('active', msg.id);
      const p: BounceParams = { kind, queueId: msg.id, envelope: msg.envelope, content, recipients, config: this.config, now: this.now() };
      const notice = buildBounce(p);
      if (notice) {
        const id = await this.queueNotice(notice);
        this.log.write('bounce', `${msg.id}: sender ${what} notification: ${id}`);
        this.onQueued(id);
      }
      const copy = postmasterCopy(p);
      if (copy) {
        const id = await this.queueNotice(copy);
        this.log.write('bounce', `${msg.id}: postmaster ${what} notification: ${id}`);
        this.onQueued(id);
      }
      return true;
    } catch (err) {
      if (isNotFound(err)) throw err;
      this.log.warn('bounce', `${msg.id}: cannot queue a ${what} notification: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  /**
   * Queue a notice with the original's envelope flags (bounce.ts noticeFlags(); Postfix's
   * bounce daemon posts it with the original's sendopts): SMTPUTF8 as requested, 8BITMIME
   * when the notice is 8bit, REQUIRETLS and TLS-Required: No as bounce.ts noticeTlsProperties() says.
   */
  private async queueNotice(n: import('../reports/bounce.ts').BounceMessage): Promise<string> {
    const arrival = this.now();
    const envelope = {
      arrivalTime: arrival,
      sender: n.sender,
      recipients: [{ address: n.recipient, origAddress: n.recipient }],
      smtputf8: n.smtputf8,
      eightBitMime: n.eightBitMime,
      requireTls: n.requireTls,
      tlsRequiredNo: n.tlsRequiredNo ?? false,
    };
    const id = await this.store.writeMessage(envelope, n.content, 'incoming');
    // A notice is a message the queue received (events.ts `received`, origin `bounce`).
    if (!this.closed) this.events.publish({ kind: 'received', time: arrival, queueId: id, origin: 'bounce', sender: n.sender, size: n.content.length, nrcpt: 1 });
    return id;
  }
}
