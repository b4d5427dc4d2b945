/**
 * delivery-log.ts — the text of Postfix's per-message and per-recipient
 * delivery log lines (global/log_adhoc.c, qmgr), without the
 * `sealpost/smtp[pid]: ` prefix (maillog.ts adds that):
 *
 *   ID: to=<rcpt>[, orig_to=<orig>], relay=R[, conn_use=N], delay=D, delays=a/b/c/d[, tls=T], dsn=X.Y.Z, status=S (TEXT)
 *   ID: from=<sender>, size=N, nrcpt=N (queue active)
 *   ID: from=<sender>, status=expired, returned to sender
 *
 * Contract:
 * - Pure functions; no clock: every time comes from the caller (ms since the epoch).
 * - Delays follow log_adhoc.c: delay = finished - arrival; a = active -
 *   arrival; b = agent start - active; c = connection set-up done - agent
 *   start; d = finished - connection set-up done. A negative difference
 *   (clock jumped back) logs as 0.
 * - Numbers are rounded as format_tv(3) does with 2 significant digits and
 *   at most `delay_logging_resolution_limit` decimals: 0.01, 0.12, 1.2, 12, 123.
 * - orig_to= appears only when it differs from to= ignoring case (log_adhoc.c
 *   strcasecmp); conn_use= only when set; tls= only when given
 *   (smtp_log_tls_feature_status, Postfix ≥ 3.11: between delays= and dsn=).
 * - Addresses are logged in internal form, unquoted (info_log_addr_form =
 *   internal, Postfix's default).
 *
 * Not here: writing the line (maillog.ts), deciding the status (scheduler).
 */
import type { Config } from '../config/types.ts';
import type { DeliveryTiming } from '../delivery/types.ts';

export interface DeliveryLineParams {
  readonly queueId: string;
  readonly address: string;
  readonly origAddress: string;
  /** `host[addr]:port` or `none`. */
  readonly relay: string;
  /** Postfix's conn_use=N (reuse count + 1); omitted when undefined. */
  readonly connUse?: number;
  /** ms since the epoch. */
  readonly arrivalTime: number;
  /** When the message last entered the active queue, ms since the epoch. */
  readonly activeTime: number;
  readonly timing: DeliveryTiming;
  /** smtp_log_tls_feature_status value, e.g. `may:none`; omitted when undefined. */
  readonly tls?: string;
  readonly dsn: string;
  readonly status: 'sent' | 'deferred' | 'bounced' | 'expired';
  readonly reason: string;
  /** postconf(5) delay_logging_resolution_limit (0..6, default 2). */
  readonly resolutionLimit: number;
}

/** format_tv(3): significant digits for small delays (log_adhoc.c SIG_DIGS). */
const SIG_DIGITS = 2;
const MILLION = 1_000_000;

/**
 * format_tv(3): a time as a decimal with `sigDigits` significant digits and
 * at most `maxDecimals` digits after the point; large values are whole
 * seconds; trailing zeros are dropped. `sec` ≥ 0, 0 ≤ `usec` < 1e6.
 */
export function formatTv(sec: number, usec: number, sigDigits: number, maxDecimals: number): string {
  const maxDig = Math.min(6, Math.max(0, Math.trunc(maxDecimals)));
  let resolution = MILLION / 10 ** maxDig;
  const width = 10 ** sigDigits;
  // Adjust the resolution so that only `sigDigits` significant digits remain.
  if (resolution < MILLION) {
    if (sec > 0) {
      let n = 1;
      while (sec >= n && n <= width / 10) n *= 10;
      resolution = (MILLION / width) * n;
    } else {
      while (usec >= width * resolution) resolution *= 10;
    }
  }
  // Round half up at the resolution.
  if (resolution > 1) {
    usec += Math.trunc(resolution / 2);
    if (usec >= MILLION) {
      sec += 1;
      usec -= MILLION;
    }
  }
  let out = String(sec);
  if (usec >= resolution) {
    out += '.';
    let rem = usec;
    for (let n = MILLION / 10; rem >= resolution && n > 0; n = Math.trunc(n / 10)) {
      out += String(Math.trunc(rem / n));
      rem %= n;
    }
  }
  return out;
}

/** A millisecond difference formatted as log_adhoc.c does (negative → 0). */
export function formatDelay(ms: number, resolutionLimit: number): string {
  // log_adhoc.c DELTA(): a negative difference (clock jumped back) is 0; so is a missing stamp.
  const us = Number.isFinite(ms) ? Math.max(0, Math.round(ms * 1000)) : 0;
  return formatTv(Math.trunc(us / MILLION), us % MILLION, SIG_DIGITS, resolutionLimit);
}

/** The `to=` line for one recipient outcome. */
export function formatDeliveryLine(p: DeliveryLineParams): string {
  const parts = [`${p.queueId}: to=<${p.address}>`];
  if (p.origAddress !== '' && p.origAddress.toLowerCase() !== p.address.toLowerCase()) parts.push(`orig_to=<${p.origAddress}>`);
  parts.push(`relay=${p.relay}`);
  if (p.connUse !== undefined) parts.push(`conn_use=${p.connUse}`);
  const f = (ms: number) => formatDelay(ms, p.resolutionLimit);
  const { started, connected, finished } = p.timing;
  parts.push(`delay=${f(finished - p.arrivalTime)}`);
  parts.push(`delays=${f(p.activeTime - p.arrivalTime)}/${f(started - p.activeTime)}/${f(connected - started)}/${f(finished - connected)}`);
  if (p.tls !== undefined) parts.push(`tls=${p.tls}`);
  parts.push(`dsn=${p.dsn}`);
  parts.push(`status=${p.status} (${p.reason})`);
  return parts.join(', ');
}

/** qmgr(8) when a message enters the active queue. */
export function formatQueueActive(queueId: string, sender: string, size: number, nrcpt: number): string {
  return `${queueId}: from=<${sender}>, size=${size}, nrcpt=${nrcpt} (queue active)`;
}

/** qmgr(8) when maximal_queue_lifetime has passed (or postsuper -e forced expiry). */
export function formatExpired(queueId: string, sender: string): string {
  return `${queueId}: from=<${sender}>, status=expired, returned to sender`;
}

/** postconf(5) delay_logging_resolution_limit, or its default 2 when the value is unusable. */
export function resolutionLimitOf(config: Config): number {
  try {
    return config.getInt('delay_logging_resolution_limit');
  } catch {
    return 2;
  }
}
