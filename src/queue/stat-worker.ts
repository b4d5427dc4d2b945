/**
 * stat-worker.ts — a worker thread of spool.ts `mtimes()`: the mtimes of many
 * queue files of one directory, read with blocking stat calls off the main
 * thread. A blocking stat costs ~3 µs where a thread-pool round trip per
 * file costs ~40 µs of CPU (the deferred scan of a 100k-message queue: 0.3 s
 * instead of 5 s), and the daemon's event loop never waits on the disk.
 *
 * Protocol: workerData = `{ dir, names }`; one message back, a Float64Array
 * (transferred) of each name's mtime in ms, NaN for a file that is gone or
 * cannot be read; then the worker exits.
 *
 * Not here: what the times mean (scheduler/feed.ts).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const { dir, names } = workerData as { readonly dir: string; readonly names: readonly string[] };
const out = new Float64Array(names.length);
for (let i = 0; i < names.length; i++) {
  const st = statSync(join(dir, names[i]!), { throwIfNoEntry: false, bigint: false });
  out[i] = st ? st.mtimeMs : Number.NaN;
}
parentPort!.postMessage(out, [out.buffer]);
