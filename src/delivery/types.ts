/**
 * types.ts — the contract between the queue manager (src/scheduler/) and the
 * delivery agents (src/delivery/smtp/, and the built-in error/discard agents):
 * a DeliveryRequest goes in, one RecipientOutcome per recipient comes out.
 *
 * Contract:
 * - A request is one message, a subset of its recipients, all for the same
 *   transport and next hop (Postfix's qmgr "delivery request" to smtp(8)).
 *   Requests are plain data (no functions, no sockets), so an agent can run in
 *   a worker thread or another process.
 * - The agent reads the content from `queueFile` (read-only) and never writes
 *   to the spool: it returns outcomes; the queue manager marks recipients done,
 *   records delay reasons, writes the `to=` log lines and the bounces.
 * - `deliver()` never rejects for a delivery problem: every failure is an
 *   outcome (deferred or bounced) with Postfix's reason text. It rejects only
 *   for programming errors, which the queue manager turns into deferrals.
 * - Results are plain data that cross the worker boundary: with the outcomes,
 *   one session record per TLS session (`sessions`, delivery/outcome.ts);
 *   each outcome names the record it was decided on (`session`). The TLS
 *   summary and certificate lines are derived from those records by the mail
 *   log subscriber (reports/maillog-subscriber.ts), next to the delivery's
 *   `status=` lines. The agent itself logs only what is not about a recipient
 *   or a TLS session: `connect to ...` failures, `Host offered STARTTLS`,
 *   warnings.
 *
 * Not here: routing (scheduler/resolve.ts), TLS policy (delivery/tls/).
 */
import type { DsnNotify } from '../queue/queue-file.ts';
import type { TlsSessionRecord } from './outcome.ts';

export interface DeliveryRecipient {
  /** The recipient's index in the queue file. */
  readonly index: number;
  readonly address: string;
  readonly origAddress: string;
  /** RFC 3461 ORCPT as received (`rfc822;bob@example.com`). */
  readonly orcpt?: string;
  readonly notify?: readonly DsnNotify[];
}

export interface DeliveryRequest {
  readonly queueId: string;
  /** Absolute path of the queue file (in `active/`); the content is read from it. */
  readonly queueFile: string;
  /** Envelope sender; '' for the null sender. */
  readonly sender: string;
  readonly recipients: readonly DeliveryRecipient[];
  readonly envid?: string;
  readonly ret?: 'FULL' | 'HDRS';
  readonly smtputf8: boolean;
  readonly eightBitMime: boolean;
  /** RFC 8689 REQUIRETLS was given on MAIL FROM. */
  readonly requireTls: boolean;
  /** RFC 8689 §4.2 `TLS-Required: No` header present. */
  readonly tlsRequiredNo: boolean;
  /** Postfix's message_size (SIZE= on MAIL FROM). */
  readonly messageSize: number;
  /** Arrival time, ms since the epoch. */
  readonly arrivalTime: number;
  /** When the message last entered the active queue, ms since the epoch (delays=a ends here). */
  readonly activeTime: number;
  /** The master.cf service that delivers (transport(5) transport field): `smtp`, `relay`, ... */
  readonly transport: string;
  /**
   * The next hop as routing chose it, verbatim: `example.com`, `[10.0.0.1]:2525`,
   * `mail.example.net:587`. A relayhost/transport list (Postfix ≥3.5) gives
   * several, tried in order. The TLS policy key is each hop verbatim.
   */
  readonly nexthops: readonly string[];
  /** smtp_fallback_relay hops, tried after the primary next hops failed (not for bracketed relayhosts as Postfix decides). */
  readonly fallbackRelays: readonly string[];
}

export type OutcomeStatus = 'sent' | 'deferred' | 'bounced';

/** Milliseconds since the epoch at the boundaries of Postfix's delays=a/b/c/d. */
export interface DeliveryTiming {
  /** The agent began work on the request (end of b). */
  readonly started: number;
  /** Connection set up (DNS, TCP, greeting, EHLO, STARTTLS, AUTH) or reused; MAIL FROM is next (end of c). */
  readonly connected: number;
  /** The outcome became known (end of d). */
  readonly finished: number;
}

export interface RecipientOutcome {
  readonly index: number;
  readonly status: OutcomeStatus;
  /** RFC 3463 enhanced status `X.Y.Z`. */
  readonly dsn: string;
  /**
   * The text Postfix puts in the parentheses of `status=...`: the remote reply
   * (`250 2.0.0 Ok: queued as 4F1...`) or a reason
   * (`host mx.example.com[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command)`,
   * `connect to mx.example.com[192.0.2.1]:25: Connection refused`).
   */
  readonly reason: string;
  /** `host[addr]:port` of the server that gave the outcome, or `none`. */
  readonly relay: string;
  /** Set (N ≥ 2) when the connection had been used before: Postfix's `conn_use=N`. */
  readonly connUse?: number;
  /** smtp_log_tls_feature_status: the `tls=` field value (`may:none`, `encrypt`, `verify`, ...). */
  readonly tls?: string;
  /** The remote server's reply that decided the outcome, when there was one (for DSN Diagnostic-Code). */
  readonly remoteReply?: string;
  /** The remote host name for DSN Remote-MTA (`dns; mx.example.com`). */
  readonly remoteMta?: string;
  /** Index into DeliveryResult.sessions of the session this outcome was decided on (absent when no server was involved). */
  readonly session?: number;
  readonly timing: DeliveryTiming;
}

export interface DeliveryResult {
  /** Exactly one outcome per request recipient, any order. */
  readonly outcomes: readonly RecipientOutcome[];
  /**
   * Every TLS session of the request in the order they happened, including
   * servers tried before the one that decided (delivery/outcome.ts). Plain
   * data: it crosses the worker boundary with the outcomes.
   */
  readonly sessions?: readonly TlsSessionRecord[];
  /**
   * The destination itself failed (every server unreachable, or a TLS
   * requirement not met that Postfix throttles on): the queue manager marks the
   * destination dead for minimal_backoff_time and defers its queued mail with
   * `delivery temporarily suspended: REASON` (qmgr_deliver.c).
   */
  readonly siteDeferral?: { readonly reason: string; readonly dsn: string };
}

export interface DeliveryAgent {
  deliver(request: DeliveryRequest): Promise<DeliveryResult>;
  /** Close cached connections (stop, reload). */
  close(): Promise<void>;
}
