/**
 * listing.ts — the showq walk: read every queued message from the spool in
 * showq(8) order and stream it in `mailq` or `postqueue -j` format.
 *
 * Contract: read-only (a corrupt file is reported through `onWarning` and
 * skipped, never moved); output is produced in chunks of about 64 KiB through
 * `write`, so 100k messages never build one giant string; delay reasons come
 * from the defer logs, looked up only for messages that have one.
 *
 * With `threads` > 1 and at least THREADED_MIN queued files (mailq over a
 * big queue), listing-worker.ts threads read and format the messages in
 * chunks; this thread writes them in showq order as they arrive. The output
 * is byte-identical to the single-thread walk (tested), with the local-time
 * asctime() that postqueue uses.
 *
 * Not here: the formats themselves (showq.ts), configuration (the CLI passes
 * plain values).
 */
import { siblingScript, startWorker } from '../lib/worker.ts';
import { CompatFormatter, compatFooter, compatHeading, jsonLine, summarize } from './showq.ts';
import type { ShowqOptions } from './showq.ts';
import type { DelayReason } from './defer-log.ts';
import { MESSAGE_QUEUES } from './spool.ts';
import type { Spool } from './spool.ts';
import type { ListingItem, ListingWorkData } from './listing-worker.ts';

export interface ListingOptions extends ShowqOptions {
  readonly format: 'compat' | 'json';
  /** empty_address_recipient: how the null sender is shown. */
  readonly emptyAddress: string;
  readonly write: (chunk: string) => Promise<void>;
  readonly onWarning?: (message: string) => void;
  /** Threads that read and format big queues (postqueue: 2 on a 2-core machine); default 1. The threads use the local-time asctime(). */
  readonly threads?: number;
}

/** Below this many queued files one thread lists them (a worker costs ~30 ms to start). */
const THREADED_MIN = 5000;
const CHUNK = 2000;

export async function listQueue(spool: Spool, opts: ListingOptions): Promise<{ messages: number }> {
  if ((opts.threads ?? 1) > 1) {
    const items = MESSAGE_QUEUES.flatMap((queue) => spool.list(queue).map((id) => ({ queue, id })));
    if (items.length >= THREADED_MIN) return listThreaded(spool, items, opts);
  }
  const withLog = spool.delayLogIds();
  const compat = new CompatFormatter(opts);
  const noReasons: ReadonlyMap<number, DelayReason> = new Map();
  let buf = '';
  const writes: Promise<void>[] = [];
  const summary = await spool.scan({
    quarantine: false,
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

/** The threaded walk: chunks dealt round-robin to workers, written back in order. */
async function listThreaded(spool: Spool, items: ReadonlyArray<{ queue: string; id: string }>, opts: ListingOptions): Promise<{ messages: number }> {
  const threads = opts.threads!;
  const count = Math.ceil(items.length / CHUNK);
  const slots = Array.from({ length: count }, () => {
    let resolve!: (r: ListingItem[]) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<ListingItem[]>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => undefined);
    return { promise, resolve, reject };
  });
  const withLog = [...spool.delayLogIds()];
  for (let k = 0; k < threads; k++) {
    const chunks: Array<{ index: number; items: Array<{ queue: string; id: string }> }> = [];
    for (let i = k; i < count; i += threads) chunks.push({ index: i, items: items.slice(i * CHUNK, (i + 1) * CHUNK) });
    if (chunks.length === 0) continue;
    const data: ListingWorkData = { dir: spool.dir, format: opts.format, longQueueIds: opts.longQueueIds, emptyAddress: opts.emptyAddress, withLog, chunks };
    const w = startWorker(siblingScript(import.meta.url, 'listing-worker'), data);
    const fail = (e: Error) => {
      for (const c of chunks) slots[c.index]!.reject(e);
    };
    w.on('message', (m: { index: number; items: ListingItem[] }) => slots[m.index]!.resolve(m.items));
    w.once('error', fail);
    w.once('exit', (code) => code !== 0 && fail(new Error(`listing thread exited with ${code}`)));
  }
  let messages = 0;
  let total = 0;
  let buf = '';
  const writes: Promise<void>[] = [];
  for (let c = 0; c < count; c++) {
    const got = await slots[c]!.promise;
    for (let j = 0; j < got.length; j++) {
      const item = got[j]!;
      if ('missing' in item) continue;
      if ('error' in item) {
        const { queue, id } = items[c * CHUNK + j]!;
        opts.onWarning?.(`${queue}/${id}: skipping corrupt queue file: ${item.error}`);
        continue;
      }
      if (opts.format === 'compat') buf += messages === 0 ? compatHeading(opts.longQueueIds) : '\n';
      buf += item.text;
      messages++;
      total += item.size;
    }
    if (buf.length > 65536) {
      writes.push(opts.write(buf));
      buf = '';
    }
  }
  if (opts.format === 'compat') buf += compatFooter(messages, total);
  if (buf !== '') writes.push(opts.write(buf));
  await Promise.all(writes);
  return { messages };
}
