/**
 * maillog-subscriber.ts — the mail log as a subscriber of the delivery event
 * stream (events.ts): the Postfix-shaped lines of a delivery, written from
 * the typed records, never carried as text.
 *
 *   tls-session  the certificate lines the record carries (as
 *                smtp_tls_loglevel selected them), then the summary line
 *                derived from the record (delivery/tls/summary.ts):
 *                `Verified TLS connection established to mx[addr]:25: TLSv1.3
 *                with cipher ...` (`reused` for a cached connection), at
 *                smtp_tls_loglevel ≥ 1;
 *   outcome      `ID: to=<...>, relay=..., delay=..., delays=..., [tls=...,]
 *                dsn=..., status=...` (delivery-log.ts);
 *   removed      `ID: removed` (qmgr), except for a message deleted by
 *                postsuper, which logs that itself.
 *
 * Log attribution: Postfix readers tie an `smtp[pid]` TLS line to the next
 * `status=` line of the same pid, because one Postfix delivery process makes
 * one delivery at a time. sealpost interleaves many deliveries in one
 * process, so the queue manager publishes a delivery's session events and
 * then its outcome events in one synchronous run, and this subscriber writes
 * each line under the event's `program` (the delivering service's
 * `sealpost/smtp`): a delivery's TLS lines stand immediately before its
 * `status=` lines, contiguous, under the same program and pid, and the rule
 * holds (docs/delivery.md).
 *
 * Contract: synchronous, no I/O of its own (MailLog buffers); never throws
 * for an event it does not know. The program defaults to `smtp` (the log
 * then adds its syslog_name).
 *
 * Not here: the line formats (delivery-log.ts, summary.ts), the log file
 * (maillog.ts).
 */
import { recordSummaryLine } from '../delivery/tls/summary.ts';
import { formatDeliveryLine } from './delivery-log.ts';
import type { DeliveryEvent, RecipientOutcomeEvent, Subscriber, TlsSessionEvent } from './events.ts';
import type { MailLog } from './maillog.ts';

export interface MailLogSubscriberOptions {
  readonly log: MailLog;
  /** postconf(5) delay_logging_resolution_limit (read at each line: reload changes it). */
  readonly resolutionLimit: () => number;
}

function sessionLines(log: MailLog, e: TlsSessionEvent): void {
  const program = e.program ?? 'smtp';
  for (const line of e.record.logLines) log.write(program, line);
  if ((e.tlsLogLevel ?? 1) < 1) return;
  const summary = recordSummaryLine(e.record);
  if (summary) log.write(program, summary);
}

function outcomeLine(log: MailLog, e: RecipientOutcomeEvent, resolutionLimit: number): void {
  const at = e.time;
  log.write(e.program ?? 'smtp', formatDeliveryLine({
    queueId: e.queueId,
    address: e.recipient,
    origAddress: e.origRecipient,
    relay: e.relay,
    ...(e.connUse !== undefined ? { connUse: e.connUse } : {}),
    arrivalTime: e.arrivalTime,
    activeTime: e.activeTime ?? e.arrivalTime,
    timing: e.timing ?? { started: at, connected: at, finished: at },
    ...(e.tls !== undefined ? { tls: e.tls } : {}),
    dsn: e.dsn,
    status: e.status,
    reason: e.reason,
    resolutionLimit,
  }));
}

export function mailLogSubscriber(opts: MailLogSubscriberOptions): Subscriber {
  return (e: DeliveryEvent): void => {
    switch (e.kind) {
      case 'tls-session':
        return sessionLines(opts.log, e);
      case 'outcome':
        return outcomeLine(opts.log, e, opts.resolutionLimit());
      case 'removed':
        // postsuper(1) logs its own `removed` line for a deleted message.
        if (e.reason !== 'deleted') opts.log.write('qmgr', `${e.queueId}: removed`);
        return;
      default:
        // `received`: intake logs its own lines (client=, message-id=, from=).
        return;
    }
  };
}
