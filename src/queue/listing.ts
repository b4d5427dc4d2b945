/**
 * listing.ts — the showq walk: read every queued message from the spool in
 * showq(8) order and stream it in `mailq` or `postqueue -j` format.
 *
 * Contract: read-only (a corrupt file is reported through `onWarning` and
 * skipped, never moved); output is produced in chunks of about 64 KiB through
 * `write`, so 100k messages never build one giant string; delay reasons come
 * from the defer logs, looked up only for messages that have one.
 *
 * Not here: the formats themselves (showq.ts), configuration (the CLI passes
 * plain values).
 */
import { availableParallelism } from 'node:os';
import { CompatFormatter, jsonLine, summarize } from './showq.ts';
import type { ShowqOptions } from './showq.ts';
import type { DelayReason } from './defer-log.ts';
import type { Spool } from './spool.ts';

export interface ListingOptions extends ShowqOptions {
  readonly format: 'compat' | 'json';
  /** empty_address_recipient: how the null sender is shown. */
  readonly emptyAddress: string;
  readonly write: (chunk: string) => Promise<void>;
  readonly onWarning?: (message: string) => void;
}

export async function listQueue(spool: Spool, opts: ListingOptions): Promise<{ messages: number }> {
  const withLog = spool.delayLogIds();
  const compat = new CompatFormatter(opts);
  const noReasons: ReadonlyMap<number, DelayReason> = new Map();
  let buf = '';
  const writes: Promise<void>[] = [];
  const summary = await spool.scan({
    quarantine: false,
    // Two threads open 100k queue files in about half the time (bench/queue.ts).
    readers: Math.min(2, availableParallelism()),
    onCorrupt: (f) => opts.onWarning?.(`${f.queue}/${f.id}: skipping corrupt queue file: ${f.error}`),
    onMessage: ({ queue, id, envelope }) => {
      const reasons = withLog.has(id) ? spool.readDelayReasons(id) : noReasons;
      const msg = summarize(queue, id, envelope, reasons, opts.emptyAddress);
      buf += opts.format === 'json' ? jsonLine(msg) : compat.add(msg);
      if (buf.length > 65536) {
        writes.push(opts.write(buf));
        buf = '';
      }
    },
  });
  if (opts.format === 'compat') buf += compat.finish();
  if (buf !== '') writes.push(opts.write(buf));
  await Promise.all(writes);
  return { messages: summary.messages };
}
