/**
 * postqueue.ts — `sealpost postqueue` (and `mailq`): list the queue (-p, -j) or
 * ask the daemon to flush it (-f, -i queue_id, -s site), as postqueue(1).
 *
 * Contract:
 * - `-p` (and the program invoked as `mailq`) prints Postfix's mailq layout,
 *   `-j` JSON lines (showq.ts). Who may read the queue (root, mail_owner)
 *   reads the spool directly; a read-only listing never moves or changes
 *   files (a corrupt file is reported with a warning and skipped). Other
 *   users get the same bytes from the running daemon's showq service
 *   (daemon/showq-service.ts) through the setgid postqueue helper, or
 *   `fatal: Queue report unavailable - mail system is down (...)`, exit 69.
 * - Exactly one mode; none or several, or stray operands, give Postfix's usage
 *   line (exit 64).
 * - Flush requests go to a running daemon through the trigger area
 *   `queue_directory/public/flush/`: one file per request, written to a
 *   `tmp.*` name and renamed, holding one line: `flush all`,
 *   `flush queue_id ID` or `flush site SITE`. The daemon is running when
 *   its master lock is held (daemon/lock.ts); otherwise nothing is
 *   written and the command fails like Postfix: `Cannot flush mail queue - mail
 *   system is down` (exit 69).
 *
 * Not here: the flush itself (the daemon's scheduler), fast-flush logs per site
 * (`-s` is accepted for any syntactically valid site).
 */
import { availableParallelism } from 'node:os';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { EX, UsageError, UserError } from '../lib/errors.ts';
import { isValidQueueId } from '../queue/queue-id.ts';
import { listQueue } from '../queue/listing.ts';
import { asctime } from '../queue/showq.ts';
import { MESSAGE_QUEUES, openSpool } from '../queue/spool.ts';
import { NO_PROGRESS, progress } from '../lib/progress.ts';
import { mayReadDirectly, runHelper } from '../intake/postdrop.ts';
import type { Spool } from '../queue/spool.ts';
import { warn } from './context.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

const USAGE = 'usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site';

type Mode = { kind: 'p' } | { kind: 'j' } | { kind: 'f' } | { kind: 'i'; id: string } | { kind: 's'; site: string };

function parseMode(ctx: CommandContext): { mode: Mode; cFlag: string | undefined } {
  const opts = getopt(ctx.argv, 'c:fi:jps:v', USAGE);
  let mode: Mode | undefined = ctx.prog === 'sealpost/mailq' ? { kind: 'p' } : undefined;
  const set = (m: Mode): void => {
    // postqueue.c: a second mode option is a usage error.
    if (mode && ctx.prog !== 'sealpost/mailq') throw new UsageError(USAGE);
    mode = m;
  };
  for (const [flag, arg] of opts.list) {
    if (flag === 'f') set({ kind: 'f' });
    else if (flag === 'i') set({ kind: 'i', id: arg ?? '' });
    else if (flag === 'j') set({ kind: 'j' });
    else if (flag === 'p') set({ kind: 'p' });
    else if (flag === 's') set({ kind: 's', site: arg ?? '' });
  }
  if (!mode || opts.rest.length > 0) throw new UsageError(USAGE);
  return { mode, cFlag: opts.value('c') };
}

async function writeOut(ctx: CommandContext, text: string): Promise<void> {
  if (text === '') return;
  await new Promise<void>((resolve, reject) => ctx.stdout.write(text, (err) => (err ? reject(err) : resolve())));
}

/** The master lock says whether the daemon runs (daemon/lock.ts): a dead master's pid file does not count. */
async function daemonRunning(queueDir: string): Promise<boolean> {
  const { masterLockHeld } = await import('../daemon/lock.ts');
  return masterLockHeld(queueDir);
}

/** A destination postqueue -s accepts: a domain name or a bracketed address. */
function validSite(site: string): boolean {
  return /^\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9]+)?\]$|^(?:IPv6:)?[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$/.test(site);
}

async function requestFlush(queueDir: string, line: string): Promise<void> {
  const dir = join(queueDir, 'public', 'flush');
  const name = `${Date.now()}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  const tmp = join(dir, `tmp.${name}`);
  try {
    // Readable by the daemon when root writes it: the daemon runs as mail_owner.
    await writeFile(tmp, line + '\n', { mode: 0o644 });
    await rename(tmp, join(dir, name));
  } catch (err) {
    throw new UserError(`Cannot flush mail queue - cannot write request to ${dir}: ${(err as Error).message}`, EX.UNAVAILABLE);
  }
}

async function flush(queueDir: string, mode: Mode): Promise<void> {
  let line: string;
  if (mode.kind === 'i') {
    // postqueue.c: mail_queue_id_ok() before contacting flush(8).
    if (!isValidQueueId(mode.id)) throw new UserError(`Cannot flush queue ID - invalid name: "${mode.id.slice(0, 100)}${mode.id.length > 100 ? '...' : ''}"`, EX.USAGE);
    line = `flush queue_id ${mode.id}`;
  } else if (mode.kind === 's') {
    if (!validSite(mode.site)) throw new UserError(`Cannot flush mail queue - invalid destination: "${mode.site.slice(0, 100)}${mode.site.length > 100 ? '...' : ''}"`, EX.USAGE);
    line = `flush site ${mode.site}`;
  } else {
    line = 'flush all';
  }
  if (!(await daemonRunning(queueDir))) throw new UserError('Cannot flush mail queue - mail system is down', EX.UNAVAILABLE);
  await requestFlush(queueDir, line);
}

export async function main(ctx: CommandContext): Promise<number> {
  const { mode, cFlag } = parseMode(ctx);
  const configDir = resolveConfigDir(cFlag, ctx.env);
  const config = loadConfig({ configDir, warn: (m: string) => warn(ctx, m) });
  const queueDir = config.get('queue_directory');
  if (mode.kind === 'f' || mode.kind === 'i' || mode.kind === 's') {
    await flush(queueDir, mode);
    return EX.OK;
  }
  if (!mayReadDirectly(queueDir, MESSAGE_QUEUES)) return listThroughShowq(ctx, configDir, config.get('daemon_directory'), mode.kind === 'j');
  let spool: Spool;
  try {
    spool = openSpool(queueDir);
  } catch (err) {
    throw new UserError(`${(err as Error).message} (queue_directory in ${configDir}/main.cf)`);
  }
  // Progress on a terminal while the listing goes to a pipe or a file (lib/progress.ts): each
  // listed message ends with an empty line (mailq layout) or a newline (-j).
  const stdoutTty = (ctx.stdout as { isTTY?: boolean }).isTTY === true;
  const shown = stdoutTty ? NO_PROGRESS : progress(ctx.stderr, { label: 'mailq', unit: 'messages', total: () => MESSAGE_QUEUES.reduce((n, q) => n + spool.list(q).length, 0) });
  const ends = mode.kind === 'j' ? /\n/g : /\n\n/g;
  await listQueue(spool, {
    format: mode.kind === 'j' ? 'json' : 'compat',
    longQueueIds: config.getBool('enable_long_queue_ids'),
    asctime: (s) => asctime(s),
    emptyAddress: config.get('empty_address_recipient') || 'MAILER-DAEMON',
    write: (chunk) => (shown.tick(chunk.match(ends)?.length ?? 0), writeOut(ctx, chunk)),
    onWarning: (m) => warn(ctx, m),
    // Big queues are read and formatted by two threads (listing.ts); output is the same.
    threads: Math.min(2, availableParallelism()),
  });
  shown.done();
  return EX.OK;
}

/**
 * A user who may not read the queue asks the running daemon's showq service
 * through the setgid postqueue helper (postqueue(1) does the same); its
 * output is what the direct listing prints. Daemon down: Postfix's `Queue
 * report unavailable - mail system is down`, exit 69.
 */
async function listThroughShowq(ctx: CommandContext, configDir: string, daemonDir: string, json: boolean): Promise<number> {
  const helper = join(daemonDir, 'postqueue');
  const prog = ctx.prog.replace(/^.*\//, '') === 'mailq' ? 'mailq' : 'postqueue';
  return runHelper({ helper, configDir, prog, args: [json ? '-j' : '-p'], stdout: ctx.stdout, stderr: ctx.stderr });
}
