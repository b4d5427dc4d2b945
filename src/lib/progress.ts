/**
 * progress.ts — a one-line progress indicator for long commands (postmap of
 * a big table, postsuper -d/-r ALL, mailq on a huge queue).
 *
 * Contract:
 * - Only on a terminal: when the stream is not a TTY every method is a no-op,
 *   so pipes, files and tests that capture output see nothing.
 * - Written to the given stream (stderr), redrawn in place (`\r` + erase to
 *   end of line), at most every `intervalMs` (default 100 ms) and not before
 *   `delayMs` (default 300 ms, or SEALPOST_PROGRESS_DELAY_MS from the
 *   environment, which tests set to 0): a quick run draws nothing. `tick()` and
 *   `set()` are cheap (they look at the clock every 256 calls, or at once for
 *   a `tick(n)` of more than one).
 * - `done()` erases the line, so what the command prints next starts clean.
 *
 * Not here: what is counted (the commands), terminal width handling (the
 * line is short by construction).
 */

export interface ProgressOptions {
  readonly label: string;
  /** The total, when known (then a percentage is shown); a function is called only on a terminal. */
  readonly total?: number | (() => number);
  /** The counted thing, plural: `lines`, `messages`. */
  readonly unit: string;
  readonly intervalMs?: number;
  readonly delayMs?: number;
  readonly now?: () => number;
}

export interface Progress {
  tick(n?: number): void;
  set(done: number): void;
  done(): void;
}

/** Draws nothing: for callers that decided themselves not to show progress. */
export const NO_PROGRESS: Progress = { tick: () => undefined, set: () => undefined, done: () => undefined };

interface TtyLike {
  readonly isTTY?: boolean;
  write(s: string): unknown;
}

function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function progress(stream: TtyLike, opts: ProgressOptions): Progress {
  if (stream.isTTY !== true) return NO_PROGRESS;
  const now = opts.now ?? Date.now;
  const start = now();
  const total = typeof opts.total === 'function' ? opts.total() : opts.total;
  const interval = opts.intervalMs ?? 100;
  const delay = opts.delayMs ?? Number(process.env.SEALPOST_PROGRESS_DELAY_MS ?? 300);
  let count = 0;
  let calls = 0;
  let last = 0;
  let drawn = false;
  const draw = (): void => {
    const t = now();
    if (t - start < delay || t - last < interval) return;
    last = t;
    drawn = true;
    const of = total !== undefined && total > 0 ? ` of ${thousands(total)} (${Math.floor((count / total) * 100)}%)` : '';
    stream.write(`\r\x1b[K${opts.label}: ${thousands(count)}${of} ${opts.unit}`);
  };
  return {
    tick(n = 1) {
      count += n;
      if ((++calls & 255) === 0 || n > 1) draw();
    },
    set(done) {
      count = done;
      if ((++calls & 255) === 0) draw();
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}
