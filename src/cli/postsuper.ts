/**
 * postsuper.ts — `sealpost postsuper`: delete, hold, release, requeue and
 * force-expire queued mail, as postsuper(1).
 *
 * Contract (postsuper.c):
 * - Options `-d -e -f -h -H -r` take a queue ID, `ALL` (upper case only) or `-`
 *   (IDs from stdin, one per line); each may repeat, and they run in the order
 *   given. Operands name the queues to act on (default: maildrop, incoming,
 *   active, deferred, hold); an unknown name is fatal (`invalid directory name`).
 * - Per ID: `-d` deletes (and its delay log), `-h` moves to hold (never from
 *   maildrop or hold), `-H` moves hold → deferred, `-e` marks forced expiry
 *   (never in maildrop), `-f` = `-e` and then `-H`, `-r` copies the message into
 *   `incoming` under a new queue ID (pending recipients only; spool.requeue)
 *   and deletes the old one. Each success logs `ID: removed|placed on hold|
 *   released from hold|expired|requeued` on stderr; an ID that fails
 *   mail_queue_id_ok() gives `warning: invalid mail queue id: ID`. `ALL` does
 *   the same over whole queues without per-message lines.
 * - Then the totals, in Postfix's order: `Requeued:`, `Deleted:`,
 *   `Force-expired:`, `Placed on hold:`, `Released from hold:` `N message(s)`.
 * - `-p` removes temporary files older than one hour (Postfix: seven days);
 *   `-s`/`-S` (structure check) have nothing to fix in the flat spool and are
 *   accepted as no-ops. `corrupt` may be named as a queue for `-d`.
 *
 * Not here: the superuser check (sealpost runs as one service user), pickup
 * and cleanup rewriting on requeue (there are none yet: requeued mail keeps its
 * addresses).
 */
import { createInterface } from 'node:readline';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { EX, UserError } from '../lib/errors.ts';
import { progress } from '../lib/progress.ts';
import { isValidQueueId } from '../queue/queue-id.ts';
import { isQueueName, openSpool } from '../queue/spool.ts';
import type { QueueName, Spool } from '../queue/spool.ts';
import { warn } from './context.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';
import { isNotFound } from '../lib/fs-errors.ts';

const USAGE =
  'usage: postsuper [-c config_dir] [-d queue_id (delete)] [-e queue_id (expire)] [-f queue_id (expire and/or un-hold)] ' +
  '[-h queue_id (hold)] [-H queue_id (un-hold)] [-p (purge temporary files)] [-r queue_id (requeue)] ' +
  '[-s (structure fix)] [-S (redundant structure fix)][-v (verbose)] [queue...]';

const DEFAULT_QUEUES: readonly QueueName[] = ['maildrop', 'incoming', 'active', 'deferred', 'hold'];
const TEMP_AGE_MS = 60 * 60 * 1000;

interface Counters {
  requeued: number;
  deleted: number;
  expired: number;
  held: number;
  released: number;
}

type Op = 'd' | 'e' | 'f' | 'h' | 'H' | 'r';

interface Run {
  readonly ctx: CommandContext;
  readonly spool: Spool;
  readonly queues: readonly QueueName[];
  readonly n: Counters;
}

function info(ctx: CommandContext, message: string): void {
  ctx.stderr.write(`${ctx.prog}: ${message}\n`);
}

/** The queues an operation may touch, in the user's order (postsuper.c *_one()). */
function eligible(op: Op | 'H-after-f', queues: readonly QueueName[]): QueueName[] {
  switch (op) {
    case 'd':
      return [...queues];
    case 'h':
      return queues.filter((q) => q !== 'maildrop' && q !== 'hold' && q !== 'corrupt');
    case 'H':
    case 'H-after-f':
      return queues.filter((q) => q === 'hold');
    case 'e':
    case 'f':
    case 'r':
      return queues.filter((q) => q !== 'maildrop' && q !== 'corrupt');
  }
}

async function deleteOne(r: Run, id: string, q: QueueName): Promise<boolean> {
  if (!(await r.spool.remove(q, id))) return false;
  r.n.deleted++;
  return true;
}

async function holdOne(r: Run, id: string, q: QueueName): Promise<boolean> {
  if (!(await r.spool.move(id, q, 'hold'))) return false;
  r.n.held++;
  return true;
}

async function releaseOne(r: Run, id: string, q: QueueName): Promise<boolean> {
  if (!(await r.spool.move(id, q, 'deferred'))) return false;
  r.n.released++;
  return true;
}

async function expireOne(r: Run, id: string, q: QueueName): Promise<boolean> {
  try {
    if (!(await r.spool.setForcedExpire(q, id, true))) return false; // already expired: not counted
  } catch (err) {
    if (isNotFound(err)) return false;
    warn(r.ctx, `expire file ${q}/${id}: ${(err as Error).message}`);
    return false;
  }
  r.n.expired++;
  return true;
}

async function requeueOne(r: Run, id: string, q: QueueName): Promise<boolean> {
  const newId = await r.spool.requeue(q, id);
  if (newId === undefined) return false;
  r.n.requeued++;
  return true;
}

const ACTIONS: Record<Op, { fn: (r: Run, id: string, q: QueueName) => Promise<boolean>; text: string }> = {
  d: { fn: deleteOne, text: 'removed' },
  e: { fn: expireOne, text: 'expired' },
  f: { fn: expireOne, text: 'expired' },
  h: { fn: holdOne, text: 'placed on hold' },
  H: { fn: releaseOne, text: 'released from hold' },
  r: { fn: requeueOne, text: 'requeued' },
};

/** Act on the first eligible queue that holds the ID. */
async function operateOne(r: Run, op: Op, id: string): Promise<void> {
  if (!isValidQueueId(id)) {
    warn(r.ctx, `invalid mail queue id: ${id}`);
    return;
  }
  const { fn, text } = ACTIONS[op];
  for (const q of eligible(op, r.queues)) {
    if (r.spool.locate(id, [q]) === undefined) continue;
    if (await fn(r, id, q)) {
      info(r.ctx, `${id}: ${text}`);
      break;
    }
    if (op === 'e' || op === 'f') break; // found but already expired
  }
  if (op === 'f') await operateOne(r, 'H', id); // exp_rel_one(): expire, then release
}

/**
 * Messages ALL works on at once: each is its own file, and a requeue waits for its fsyncs, so
 * one at a time left the disk and the thread pool idle (100k requeued: 167 s).
 */
const ALL_IN_FLIGHT = 32;

/** ALL: every message of every eligible queue, without per-message lines. */
async function operateAll(r: Run, op: Op): Promise<void> {
  const items = r.queues.flatMap((q) => r.spool.list(q).map((id) => [q, id] as const));
  const shown = progress(r.ctx.stderr, { label: `postsuper -${op} ALL`, unit: 'messages', total: items.length });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const [q, id] = items[next++]!;
      if (eligible(op, [q]).length > 0) await ACTIONS[op].fn(r, id, q);
      if (op === 'f' && q === 'hold') await releaseOne(r, id, q);
      shown.tick();
    }
  };
  await Promise.all(Array.from({ length: Math.min(ALL_IN_FLIGHT, items.length) }, worker));
  shown.done();
}

async function readIds(ctx: CommandContext): Promise<string[]> {
  const ids: string[] = [];
  const rl = createInterface({ input: ctx.stdin, crlfDelay: Infinity });
  for await (const line of rl) ids.push(line);
  return ids;
}

function report(r: Run, used: Set<Op>): void {
  const plural = (k: number): string => `${k} message${k !== 1 ? 's' : ''}`;
  if (used.has('r')) info(r.ctx, `Requeued: ${plural(r.n.requeued)}`);
  if (used.has('d')) info(r.ctx, `Deleted: ${plural(r.n.deleted)}`);
  if (used.has('e') || used.has('f')) info(r.ctx, `Force-expired: ${plural(r.n.expired)}`);
  if (used.has('h')) info(r.ctx, `Placed on hold: ${plural(r.n.held)}`);
  if (used.has('H') || used.has('f')) info(r.ctx, `Released from hold: ${plural(r.n.released)}`);
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'c:d:e:f:h:H:pr:sSv', USAGE);
  const queues: QueueName[] = [];
  for (const name of opts.rest) {
    if (!isQueueName(name)) throw new UserError(`invalid directory name: ${name}`);
    queues.push(name);
  }
  const configDir = resolveConfigDir(opts.value('c'), ctx.env);
  const config = loadConfig({ configDir, warn: (m: string) => warn(ctx, m) });
  const queueDir = config.get('queue_directory');
  let spool: Spool;
  try {
    spool = openSpool(queueDir, { longQueueIds: config.getBool('enable_long_queue_ids') });
  } catch (err) {
    throw new UserError(`${(err as Error).message} (queue_directory in ${configDir}/main.cf)`);
  }
  const run: Run = { ctx, spool, queues: queues.length > 0 ? queues : DEFAULT_QUEUES, n: { requeued: 0, deleted: 0, expired: 0, held: 0, released: 0 } };
  // postsuper.c: repair operations (-p, -s, -S) run before the others.
  if (opts.has('p')) await spool.recover(TEMP_AGE_MS);
  const used = new Set<Op>();
  let stdinRead = false;
  for (const [flag, arg] of opts.list) {
    if (!(flag in ACTIONS)) continue;
    const op = flag as Op;
    used.add(op);
    if (arg === 'ALL') await operateAll(run, op);
    else if (arg === '-') {
      // operate_stream(): a second `-` finds standard input at end of file.
      const ids = stdinRead ? [] : await readIds(ctx);
      stdinRead = true;
      for (const id of ids) await operateOne(run, op, id);
    } else await operateOne(run, op, arg ?? '');
  }
  report(run, used);
  return EX.OK;
}
