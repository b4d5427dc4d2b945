/**
 * pidfile.ts — the master's pid file, `queue_directory/pid/master.pid`, the
 * one fact every control command (status, stop, reload, postqueue -f) uses to
 * find the running daemon.
 *
 * Contract:
 * - The file holds the decimal PID and a newline (as Postfix's master.pid).
 * - `acquirePidFile()` creates it atomically (write a private temporary file,
 *   then link(2) it to the final name, which fails when the name exists), so a
 *   reader never sees a half-written file and two starters cannot both win.
 *   A file naming a dead process is stale and replaced; a live one makes it
 *   throw AlreadyRunningError (master(8): "the Postfix mail system is already
 *   running").
 * - `releasePidFile()` removes the file only while it still names this owner.
 * - `readDaemonPid()` answers "which live process is the daemon", or undefined.
 *
 * Not here: Postfix's flock(2)-based master.lock (Node has no flock). A
 * recycled PID that happens to belong to another live process makes a stale
 * file look live; `sealpost abort` or removing the file resolves that.
 */
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Another live daemon holds the pid file. */
export class AlreadyRunningError extends Error {
  readonly pid: number;
  constructor(pid: number) {
    super('the sealpost mail system is already running');
    this.name = 'AlreadyRunningError';
    this.pid = pid;
  }
}

export function pidDirectory(queueDir: string): string {
  return join(queueDir, 'pid');
}

export function pidFilePath(queueDir: string): string {
  return join(pidDirectory(queueDir), 'master.pid');
}

/** True when `pid` names a live process (EPERM: alive, owned by someone else). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The PID written in the file, or undefined when there is no (parsable) file. */
export function readPidFile(queueDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFilePath(queueDir), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number.parseInt(text.trim(), 10);
  return /^\s*\d+\s*$/.test(text) && pid > 0 ? pid : undefined;
}

/** The running daemon's PID, or undefined when none is running. */
export function readDaemonPid(queueDir: string): number | undefined {
  const pid = readPidFile(queueDir);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/** Create the pid file for `pid` (default: this process); see the header. */
export function acquirePidFile(queueDir: string, pid: number = process.pid): void {
  const dir = pidDirectory(queueDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const final = pidFilePath(queueDir);
  const tmp = join(dir, `master.pid.${pid}.tmp`);
  writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, final);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 3) throw err;
      }
      const holder = readPidFile(queueDir);
      if (holder !== undefined && holder !== pid && isAlive(holder)) throw new AlreadyRunningError(holder);
      // Stale (dead owner or garbage): replace it.
      try {
        unlinkSync(final);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // Already gone.
    }
  }
}

/** Remove the pid file if it still names `pid`. */
export function releasePidFile(queueDir: string, pid: number = process.pid): boolean {
  if (readPidFile(queueDir) !== pid) return false;
  try {
    unlinkSync(pidFilePath(queueDir));
    return true;
  } catch {
    return false;
  }
}
