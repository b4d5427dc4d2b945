/**
 * showq.ts — the queue listing formats of `mailq` / `postqueue -p` and
 * `postqueue -j`, pure: message summaries in, text out.
 *
 * Contract (showq(8), postqueue/showq_compat.c and showq_json.c):
 * - A summary lists the recipients that are not yet done: first those with a
 *   delay reason (from the defer log), then the others with an empty reason,
 *   as showq reads the defer logfile before the queue file's recipients.
 * - `-p` layout, short IDs: header `%-11s %7s %-20s %s`; per message
 *   `%-11s %7ld %20.20s %s` (ID + marker `*` active / `!` hold, then `#` when
 *   forced to expire; size; asctime() cut to 20 characters, which keeps its
 *   trailing space; sender, or empty_address_recipient for `<>`); a reason line
 *   `%*s(%s)` padded to 76 - length (never negative) only when the reason differs
 *   from the previous recipient's, `(reason unavailable)` when a reason turns
 *   empty; recipients after 41 blanks; an empty line between messages; footer
 *   `\n-- %lu Kbytes in %lu Request%s.` (sum of message sizes / 1024, truncated);
 *   `Mail queue is empty` for none. Long IDs: `%-17s %8s %-19s %s` and
 *   `%-17s %8ld %19.19s %s`.
 * - `-j`: one JSON object per line, members in Postfix's order: queue_name,
 *   queue_id, arrival_time, message_size, forced_expire, sender, recipients[]
 *   with address, orig_address (Postfix >= 3.11) and, when known, delay_reason.
 *   Strings are escaped as json_quote() does (\b \f \n \r \t, other controls as
 *   \u00XX, `"` and `\`; `/` and non-ASCII as is).
 * - Addresses are shown with control characters replaced by `?` (printable()).
 *
 * Not here: reading the queue (spool.ts); the time zone (callers pass a time
 * formatter; the CLI uses local time like asctime(localtime())).
 */
import type { QueueEnvelope } from './queue-file.ts';
import type { DelayReason } from './defer-log.ts';

export interface ShowqRecipient {
  readonly address: string;
  readonly origAddress: string;
  /** '' when there is no delay reason. */
  readonly reason: string;
}

export interface ShowqMessage {
  readonly queueName: string;
  readonly queueId: string;
  /** Seconds since the epoch. */
  readonly arrivalTime: number;
  readonly messageSize: number;
  readonly forcedExpire: boolean;
  readonly sender: string;
  readonly recipients: readonly ShowqRecipient[];
}

export interface ShowqOptions {
  readonly longQueueIds: boolean;
  /** asctime()-style rendering of an epoch-seconds value (24 characters + "\n"). */
  readonly asctime: (epochSeconds: number) => string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function two(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** C asctime(): `"%.3s %.3s%3d %.2d:%.2d:%.2d %d\n"`, in local time or UTC. */
export function asctime(epochSeconds: number, utc = false): string {
  const d = new Date(epochSeconds * 1000);
  const [wd, mon, day, h, m, s, y] = utc
    ? [d.getUTCDay(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCFullYear()]
    : [d.getDay(), d.getMonth(), d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getFullYear()];
  return `${DAYS[wd]} ${MONTHS[mon]}${String(day).padStart(3)} ${two(h)}:${two(m)}:${two(s)} ${y}\n`;
}

/** printable(): control characters become `?` (UTF-8 is kept, as with SMTPUTF8 on). */
export function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]/g, '?');
}

/**
 * The showq view of one message: pending recipients only, those with a delay
 * reason first (defer-log order), then the rest; the null sender shown as
 * `emptyAddress` (empty_address_recipient).
 */
export function summarize(
  queueName: string,
  queueId: string,
  env: QueueEnvelope,
  reasons: ReadonlyMap<number, DelayReason>,
  emptyAddress: string,
): ShowqMessage {
  const withReason: ShowqRecipient[] = [];
  const without: ShowqRecipient[] = [];
  for (const r of env.recipients) {
    if (r.status !== 'pending') continue;
    const address = printable(r.address === '' ? emptyAddress : r.address);
    const origAddress = printable(r.origAddress === '' ? emptyAddress : r.origAddress);
    const why = reasons.get(r.index);
    if (why) withReason.push({ address, origAddress, reason: why.reason });
    else without.push({ address, origAddress, reason: '' });
  }
  return {
    queueName,
    queueId,
    arrivalTime: Math.floor(env.arrivalTime / 1000),
    messageSize: env.messageSize,
    forcedExpire: env.forcedExpire,
    sender: printable(env.sender === '' ? emptyAddress : env.sender),
    recipients: [...withReason, ...without],
  };
}

// showq_compat.c S_* / L_* formats.
function row(long: boolean, a: string, b: string, c: string, d: string): string {
  return long ? `${a.padEnd(17)} ${b.padStart(8)} ${c.padEnd(19)} ${d}\n` : `${a.padEnd(11)} ${b.padStart(7)} ${c.padEnd(20)} ${d}\n`;
}

export function compatHeading(long: boolean): string {
  return long
    ? row(true, '----Queue ID-----', '--Size--', '---Arrival Time----', '--Sender/Recipient------')
    : row(false, '-Queue ID-', '--Size--', '----Arrival Time----', '-Sender/Recipient-------');
}

/** One message in `mailq` layout (without the separating empty line). */
export function compatMessage(msg: ShowqMessage, opts: ShowqOptions): string {
  let idStatus = msg.queueId;
  if (msg.queueName === 'active') idStatus += '*';
  else if (msg.queueName === 'hold') idStatus += '!';
  if (msg.forcedExpire) idStatus += '#';
  const when = opts.asctime(msg.arrivalTime);
  // %20.20s / %19.19s: cut to the precision, then right-align in the width.
  const time = opts.longQueueIds ? when.slice(0, 19).padStart(19) : when.slice(0, 20).padStart(20);
  let out = opts.longQueueIds
    ? `${idStatus.padEnd(17)} ${String(msg.messageSize).padStart(8)} ${time} ${msg.sender}\n`
    : `${idStatus.padEnd(11)} ${String(msg.messageSize).padStart(7)} ${time} ${msg.sender}\n`;
  let saved = '';
  for (const r of msg.recipients) {
    if (r.reason !== saved) {
      saved = r.reason;
      const show = saved !== '' ? saved : 'reason unavailable';
      out += `${' '.repeat(Math.max(0, 76 - show.length))}(${show})\n`;
    }
    out += row(opts.longQueueIds, '', '', '', r.address);
  }
  return out;
}

export function compatFooter(count: number, totalSize: number): string {
  if (count === 0) return 'Mail queue is empty\n';
  return `\n-- ${Math.floor(totalSize / 1024)} Kbytes in ${count} Request${count === 1 ? '' : 's'}.\n`;
}

/** Incremental `mailq` writer: feed messages in order, then finish(). */
export class CompatFormatter {
  private count = 0;
  private total = 0;
  constructor(private readonly opts: ShowqOptions) {}

  add(msg: ShowqMessage): string {
    const lead = this.count === 0 ? compatHeading(this.opts.longQueueIds) : '\n';
    this.count++;
    this.total += msg.messageSize;
    return lead + compatMessage(msg, this.opts);
  }

  finish(): string {
    return compatFooter(this.count, this.total);
  }
}

/** The whole `mailq` output for a list of messages. */
export function formatCompat(messages: Iterable<ShowqMessage>, opts: ShowqOptions): string {
  const f = new CompatFormatter(opts);
  let out = '';
  for (const m of messages) out += f.add(m);
  return out + f.finish();
}

/** showq_json.c json_quote(). */
export function jsonQuote(text: string): string {
  let out = '';
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || c === 0x7f) {
      switch (ch) {
        case '\b': out += '\\b'; break;
        case '\f': out += '\\f'; break;
        case '\n': out += '\\n'; break;
        case '\r': out += '\\r'; break;
        case '\t': out += '\\t'; break;
        default: out += `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`;
      }
    } else if (ch === '\\' || ch === '"') {
      out += '\\' + ch;
    } else {
      out += ch;
    }
  }
  return out;
}

/** One `postqueue -j` line. */
export function jsonLine(msg: ShowqMessage): string {
  const rcpts = msg.recipients.map((r) => {
    let s = `{"address": "${jsonQuote(r.address)}", "orig_address": "${jsonQuote(r.origAddress)}"`;
    if (r.reason !== '') s += `, "delay_reason": "${jsonQuote(r.reason)}"`;
    return s + '}';
  });
  return (
    `{"queue_name": "${jsonQuote(msg.queueName)}", "queue_id": "${jsonQuote(msg.queueId)}", ` +
    `"arrival_time": ${msg.arrivalTime}, "message_size": ${msg.messageSize}, ` +
    `"forced_expire": ${msg.forcedExpire ? 'true' : 'false'}, "sender": "${jsonQuote(msg.sender)}", ` +
    `"recipients": [${rcpts.join(', ')}]}\n`
  );
}
