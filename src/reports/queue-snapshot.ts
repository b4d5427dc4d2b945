/**
 * queue-snapshot.ts — what the status page shows of the queue: message
 * counts per queue, the qshape table (recipient domain × age) of the mail
 * that waits for delivery, and the current deferrals grouped by destination
 * domain and reason, with their oldest arrival and one recipient to explain.
 *
 * Contract:
 * - Read-only and lenient: files that vanish or do not parse are skipped;
 *   nothing is moved. Envelopes only (never message content); delay reasons
 *   from the defer logs (queue/defer-log.ts), read only for messages that have one.
 * - Bounded: at most `limit` messages (default 20 000) are read, queues in
 *   the order incoming, active, deferred; `truncated` says when more were
 *   there. The walk yields to the event loop every 256 files, so a daemon
 *   serving the page keeps delivering.
 * - The shape covers incoming, active and deferred (hold is read for its
 *   oldest arrival, not shaped: held mail is not waiting for delivery).
 *
 * Not here: rendering (http/status-page.ts), the qshape layout (queue-shape.ts).
 */
import { MESSAGE_QUEUES, type MessageQueue, type Spool } from '../queue/spool.ts';
import { QueueShape } from './queue-shape.ts';
import { recipientDomain } from './posture.ts';

export interface DeferralGroup {
  readonly domain: string;
  readonly reason: string;
  recipients: number;
  readonly messages: Set<string>;
  oldestArrival: number;
  readonly sampleRecipient: string;
}

export interface QueueSnapshot {
  readonly taken: number;
  readonly counts: Readonly<Record<MessageQueue, number>>;
  readonly shape: QueueShape;
  /** By recipients (descending), then domain. */
  readonly deferrals: readonly DeferralGroup[];
  /** The oldest arrival time (ms) per queue among the messages read. */
  readonly oldestArrival: Readonly<Partial<Record<MessageQueue, number>>>;
  /** One queued recipient per destination domain (for the explain links). */
  readonly sampleRecipients: ReadonlyMap<string, string>;
  readonly scanned: number;
  readonly truncated: boolean;
}

const READ: readonly MessageQueue[] = ['incoming', 'active', 'deferred', 'hold'];

export async function takeSnapshot(spool: Spool, opts: { limit?: number; now?: number } = {}): Promise<QueueSnapshot> {
  const now = opts.now ?? Date.now();
  const limit = opts.limit ?? 20_000;
  const counts = {} as Record<MessageQueue, number>;
  const lists = new Map<MessageQueue, string[]>();
  for (const q of MESSAGE_QUEUES) {
    const ids = spool.list(q);
    counts[q] = ids.length;
    lists.set(q, ids);
  }
  const shape = new QueueShape({}, Math.floor(now / 1000));
  const groups = new Map<string, DeferralGroup>();
  const samples = new Map<string, string>();
  const oldestArrival: Partial<Record<MessageQueue, number>> = {};
  const withLog = spool.delayLogIds();
  let scanned = 0;
  let truncated = false;
  for (const q of READ) {
    for (const id of lists.get(q)!) {
      if (scanned >= limit) {
        truncated = true;
        break;
      }
      if (++scanned % 256 === 0) await new Promise((r) => setImmediate(r));
      let env;
      try {
        env = spool.readEnvelope(q, id);
      } catch {
        continue;
      }
      oldestArrival[q] = Math.min(oldestArrival[q] ?? Infinity, env.arrivalTime);
      if (q === 'hold') continue;
      const pending = env.recipients.filter((r) => r.status === 'pending');
      shape.add(Math.floor(env.arrivalTime / 1000), env.sender, pending.map((r) => r.address));
      for (const r of pending) {
        const d = recipientDomain(r.address);
        if (!samples.has(d)) samples.set(d, r.address);
      }
      if (q !== 'deferred') continue;
      const reasons = withLog.has(id) ? spool.readDelayReasons(id) : new Map();
      for (const r of pending) {
        const d = recipientDomain(r.address);
        const reason = reasons.get(r.index)?.reason ?? '(no reason recorded)';
        const k = `${d}\u0000${reason}`;
        let g = groups.get(k);
        if (!g) groups.set(k, (g = { domain: d, reason, recipients: 0, messages: new Set(), oldestArrival: env.arrivalTime, sampleRecipient: r.address }));
        g.recipients++;
        g.messages.add(id);
        g.oldestArrival = Math.min(g.oldestArrival, env.arrivalTime);
      }
    }
  }
  const deferrals = [...groups.values()].sort((a, b) => b.recipients - a.recipients || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  return { taken: now, counts, shape, deferrals, oldestArrival, sampleRecipients: samples, scanned, truncated };
}
