/**
 * control.ts — the command-line side of the daemon (what postfix-script does
 * for `postfix start|stop|abort|reload|status`): find the running master
 * (the master lock says whether it runs, its pid file which process it is),
 * signal it, wait for it, and start it in the background.
 *
 * Contract:
 * - `startBackground()` spawns `sealpost start-fg -c DIR` detached, stdout and
 *   stderr to `maillog_file` (or /dev/null), with an IPC channel on which the
 *   child reports `{ready}` once its listeners are up or `{error}` with its
 *   one-line fatal message; resolves with the child's PID or throws
 *   UserError with that line. The child never holds the caller's terminal.
 * - `stopDaemon()` sends SIGTERM (graceful) or SIGKILL (abort) and waits until
 *   the master lock is released — the moment the process is gone, reaped or
 *   not — at most `timeoutMs`; then it removes the pid file (a master that
 *   dropped its privileges cannot).
 * - `signalReload()` sends SIGHUP (validation happens in the caller first).
 *
 * Not here: argument parsing and messages (cli/daemon.ts), the master itself
 * (main.ts).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../lib/errors.ts';
import { waitForRelease } from './lock.ts';
import { daemonPid, removePidFile } from './pidfile.ts';

export { daemonPid };

/** Messages the background child sends its starter. */
export type StartMessage = { readonly kind: 'ready'; readonly pid: number } | { readonly kind: 'error'; readonly message: string };

/** The command that runs sealpost in a child: node [tsx loader] entry. */
export function selfCommand(): { command: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here);
  const entry = join(dirname(here), `entry${ext}`);
  // Running from TypeScript sources (tests, development): the child needs the same loader.
  const loader = ext === '.ts' ? ['--import', import.meta.resolve('tsx')] : [];
  return { command: process.execPath, args: [...loader, entry] };
}

export interface StartOptions {
  readonly configDir: string;
  /** maillog_file ('' = discard the child's output). */
  readonly logFile: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
}

/** See the header. */
export async function startBackground(opts: StartOptions): Promise<number> {
  const { command, args } = selfCommand();
  const out = opts.logFile === '' || opts.logFile === '/dev/stdout' || opts.logFile === '/dev/stderr' ? '/dev/null' : opts.logFile;
  let fd: number;
  try {
    fd = openSync(out, 'a', 0o640);
  } catch (err) {
    throw new UserError(`cannot open ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: check maillog_file`);
  }
  try {
    const child = spawn(command, [...args, 'start-fg', '-c', opts.configDir], {
      detached: true,
      stdio: ['ignore', fd, fd, 'ipc'],
      env: { ...opts.env, SEALPOST_START_IPC: '1' } as NodeJS.ProcessEnv,
    });
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        finish();
        child.kill('SIGTERM');
        reject(new UserError(`the mail system did not start within ${Math.round((opts.timeoutMs ?? 30_000) / 1000)}s; see the mail log`));
      }, opts.timeoutMs ?? 30_000);
      const finish = (): void => {
        clearTimeout(timer);
        child.removeAllListeners();
        if (child.connected) child.disconnect();
        child.unref();
      };
      child.on('message', (m: StartMessage) => {
        finish();
        if (m.kind === 'ready') resolve(m.pid);
        else reject(new UserError(m.message));
      });
      child.on('error', (err) => {
        finish();
        reject(new UserError(`cannot run ${command}: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        finish();
        reject(new UserError(`the mail system exited during start (${signal ?? `status ${code}`}); see the mail log`));
      });
    });
  } finally {
    closeSync(fd);
  }
}

/** Stop the daemon: graceful (SIGTERM) or abort (SIGKILL). See the header. */
export async function stopDaemon(queueDir: string, pid: number, how: 'graceful' | 'abort', timeoutMs: number): Promise<boolean> {
  try {
    process.kill(pid, how === 'graceful' ? 'SIGTERM' : 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw new UserError(`cannot signal process ${pid}: ${(err as Error).message}`);
  }
  // The lock goes with the process, zombie or not: no kill(pid, 0) polling that waits for a reaper.
  const gone = await waitForRelease(queueDir, timeoutMs, 10);
  if (gone) removePidFile(queueDir, pid);
  return gone;
}

/** Ask the daemon to re-read its configuration. */
export function signalReload(pid: number): void {
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    throw new UserError(`cannot signal process ${pid}: ${(err as Error).message}`);
  }
}
