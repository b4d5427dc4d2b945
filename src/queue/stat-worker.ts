/**
 * stat-worker.ts — a worker thread of stat-times.ts: the times of many files
 * of one directory, read with blocking stat calls off the main thread. A
 * blocking stat costs ~3 µs where a thread-pool round trip per file costs
 * ~30–50 µs of CPU (a scan of a 100k-message queue: 0.3 s instead of 3–5 s),
 * and the daemon's event loop never waits on the disk.
 *
 * Protocol: workerData = `{ dir, names }`; one message back,
 * `{ mtime, birth }`, two Float64Arrays (transferred) in the order of
 * `names`: the mtime and the birth time in ms (birth 0 where the file
 * system records none), NaN for a file that is gone or cannot be read; then
 * the worker exits.
 *
 * Not here: what the times mean (scheduler/feed.ts, reports/queue-gauge.ts).
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';

const { dir, names } = workerData as { readonly dir: string; readonly names: readonly string[] };
const mtime = new Float64Array(names.length);
const birth = new Float64Array(names.length);
for (let i = 0; i < names.length; i++) {
  const st = statSync(join(dir, names[i]!), { throwIfNoEntry: false });
  mtime[i] = st ? st.mtimeMs : Number.NaN;
  birth[i] = st ? st.birthtimeMs : Number.NaN;
}
parentPort!.postMessage({ mtime, birth }, [mtime.buffer, birth.buffer]);
