/**
 * received-event.ts — the `received` delivery event (events.ts) as intake
 * publishes it: smtpd at the end of DATA and pickup for sendmail's files,
 * each right after the fsync that made the message durable.
 *
 * Contract:
 * - `receivedEvent()` is pure: the origin from the master.cf service
 *   (`submission`/`submissions` and every service named `submission...` →
 *   `submission`, any other smtpd service → `smtpd`; pickup says `pickup`),
 *   the Message-ID without its angle brackets and absent when the message
 *   has none (cleanup reports `<>` then).
 * - `Publish` is the function the master hands to intake through the smtpd
 *   and pickup contexts (it is `EventBus.publish` of the daemon's bus).
 *
 * Not here: the bus (events.ts), who counts the event (metrics.ts, proof.ts).
 */
import type { DeliveryEvent, MessageReceivedEvent } from './events.ts';

export type Publish = (event: DeliveryEvent) => void;

/** The `origin` of a message taken in by the master.cf smtpd service `service`. */
export function smtpdOrigin(service: string): 'smtpd' | 'submission' {
  return /^submission/i.test(service) ? 'submission' : 'smtpd';
}

/** `<id@host>` → `id@host`; `<>` or empty → undefined. */
export function bareMessageId(value: string | undefined): string | undefined {
  const v = (value ?? '').trim().replace(/^<(.*)>$/s, '$1').trim();
  return v === '' ? undefined : v;
}

export function receivedEvent(f: {
  readonly queueId: string;
  readonly origin: string;
  readonly sender: string;
  readonly size: number;
  readonly nrcpt: number;
  readonly messageId?: string | undefined;
  readonly time?: number;
}): MessageReceivedEvent {
  const messageId = bareMessageId(f.messageId);
  return {
    kind: 'received',
    time: f.time ?? Date.now(),
    queueId: f.queueId,
    origin: f.origin,
    sender: f.sender,
    size: f.size,
    nrcpt: f.nrcpt,
    ...(messageId !== undefined ? { messageId } : {}),
  };
}
