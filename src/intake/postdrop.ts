/**
 * postdrop.ts — how sealpost's commands cross the queue's protection
 * boundary for users who may not write or read it themselves: through the
 * setgid helpers that `sealpost set-permissions` builds from native/
 * (`$daemon_directory/postdrop` writes one maildrop file, `postqueue` asks
 * the daemon's showq service), as Postfix's sendmail runs postdrop(1) and
 * mailq runs the setgid postqueue(1).
 *
 * Contract:
 * - `mayWriteDirectly()` / `mayReadDirectly()`: whether this process can do
 *   the job itself (root, mail_owner, or a queue it owns): then no helper
 *   is involved and the output is the same.
 * - `runHelper()` runs a helper with `-c config_dir -N prog`, feeds it
 *   `input` (or nothing), streams its standard output to `stdout` and its
 *   standard error (Postfix-shaped `prog: fatal: ...` lines) to `stderr`,
 *   and resolves with its exit status. A helper that does not exist is a
 *   UserError naming the fix (`run (as root): sealpost set-permissions`).
 * - `submitThroughPostdrop()` hands one encoded queue file to postdrop and
 *   returns the maildrop queue ID it printed.
 *
 * Not here: what the helpers do (native/*.c), the queue file format
 * (queue/queue-file.ts).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { EX, UserError } from '../lib/errors.ts';

/** Names the helpers accept for their messages (native/mailconf.h set_prog). */
const PROG_NAMES = new Set(['sendmail', 'postdrop', 'mailq', 'postqueue', 'sealpost/mailq', 'sealpost/postqueue']);

function accessible(path: string, mode: number): boolean | 'missing' {
  try {
    accessSync(path, mode);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : false;
  }
}

/** True when this process may create files in `queue` (default maildrop/) itself, or the queue does not exist yet. */
export function mayWriteDirectly(queueDir: string, queue = 'maildrop'): boolean {
  if (process.geteuid?.() === 0) return true;
  return accessible(join(queueDir, queue), constants.W_OK | constants.X_OK) !== false;
}

/** True when this process may list the queue itself (or the queue is missing: the caller reports that). */
export function mayReadDirectly(queueDir: string, queues: readonly string[]): boolean {
  if (process.geteuid?.() === 0) return true;
  return queues.every((q) => accessible(join(queueDir, q), constants.R_OK | constants.X_OK) !== false);
}

export interface HelperRun {
  readonly helper: string;
  readonly configDir: string;
  readonly prog: string;
  readonly args?: readonly string[];
  readonly input?: Uint8Array;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** See the header. */
export function runHelper(r: HelperRun): Promise<number> {
  const prog = PROG_NAMES.has(r.prog) ? r.prog : 'postdrop';
  const args = ['-c', resolve(r.configDir), '-N', prog, ...(r.args ?? [])];
  return new Promise((done, fail) => {
    const child = spawn(r.helper, args, { stdio: ['pipe', 'pipe', 'pipe'], env: {} });
    child.stdout.on('data', (c: Buffer) => r.stdout.write(c));
    child.stderr.on('data', (c: Buffer) => r.stderr.write(c));
    child.stdin.on('error', () => undefined); // The helper may exit before reading everything (too big, refused).
    child.on('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'No such file or directory' : err.message;
      fail(new UserError(`cannot run ${r.helper}: ${why}: run (as root): sealpost set-permissions`, EX.TEMPFAIL));
    });
    child.on('close', (code, signal) => done(code ?? (signal ? EX.SOFTWARE : 0)));
    child.stdin.end(r.input ?? Buffer.alloc(0));
  });
}

/** Submit one queue file through postdrop; resolves with the queue ID, or the helper's exit status. */
export async function submitThroughPostdrop(helper: string, configDir: string, queueFile: Uint8Array, stderr: Writable): Promise<{ id: string } | { code: number }> {
  let out = '';
  const stdout = { write: (c: Buffer) => ((out += c.toString('latin1')), true) } as unknown as Writable;
  const code = await runHelper({ helper, configDir, prog: 'sendmail', input: queueFile, stdout, stderr });
  return code === 0 ? { id: out.trim() } : { code };
}
