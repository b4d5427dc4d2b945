/**
 * listing-worker.ts — a worker thread of listing.ts for big queues: it reads
 * a share of the queue files (envelope and delay log) and formats each
 * message in `mailq` or `postqueue -j` form, so the main thread only
 * concatenates text in showq order. Opening 100k files is system-call
 * bound; two threads do it in about half the time.
 *
 * Protocol: workerData = ListingWorkData; one message back per chunk, as soon
 * as it is done: `{ index, items }`, items in the order of the chunk, each
 * `{ text, size }` (a formatted message and its message_size), `{ missing: true }`
 * (the file vanished meanwhile) or `{ error }` (the file does not parse:
 * listing.ts warns and skips it). Then the worker exits.
 *
 * Not here: the heading, the blank lines between messages and the footer
 * (listing.ts), anything that writes to the spool.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { parseDelayLog } from './defer-log.ts';
import type { DelayReason } from './defer-log.ts';
import { asctime, compatMessage, jsonLine, summarize } from './showq.ts';
import { readEnvelopeSync } from './spool.ts';
import { isNotFound } from '../lib/fs-errors.ts';

export interface ListingWorkData {
  readonly dir: string;
  readonly format: 'compat' | 'json';
  readonly longQueueIds: boolean;
  readonly emptyAddress: string;
  /** Queue IDs that have a delay log. */
  readonly withLog: readonly string[];
  readonly chunks: ReadonlyArray<{ readonly index: number; readonly items: ReadonlyArray<{ readonly queue: string; readonly id: string }> }>;
}

export type ListingItem = { readonly text: string; readonly size: number } | { readonly missing: true } | { readonly error: string };

const data = workerData as ListingWorkData;
const withLog = new Set(data.withLog);
const noReasons: ReadonlyMap<number, DelayReason> = new Map();
const opts = { longQueueIds: data.longQueueIds, asctime: (s: number) => asctime(s) };

function reasonsOf(id: string): ReadonlyMap<number, DelayReason> {
  if (!withLog.has(id)) return noReasons;
  try {
    return parseDelayLog(readFileSync(join(data.dir, 'defer', id), 'utf8'));
  } catch {
    return noReasons;
  }
}

for (const { index, items } of data.chunks) {
  const out: ListingItem[] = items.map(({ queue, id }) => {
    try {
      const envelope = readEnvelopeSync(join(data.dir, queue, id));
      const msg = summarize(queue, id, envelope, reasonsOf(id), data.emptyAddress);
      return { text: data.format === 'json' ? jsonLine(msg) : compatMessage(msg, opts), size: msg.messageSize };
    } catch (err) {
      if (isNotFound(err)) return { missing: true };
      return { error: err instanceof Error ? err.message : String(err) };
    }
  });
  parentPort!.postMessage({ index, items: out });
}
