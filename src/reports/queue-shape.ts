/**
 * queue-shape.ts — Postfix's qshape(1) computation and layout, pure: messages
 * (arrival time, sender, pending recipients) in, the age-bucket × domain
 * table out. Used by `sealpost qshape` and the status page.
 *
 * Contract (qshape.pl of Postfix 3.7, which the differential test runs):
 * - Buckets: the first holds ages in [0, t) minutes (t = bucket_time, default
 *   5); each next one doubles the limit (`-l`: adds t); the last
 *   (bucket_count, default 10) has no limit. Column `T` is the total.
 * - Each pending recipient (or, with `-s`, the sender: one per message) is
 *   counted under its domain: lower-cased, everything up to the last `@`
 *   removed, `..` collapsed, one leading and one trailing dot dropped; the
 *   null sender is `MAILER-DAEMON`. A message without a pending recipient is
 *   not counted at all (qshape skips it).
 * - `-p` also counts every parent domain that is not a top-level domain
 *   (`.example.com`), shown only with at least `-m` (default 5) subdomains.
 * - Rows: TOTAL and every domain, by count (descending), then by name length;
 *   sealpost breaks the remaining ties by name (Perl's hash order is random).
 * - Width: the counters are right-aligned so the last ends in column `-w`
 *   (default 80; smaller values are ignored, as qshape does); the domain
 *   column is what remains, at least 18, and longer names are shown as `+`
 *   and their last bytes (`.+` for parent domains).
 *
 * Not here: reading queues (cli/qshape.ts, queue-snapshot.ts), terminals.
 */

export interface ShapeOptions {
  /** -s: sender domains. */
  readonly senders?: boolean;
  /** -p: parent domains. */
  readonly parents?: boolean;
  /** -m */
  readonly minSubdomains?: number;
  /** -b */
  readonly buckets?: number;
  /** -t, minutes */
  readonly bucketMinutes?: number;
  /** -l */
  readonly linear?: boolean;
  /** -w */
  readonly width?: number;
}

/** qshape's domain of an address (see the header). */
export function shapeDomain(address: string): string {
  let a = address.toLowerCase();
  if (a === '') a = 'MAILER-DAEMON';
  a = a.replace(/^.*@/, '');
  a = a.replace(/\.\./g, '.');
  return a.replace(/\.?(.+?)\.?$/, '$1');
}

export class QueueShape {
  private readonly counts = new Map<string, number[]>();
  private readonly subs = new Map<string, number>();
  private readonly bnum: number;
  private readonly tick: number;
  private readonly width: number;
  private readonly minsub: number;

  constructor(
    private readonly opts: ShapeOptions,
    /** The reference time, seconds (qshape: `time` at start). */
    private readonly now: number,
  ) {
    this.bnum = opts.buckets !== undefined && opts.buckets > 0 ? opts.buckets : 10;
    this.tick = opts.bucketMinutes !== undefined && opts.bucketMinutes > 0 ? opts.bucketMinutes : 5;
    this.width = opts.width !== undefined && opts.width > 80 ? opts.width : 80;
    this.minsub = opts.minSubdomains !== undefined && opts.minSubdomains > 0 ? opts.minSubdomains : 5;
  }

  /** The 1-based bucket of an arrival time (seconds). */
  bucket(arrival: number): number {
    const m = (this.now - arrival) / (60 * this.tick);
    if (m < 1) return 1;
    const b = this.opts.linear ? Math.floor(m + 1) : 2 + Math.floor(Math.log(m) / Math.log(2));
    return b < this.bnum ? b : this.bnum;
  }

  private row(d: string): number[] {
    let r = this.counts.get(d);
    if (!r) this.counts.set(d, (r = new Array<number>(this.bnum + 1).fill(0)));
    return r;
  }

  /** Count one message; false when it has nothing to count (no pending recipient). */
  add(arrival: number, sender: string, recipients: readonly string[]): boolean {
    if (recipients.length === 0) return false;
    const b = this.bucket(arrival);
    for (const addr of this.opts.senders ? [sender] : recipients) {
      const total = this.row('TOTAL');
      total[0]!++;
      total[b]!++;
      let a = shapeDomain(addr);
      let isNew = false;
      for (;;) {
        const r = this.row(a);
        const old = ++r[0]! > 1;
        r[b]!++;
        if (isNew) this.subs.set(a, (this.subs.get(a) ?? 0) + 1);
        isNew = !old;
        if (!this.opts.parents) break;
        const m = /^(?:\.)?[^.]+\.(.*\.)/.exec(a);
        if (!m) break;
        a = `.${m[1]}${a.slice(m[0].length)}`;
      }
    }
    return true;
  }

  /** The counts per domain (TOTAL included), for pages that lay them out themselves. */
  rows(): Array<{ domain: string; counts: readonly number[] }> {
    this.row('TOTAL');
    return [...this.counts.entries()]
      .filter(([d]) => !(d.startsWith('.') && (this.subs.get(d) ?? 0) < this.minsub))
      .sort(([a, x], [b, y]) => y[0]! - x[0]! || a.length - b.length || (a < b ? -1 : a > b ? 1 : 0))
      .map(([domain, counts]) => ({ domain, counts }));
  }

  /** The column headings: `T`, then each bucket's upper limit in minutes, the last with `+`. */
  headings(): string[] {
    const heads: string[] = [];
    let t = 0;
    let last = '';
    for (let i = 0; i <= this.bnum; ) {
      heads.push(i === 0 ? 'T' : last !== '' ? last : String(t));
      if (++i < this.bnum) t += t && !this.opts.linear ? t : this.tick;
      else last = `${last !== '' ? last : String(t)}+`;
    }
    return heads;
  }

  /** qshape's table; `top` > 0 limits the rows (TOTAL included), as on a terminal. */
  render(top = 0): string {
    const heads = this.headings();
    const total = this.row('TOTAL');
    const widths = heads.map((h, i) => {
      let l = String(total[i]).length;
      if (h.length >= l) l = h.length;
      return l > 2 ? l + 1 : 3;
    });
    let dw = this.width - widths.reduce((a, b) => a + b, 0);
    if (dw < 18) dw = 18;
    const line = (d: string, cells: readonly (string | number)[]) => {
      let name: string;
      if (d.length > dw) name = d.startsWith('.') ? `.+${d.slice(d.length - dw + 2)}` : `+${d.slice(d.length - dw + 1)}`;
      else name = d.padStart(dw);
      return name + cells.map((c, i) => String(c).padStart(widths[i]!)).join('') + '\n';
    };
    let out = line('', heads);
    let n = 0;
    for (const r of this.rows()) {
      if (top > 0 && ++n > top) break;
      out += line(r.domain, r.counts);
    }
    return out;
  }
}
