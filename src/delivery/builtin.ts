/**
 * builtin.ts — the delivery agents that need no network: error(8) (and its
 * `retry` form) and discard(8). transport(5) routes mail to them with
 * `error:text`, `retry:text`, `discard:text`; the next hop is the reason.
 *
 * Contract (DeliveryAgent, delivery/types.ts):
 * - The reason "may be prefixed with an RFC 3463-compatible detail code; if
 *   none is specified a default 4.0.0 or 5.0.0 code is used instead"
 *   (error(8)); discard(8) defaults to 2.0.0. The code is split off the text
 *   (dsn_split(3)); the rest is the reason in `status=... (reason)`.
 * - error: every recipient `bounced`; retry: every recipient `deferred`;
 *   discard: every recipient `sent`. relay=none; no connection, so the
 *   timing's connected = started.
 * - A code of the wrong class is replaced as bounce(3)/defer(3) do ("ignoring
 *   dsn code"): a bounce always carries 5.x.y, a deferral 4.x.y.
 * - Never touches the spool; never rejects.
 *
 * Not here: soft_bounce (the queue manager's failure policy turns bounces
 * into deferrals for every agent alike), logging (the queue manager writes
 * the to= lines).
 */
import type { DeliveryAgent, DeliveryRequest, DeliveryResult, OutcomeStatus, RecipientOutcome } from './types.ts';

export interface BuiltinAgentOptions {
  /** Clock, ms since the epoch (tests inject one). */
  readonly now?: () => number;
}

/** dsn_split(3): a leading `D.D{1,3}.D{1,3}` code, then the text. */
export function splitDsn(text: string, defaultDsn: string): { dsn: string; text: string } {
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?:\s+|$)/.exec(text.trimStart());
  if (!m) return { dsn: defaultDsn, text: text.trim() };
  return { dsn: m[1]!, text: text.trimStart().slice(m[0].length).trim() };
}

/** bounce(3)/defer(3): a code of the wrong class becomes the default of the right one. */
function classDsn(dsn: string, want: '2' | '4' | '5'): string {
  return dsn.startsWith(want) ? dsn : `${want}.0.0`;
}

function agentFor(status: OutcomeStatus, defaultDsn: string, klass: '2' | '4' | '5', opts: BuiltinAgentOptions): DeliveryAgent {
  const now = opts.now ?? Date.now;
  return {
    async deliver(request: DeliveryRequest): Promise<DeliveryResult> {
      const started = now();
      const { dsn, text } = splitDsn(request.nexthops[0] ?? '', defaultDsn);
      const finished = now();
      const outcomes: RecipientOutcome[] = request.recipients.map((r) => ({
        index: r.index,
        status,
        dsn: classDsn(dsn, klass),
        reason: text,
        relay: 'none',
        timing: { started, connected: started, finished },
      }));
      return { outcomes };
    },
    async close(): Promise<void> {},
  };
}

/** error(8) (`error`: bounce) and its `retry` service (defer). */
export function createErrorAgent(kind: 'error' | 'retry', opts: BuiltinAgentOptions = {}): DeliveryAgent {
  return kind === 'error' ? agentFor('bounced', '5.0.0', '5', opts) : agentFor('deferred', '4.0.0', '4', opts);
}

/** discard(8): "pretends to deliver all recipients", logging the next hop as the reason. */
export function createDiscardAgent(opts: BuiltinAgentOptions = {}): DeliveryAgent {
  return agentFor('sent', '2.0.0', '2', opts);
}
