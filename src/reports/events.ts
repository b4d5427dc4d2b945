/**
 * events.ts — the one stream of typed delivery events that every consumer of
 * "what happened to the mail" subscribes to: the mail log (Postfix-shaped
 * lines), TLS-RPT aggregation (RFC 8460), Prometheus metrics, the TLS posture
 * report and `tls proof`. Publishers are the parts of the daemon that decide
 * things (intake/cleanup, the queue manager applying agent results); nobody
 * downstream reads log text.
 *
 * Contract:
 * - Events are plain data (delivery/outcome.ts, delivery/types.ts); a
 *   subscriber must not mutate them.
 * - `publish()` calls every subscriber synchronously, in subscription order,
 *   in the main thread. A subscriber that throws is reported once through
 *   `onError` and does not stop the others or the mail flow; a subscriber
 *   that needs I/O queues it itself (the mail path never waits on a
 *   report store).
 * - The mail log subscriber is registered first, so its lines keep Postfix's
 *   order: a delivery's TLS lines immediately before its `status=` lines.
 *
 * Not here: formatting (reports/delivery-log.ts, delivery/tls/summary.ts),
 * storage of any consumer.
 */
import type { TlsSessionRecord } from '../delivery/outcome.ts';
import type { DeliveryTiming, OutcomeStatus } from '../delivery/types.ts';

/** A message was accepted into the queue (after the fsync that made it durable). */
export interface MessageReceivedEvent {
  readonly kind: 'received';
  readonly time: number;
  readonly queueId: string;
  /** `smtpd`, `submission`, `pickup` (sendmail), `bounce` (a notice), `tlsrpt` (a report). */
  readonly origin: string;
  readonly sender: string;
  readonly size: number;
  readonly nrcpt: number;
  /** The Message-ID header's value without angle brackets, when the message has one. */
  readonly messageId?: string;
}

/** One recipient's delivery attempt ended (sent, deferred or bounced). */
export interface RecipientOutcomeEvent {
  readonly kind: 'outcome';
  readonly time: number;
  readonly queueId: string;
  readonly messageId?: string;
  /** The master.cf transport that delivered (`smtp`, `relay`, `error`). */
  readonly transport: string;
  readonly nexthop: string;
  readonly recipient: string;
  readonly origRecipient: string;
  readonly status: OutcomeStatus;
  readonly dsn: string;
  readonly reason: string;
  /** `host[addr]:port` or `none`. */
  readonly relay: string;
  /** Arrival of the message, ms since the epoch (latency = time - arrivalTime). */
  readonly arrivalTime: number;
  /** The TLS session this outcome was decided on, when a server was involved. */
  readonly session?: TlsSessionRecord;
  // Added with the delivery-path reshape (optional; what the mail log line needs beyond the facts above):
  /** The syslog program the outcome is logged under: `sealpost/smtp`, `sealpost/relay/smtp`, `sealpost/qmgr`, `sealpost/error`. */
  readonly program?: string;
  /** When the message last entered the active queue, ms since the epoch (delays=a/b). */
  readonly activeTime?: number;
  /** The agent's time stamps (delays=b/c/d). */
  readonly timing?: DeliveryTiming;
  /** Postfix's conn_use=N. */
  readonly connUse?: number;
  /** smtp_log_tls_feature_status: the `tls=` value, derived from the session's policy and whether TLS was used (absent when off). */
  readonly tls?: string;
}

/** One TLS session (or decision not to open one) — exactly once per session, whatever number of recipients it served. */
export interface TlsSessionEvent {
  readonly kind: 'tls-session';
  readonly queueId: string;
  readonly record: TlsSessionRecord;
  /**
   * The session carried a TLS report (RFC 8460 §3: report delivery is not
   * itself reported on). The publisher sets it when the message is a
   * sealpost TLS-RPT report (reports/tlsrpt/send.ts marks them); the
   * TLS-RPT store skips such sessions.
   */
  readonly tlsRptExempt?: true;
  // Added with the delivery-path reshape (optional):
  /** The syslog program of the delivering service (`sealpost/smtp`): the session's lines go under it. */
  readonly program?: string;
  /** The delivering service's smtp_tls_loglevel: the summary line is logged at ≥ 1. */
  readonly tlsLogLevel?: number;
}

/** A message left the queue for good. */
export interface MessageRemovedEvent {
  readonly kind: 'removed';
  readonly time: number;
  readonly queueId: string;
  readonly reason: 'delivered' | 'expired' | 'deleted';
}

export type DeliveryEvent = MessageReceivedEvent | RecipientOutcomeEvent | TlsSessionEvent | MessageRemovedEvent;

export type Subscriber = (event: DeliveryEvent) => void;

export class EventBus {
  private readonly subscribers: Subscriber[] = [];
  private readonly failed = new Set<Subscriber>();

  constructor(private readonly onError: (err: unknown) => void = () => undefined) {}

  /** Add a subscriber; returns a function that removes it. */
  subscribe(s: Subscriber): () => void {
    this.subscribers.push(s);
    return () => {
      const i = this.subscribers.indexOf(s);
      if (i >= 0) this.subscribers.splice(i, 1);
    };
  }

  publish(event: DeliveryEvent): void {
    for (const s of this.subscribers) {
      try {
        s(event);
      } catch (err) {
        if (!this.failed.has(s)) {
          this.failed.add(s);
          this.onError(err);
        }
      }
    }
  }
}
