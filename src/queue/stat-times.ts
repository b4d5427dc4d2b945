/**
 * stat-times.ts — the mtimes and birth times of many files of one directory
 * at once, read by a worker thread (stat-worker.ts) with blocking stats: a
 * tenth of the CPU of one thread-pool stat per file, and the caller's event
 * loop never waits on the disk. For the deferred scan of a big queue
 * (spool.ts mtimes(), scheduler/feed.ts) and the queue-age gauge
 * (reports/queue-gauge.ts).
 *
 * Contract: `statTimes(dir, names)` resolves to one entry per name, in order:
 * `{ mtime, birth }` in ms (birth 0 where the file system records none), or
 * undefined for a file that is gone or cannot be read. When the thread cannot
 * run, each file is stat'ed here instead (same answers, slower). Never rejects.
 *
 * Not here: what the times mean.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { siblingScript, startWorker } from '../lib/worker.ts';

export interface FileTimes {
  readonly mtime: number;
  readonly birth: number;
}

export async function statTimes(dir: string, names: readonly string[]): Promise<Array<FileTimes | undefined>> {
  try {
    const got = await new Promise<{ mtime: Float64Array; birth: Float64Array }>((resolve, reject) => {
      const w = startWorker(siblingScript(import.meta.url, 'stat-worker'), { dir, names });
      w.once('message', resolve);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`stat thread exited with ${code}`)));
    });
    return Array.from(got.mtime, (m, i) => (Number.isNaN(m) ? undefined : { mtime: m, birth: got.birth[i]! }));
  } catch {
    const out: Array<FileTimes | undefined> = [];
    for (const n of names) {
      const s = await stat(join(dir, n)).catch(() => undefined);
      out.push(s ? { mtime: s.mtimeMs, birth: s.birthtimeMs } : undefined);
    }
    return out;
  }
}
