/**
 * defer-log.ts — the per-message delay-reason log (`queue_directory/defer/ID`),
 * codec only: text in, reasons out, no I/O.
 *
 * Contract: like Postfix's defer logfile (bounce_log(3)), the file is a list of
 * records, each a few `name=value` lines ended by an empty line:
 *
 *     recipient=bob@example.com
 *     offset=0
 *     status=4.7.5
 *     action=delayed
 *     reason=Server certificate not verified
 *
 * `offset` is the recipient's index in the queue file (Postfix uses the byte
 * offset of the recipient record; sealpost's records are indexed). Records are
 * only appended; for each recipient the last record wins. A record cut short by
 * a crash (no terminating empty line) is ignored. Newlines in values are
 * replaced by spaces: a reason is one line, as mailq prints it.
 *
 * Not here: where the file lives and when it is cleared (spool.ts, scheduler).
 */

export interface DelayReason {
  readonly index: number;
  readonly address: string;
  readonly reason: string;
  /** RFC 3463 enhanced status, e.g. `4.7.5`. */
  readonly status: string;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** One appendable record. */
export function encodeDelayRecord(r: DelayReason): string {
  return `recipient=${oneLine(r.address)}\noffset=${r.index}\nstatus=${oneLine(r.status)}\naction=delayed\nreason=${oneLine(r.reason)}\n\n`;
}

/** Parse a defer log; returns the latest reason per recipient index, in first-seen order. */
export function parseDelayLog(text: string): Map<number, DelayReason> {
  const out = new Map<number, DelayReason>();
  const records = text.split('\n\n');
  records.pop(); // the part after the last terminator is empty or an unfinished record
  for (const rec of records) {
    const attrs = new Map<string, string>();
    for (const line of rec.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) attrs.set(line.slice(0, eq), line.slice(eq + 1));
    }
    const index = Number(attrs.get('offset'));
    const reason = attrs.get('reason');
    if (!Number.isInteger(index) || index < 0 || reason === undefined) continue;
    out.set(index, { index, address: attrs.get('recipient') ?? '', reason, status: attrs.get('status') ?? '4.0.0' });
  }
  return out;
}
