/**
 * pidfile.ts — the master's pid file, `queue_directory/pid/master.pid`: which
 * process the control commands (stop, abort, reload) signal.
 *
 * Contract:
 * - The file holds the decimal PID and a newline (as Postfix's master.pid).
 * - Whether a master runs is the master lock's answer (lock.ts), never this
 *   file's: a PID can belong to a zombie or be recycled. `daemonPid()` combines
 *   the two: the PID in the file while the lock is held, else undefined.
 * - `writePidFile()` is called by the lock holder only, so it simply replaces
 *   the file atomically (temporary file + rename); a stale file left by a
 *   crash is overwritten. The master writes it while still root: `pid/` is
 *   root-owned (Postfix's postfix-files: `$queue_directory/pid:d:root:-:755`)
 *   so the unprivileged daemon can neither forge it nor remove it later;
 *   `sealpost stop` removes it once the master is gone.
 *
 * Not here: the lock (lock.ts).
 */
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { masterLockHeld } from './lock.ts';

export function pidDirectory(queueDir: string): string {
  return join(queueDir, 'pid');
}

export function pidFilePath(queueDir: string): string {
  return join(pidDirectory(queueDir), 'master.pid');
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

/** Write the pid file for `pid` (the caller holds the master lock). */
export function writePidFile(queueDir: string, pid: number = process.pid): void {
  mkdirSync(pidDirectory(queueDir), { recursive: true, mode: 0o755 });
  const tmp = join(pidDirectory(queueDir), `master.pid.${pid}.tmp`);
  writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  renameSync(tmp, pidFilePath(queueDir));
}

/** Remove the pid file if it still names `pid`; false when it does not or cannot be removed. */
export function removePidFile(queueDir: string, pid: number = process.pid): boolean {
  if (readPidFile(queueDir) !== pid) return false;
  try {
    unlinkSync(pidFilePath(queueDir));
    return true;
  } catch {
    // EACCES: a master that dropped its privileges cannot remove it; `sealpost stop` does.
    return false;
  }
}

/** The running master's PID, or undefined when none runs (see the header). */
export async function daemonPid(queueDir: string): Promise<number | undefined> {
  if (!(await masterLockHeld(queueDir))) return undefined;
  return readPidFile(queueDir) ?? 0;
}
