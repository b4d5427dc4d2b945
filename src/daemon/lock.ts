/**
 * lock.ts — the master lock: at most one master per queue directory, with a
 * lock that dies with its holder. Postfix's master locks `master.pid` with
 * flock(2), which the kernel releases when the process dies; Node has no
 * flock, so sealpost holds a listening AF_UNIX socket in Linux's abstract
 * namespace instead (unix(7) "Abstract sockets": the name disappears when the
 * last descriptor is closed — at process exit, even while the dead process is
 * a zombie that nobody reaps, as in a container whose PID 1 does not wait).
 *
 * Contract:
 * - The socket name is derived from the queue directory's real path and a
 *   random nonce kept in `queue_directory/pid/master.lock` (created once, mode
 *   0600, by whoever starts the master — root in production). The nonce keeps
 *   an unprivileged local user from squatting the name before the master
 *   starts: abstract names have no file permissions.
 * - `acquireMasterLock()` binds the name; when it is taken it retries for
 *   `settleMs` (a master that was just SIGKILLed may not have exited yet),
 *   then throws AlreadyRunningError. The lock is released by `release()` or
 *   by the process's death; nothing is left on disk to clean up.
 * - `masterLockHeld()` answers "does a master run on this queue" by
 *   connecting to the name (refused = no holder). The holder closes every such
 *   connection at once, so probes cost it nothing. `start`, `status`, `stop`,
 *   `postqueue -f` and the check summary all ask this one question.
 * - `waitForRelease()` polls the name until nobody holds it: `stop` returns as
 *   soon as the daemon is gone, whatever its zombie state.
 *
 * Not here: the PID itself (pidfile.ts: `master.pid` says which process to
 * signal; the lock says whether it runs). Linux only (abstract namespace);
 * two network namespaces sharing one queue directory do not see each other's
 * lock.
 */
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { UserError } from '../lib/errors.ts';
import { isNotFound } from '../lib/fs-errors.ts';

/** Another live master holds the lock (master(8): "the Postfix mail system is already running"). */
export class AlreadyRunningError extends Error {
  constructor() {
    super('the sealpost mail system is already running');
    this.name = 'AlreadyRunningError';
  }
}

export interface MasterLock {
  /** The abstract socket name (without the leading NUL), for messages and tests. */
  readonly name: string;
  release(): Promise<void>;
}

/** How long acquire and the `start` check wait for a just-killed master to finish dying. */
export const LOCK_SETTLE_MS = 300;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function lockFilePath(queueDir: string): string {
  return join(queueDir, 'pid', 'master.lock');
}

function readNonce(queueDir: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(lockFilePath(queueDir), 'utf8').trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (isNotFound(e) || e.code === 'ENOTDIR') return undefined;
    throw new UserError(`cannot read ${lockFilePath(queueDir)}: ${e.code ?? e.message}: run this command as root`);
  }
  return /^[0-9a-f]{32}$/.test(text) ? text : undefined;
}

/** The nonce, created when missing (first writer wins: link(2) fails on an existing name). */
function ensureNonce(queueDir: string): string {
  const existing = readNonce(queueDir);
  if (existing !== undefined) return existing;
  const file = lockFilePath(queueDir);
  mkdirSync(join(queueDir, 'pid'), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  try {
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A garbage file: replace it (only a starter gets here, and it is about to take the lock).
      if (readNonce(queueDir) === undefined) {
        unlinkSync(file);
        linkSync(tmp, file);
      }
    }
  } finally {
    unlinkSync(tmp);
  }
  const nonce = readNonce(queueDir);
  if (nonce === undefined) throw new UserError(`cannot create ${file}: the file is not usable`);
  return nonce;
}

function realQueueDir(queueDir: string): string {
  try {
    return realpathSync(queueDir);
  } catch {
    return queueDir;
  }
}

/** The abstract name for a queue directory and nonce. */
export function lockName(queueDir: string, nonce: string): string {
  const digest = createHash('sha256').update(`${realQueueDir(queueDir)}\0${nonce}`).digest('hex').slice(0, 40);
  return `sealpost/master/${digest}`;
}

function tryBind(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => socket.destroy());
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen({ path: `\0${name}`, exclusive: true }, () => resolve(server));
  });
}

/** Take the lock for `queueDir`; see the header. */
export async function acquireMasterLock(queueDir: string, settleMs = LOCK_SETTLE_MS): Promise<MasterLock> {
  const name = lockName(queueDir, ensureNonce(queueDir));
  const deadline = Date.now() + settleMs;
  for (;;) {
    const server = await tryBind(name);
    if (server) {
      server.unref();
      return { name, release: () => new Promise<void>((r) => server.close(() => r())) };
    }
    if (Date.now() >= deadline) throw new AlreadyRunningError();
    await sleep(10);
  }
}

function probe(name: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ path: `\0${name}` });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True while a master holds the lock for `queueDir`. */
export async function masterLockHeld(queueDir: string): Promise<boolean> {
  const nonce = readNonce(queueDir);
  if (nonce === undefined) return false;
  return probe(lockName(queueDir, nonce));
}

/**
 * Like masterLockHeld, but a holder that lets go within `settleMs` counts as
 * gone (a master SIGKILLed a moment ago: `start` right after it must work).
 */
export async function masterLockHeldSettled(queueDir: string, settleMs = LOCK_SETTLE_MS): Promise<boolean> {
  return !(await waitForRelease(queueDir, settleMs, 10));
}

/** Wait until nobody holds the lock; false on timeout. */
export async function waitForRelease(queueDir: string, timeoutMs: number, pollMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (await masterLockHeld(queueDir)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}
