/**
 * main.ts — the process around a command: what bin/sealpost.js runs (after
 * sizing libuv's thread pool), and the test harness runs from the sources.
 *
 * Contract:
 * - The command's exit status becomes the process's; stdout is drained first
 *   (process.exitCode, no process.exit()).
 * - A closed stdout or stderr (`sealpost mailq | head -1`) ends the command
 *   quietly, as for any Unix tool.
 * - Whatever escapes a command (an `error` event nobody awaited, a rejected
 *   promise nobody handled) still ends in one line for a file-system error
 *   and a bug report with the stack for anything else (lib/errors.ts), never
 *   in Node's default crash dump.
 *
 * Not here: the command line (sealpost.ts).
 */
import { basename } from 'node:path';
import { describeError } from '../lib/errors.ts';
import { run } from './sealpost.ts';

function lastResort(program: string): (err: unknown) => void {
  return (err) => {
    const d = describeError(err);
    process.stderr.write(d.bug ? `${program}: fatal: internal error (a sealpost bug; please report it): ${d.message}\n` : `${program}: fatal: ${d.message}\n`);
    process.exit(d.exitCode);
  };
}

export async function main(argv: readonly string[] = process.argv): Promise<void> {
  const argv0 = argv[1] ?? 'sealpost';
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw err;
    });
  }
  const handler = lastResort(basename(argv0).replace(/\.(js|ts)$/, ''));
  process.on('uncaughtException', handler);
  process.on('unhandledRejection', handler);
  process.exitCode = await run(argv0, argv.slice(2));
}
