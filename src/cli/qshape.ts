/**
 * qshape.ts — `sealpost qshape [-s] [-p] [-m min_subdomains] [-b bucket_count]
 * [-t bucket_time] [-l] [-w terminal_width] [-N batch_msg_count]
 * [-n batch_top_domains] [-c config_dir] [queue_name ...]`: the queue's
 * domain × age distribution in Postfix qshape(1)'s layout
 * (reports/queue-shape.ts).
 *
 * Contract (qshape(1)):
 * - Queues: `incoming active` by default; names are taken relative to
 *   queue_directory (`maildrop`, `incoming`, `active`, `deferred`, `hold`),
 *   absolute paths are used as they are. A missing directory counts nothing.
 * - Ages are from each message's arrival time (whole seconds, as qshape
 *   reads the queue file's time record) to the start of the run.
 * - When standard output is a terminal, intermediate tables are shown every
 *   `-N` (default 1000) messages, each after clearing the screen, and only
 *   the top `-n` (default 20) rows; elsewhere the one final table is complete.
 *   `-N 0` / `-n 0` turn either off on a terminal.
 * - Read-only: files are read, never moved; unreadable or corrupt files are
 *   skipped silently, as qshape skips what does not parse.
 *
 * Not here: the computation and layout (reports/queue-shape.ts).
 */
import { readdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { EX } from '../lib/errors.ts';
import { readEnvelopeSync } from '../queue/spool.ts';
import { QueueShape } from '../reports/queue-shape.ts';
import { warn, type CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

const USAGE =
  'usage: sealpost qshape [-s] [-p] [-m min_subdomains] [-l] [-b bucket_count] [-t bucket_time] [-w terminal_width] ' +
  '[-N batch_msg_count] [-n batch_top_domains] [-c config_directory] [queue_name ...]';

/**
 * Perl's numeric reading of an option value: the leading number, else 0. Like Perl's
 * "isn't numeric" warning (Postfix's qshape runs with -w), a value that is not wholly a
 * number is reported, with what it was read as.
 */
function num(v: string | undefined, flag: string, warnOf: (m: string) => void): number | undefined {
  if (v === undefined) return undefined;
  const n = Number.parseFloat(v);
  const read = Number.isNaN(n) ? 0 : n;
  if (!/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v)) warnOf(`-${flag} "${v}" is not a number: read as ${read}`);
  return read;
}

/** What qshape counts of one file, or undefined when it does not parse. */
function readOne(path: string): { arrival: number; sender: string; recipients: string[] } | undefined {
  try {
    const env = readEnvelopeSync(path);
    return {
      arrival: Math.floor(env.arrivalTime / 1000),
      sender: env.sender,
      recipients: env.recipients.filter((r) => r.status === 'pending').map((r) => r.address),
    };
  } catch {
    return undefined;
  }
}

/** The files of one queue directory; one that cannot be read is reported (as Postfix's "Can't stat") and counts as empty. */
function queueFiles(dir: string, warnOf: (m: string) => void): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => !n.startsWith('tmp.'))
      .sort()
      .map((n) => join(dir, n));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such queue directory (queue names: incoming active deferred hold maildrop, or an absolute path)'
      : code === 'EACCES' ? 'permission denied: run qshape as root or mail_owner'
      : (err as Error).message;
    warnOf(`cannot read ${dir}: ${why}`);
    return [];
  }
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'lhc:psw:b:t:m:n:N:', USAGE);
  if (opts.has('h')) {
    ctx.stdout.write(USAGE + '\n');
    return EX.OK;
  }
  const queues = opts.rest.length > 0 ? opts.rest : ['incoming', 'active'];
  let queueDir = '';
  if (queues.some((q) => !isAbsolute(q))) {
    const config = loadConfig({ configDir: resolveConfigDir(opts.value('c'), ctx.env), warn: (m) => warn(ctx, m) });
    queueDir = config.get('queue_directory');
  }
  const tty = (ctx.stdout as { isTTY?: boolean }).isTTY === true;
  const w = (m: string): void => warn(ctx, m);
  const batch = tty ? (num(opts.value('N'), 'N', w) ?? 1000) : 0;
  const top = tty ? (num(opts.value('n'), 'n', w) ?? 20) : 0;
  const cls = batch > 0 ? '\x1b[H\x1b[2J' : '';
  const shape = new QueueShape(
    {
      senders: opts.has('s'),
      parents: opts.has('p'),
      linear: opts.has('l'),
      ...(opts.has('m') ? { minSubdomains: num(opts.value('m'), 'm', w)! } : {}),
      ...(opts.has('b') ? { buckets: num(opts.value('b'), 'b', w)! } : {}),
      ...(opts.has('t') ? { bucketMinutes: num(opts.value('t'), 't', w)! } : {}),
      ...(opts.has('w') ? { width: num(opts.value('w'), 'w', w)! } : {}),
    },
    Math.floor(Date.now() / 1000),
  );
  let counted = 0;
  for (const q of queues) {
    for (const path of queueFiles(isAbsolute(q) ? q : join(queueDir, q), w)) {
      const m = readOne(path);
      if (!m || !shape.add(m.arrival, m.sender, m.recipients)) continue;
      if (batch > 0 && ++counted % batch === 0) ctx.stdout.write(cls + shape.render(top));
    }
  }
  ctx.stdout.write(cls + shape.render(top));
  return EX.OK;
}
