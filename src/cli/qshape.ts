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

/** Perl's numeric reading of an option value: the leading number, else 0. */
function num(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number.parseFloat(v);
  return Number.isNaN(n) ? 0 : n;
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

function queueFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((n) => !n.startsWith('tmp.'))
      .sort()
      .map((n) => join(dir, n));
  } catch {
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
  const batch = tty ? (num(opts.value('N')) ?? 1000) : 0;
  const top = tty ? (num(opts.value('n')) ?? 20) : 0;
  const cls = batch > 0 ? '\x1b[H\x1b[2J' : '';
  const shape = new QueueShape(
    {
      senders: opts.has('s'),
      parents: opts.has('p'),
      linear: opts.has('l'),
      ...(opts.has('m') ? { minSubdomains: num(opts.value('m'))! } : {}),
      ...(opts.has('b') ? { buckets: num(opts.value('b'))! } : {}),
      ...(opts.has('t') ? { bucketMinutes: num(opts.value('t'))! } : {}),
      ...(opts.has('w') ? { width: num(opts.value('w'))! } : {}),
    },
    Math.floor(Date.now() / 1000),
  );
  let counted = 0;
  for (const q of queues) {
    for (const path of queueFiles(isAbsolute(q) ? q : join(queueDir, q))) {
      const m = readOne(path);
      if (!m || !shape.add(m.arrival, m.sender, m.recipients)) continue;
      if (batch > 0 && ++counted % batch === 0) ctx.stdout.write(cls + shape.render(top));
    }
  }
  ctx.stdout.write(cls + shape.render(top));
  return EX.OK;
}
