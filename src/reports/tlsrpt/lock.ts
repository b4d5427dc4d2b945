/**
 * lock.ts — one owner of the TLS-RPT store at a time: `$data_directory/tlsrpt/lock`
 * holds the owner's PID (created with O_EXCL). The daemon holds it while it
 * runs; `sealpost tlsrpt send --now` takes it only when no live process does,
 * and otherwise asks the owner (service.ts request files), so a period is
 * never closed or sent twice.
 *
 * Contract: `acquireStoreLock()` returns a release function or the PID of the
 * live owner; a lock left by a dead process is taken over.
 */
import { mkdirSync, openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The PID in the lock file when that process lives, else undefined. */
export function lockOwner(dir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dir, 'lock'), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function acquireStoreLock(dir: string): { release: () => void } | { owner: number } {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'lock');
  for (let i = 0; i < 3; i++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return {
        release: () => {
          try {
            if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
          } catch {
            // Already gone.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = lockOwner(dir);
      if (owner !== undefined && owner !== process.pid) return { owner };
      try {
        unlinkSync(path); // stale: its process is gone
      } catch {
        // Raced with another remover.
      }
    }
  }
  throw new Error(`${path}: cannot take the lock`);
}
