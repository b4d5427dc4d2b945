/**
 * envelope-worker.ts — a worker thread that reads queue-file envelopes for
 * Spool.scan() when a queue is large (spool.ts `readers`): opening 100k
 * files is system-call bound, and two threads do it in about half the time.
 *
 * Protocol: workerData = { chunks: [{ index, paths }] }; one message back per
 * chunk, as soon as it is read: `{ index, results }`, results in the order of
 * its paths, each `{ envelope }`, `{ missing: true }` (the file vanished) or
 * `{ error }` (the file does not parse). Then the worker exits.
 *
 * Not here: quarantining corrupt files or anything else that writes (the
 * caller decides, in its own thread).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { readEnvelopeSync } from './spool.ts';

const { chunks } = workerData as { chunks: Array<{ index: number; paths: string[] }> };
for (const { index, paths } of chunks) {
  const results = paths.map((path) => {
    try {
      return { envelope: readEnvelopeSync(path) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { missing: true };
      return { error: err instanceof Error ? err.message : String(err) };
    }
  });
  parentPort!.postMessage({ index, results });
}
