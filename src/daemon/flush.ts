/**
 * flush.ts — the daemon side of `postqueue -f/-i/-s` and `sealpost flush`:
 * take the request files from `queue_directory/public/flush/` and hand each
 * request to the `onFlush` hook (docs/queue-format.md, "Flush requests").
 *
 * Contract: each file (`MILLIS.PID.RANDOM`, one line: `flush all`,
 * `flush queue_id ID`, `flush site SITE`) is parsed by `parseFlushRequest()`
 * (pure), deleted, then passed to `onFlush` in name order (oldest first).
 * `tmp.*` files (being written) are left alone. A line that does not parse is
 * logged as a warning and deleted. Wakes on fs.watch and every few seconds.
 *
 * The hook: main.ts hands each request to the queue manager
 * (scheduler/qmgr.ts flush(): all = every deferred message now, ignoring its
 * retry time, and dead destinations revived; queue_id = that message; site =
 * deferred mail with a recipient in that domain).
 *
 * Not here: writing requests (cli/postqueue.ts), the flush itself.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export type FlushRequest = { readonly kind: 'all' } | { readonly kind: 'queue_id'; readonly id: string } | { readonly kind: 'site'; readonly site: string };

/** One request line; undefined when it is not one. */
export function parseFlushRequest(text: string): FlushRequest | undefined {
  const line = text.trim();
  if (line === 'flush all') return { kind: 'all' };
  const m = /^flush (queue_id|site) (\S+)$/.exec(line);
  if (!m) return undefined;
  return m[1] === 'queue_id' ? { kind: 'queue_id', id: m[2]! } : { kind: 'site', site: m[2]! };
}

/** The text postqueue wrote, for logs. */
export function describeFlush(r: FlushRequest): string {
  return r.kind === 'all' ? 'flush all' : r.kind === 'queue_id' ? `flush queue_id ${r.id}` : `flush site ${r.site}`;
}

export interface FlushWatcherOptions {
  readonly dir: string;
  readonly onFlush: (request: FlushRequest) => void | Promise<void>;
  readonly onWarning: (message: string) => void;
  readonly intervalMs?: number;
}

export class FlushWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: FlushWatcherOptions) {}

  start(): void {
    try {
      this.watcher = watch(this.opts.dir, () => this.kick());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined;
      });
    } catch {
      // Polling alone.
    }
    this.timer = setInterval(() => this.kick(), this.opts.intervalMs ?? 5000);
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.drain();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async drain(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.opts.dir)).filter((n) => !n.startsWith('tmp.')).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(this.opts.dir, name);
      let text: string;
      try {
        text = await readFile(path, 'utf8');
        await unlink(path);
      } catch {
        continue; // Taken by someone else, or vanished.
      }
      const req = parseFlushRequest(text);
      if (!req) {
        this.opts.onWarning(`${path}: ignoring a malformed flush request: "${text.trim().slice(0, 100)}"`);
        continue;
      }
      try {
        await this.opts.onFlush(req);
      } catch (err) {
        this.opts.onWarning(`${describeFlush(req)}: ${(err as Error).message}`);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
