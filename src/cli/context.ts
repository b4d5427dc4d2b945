/**
 * context.ts — what a CLI command gets: its arguments and its standard streams.
 *
 * Contract: commands never touch `process` directly (except through this
 * context), so tests can run them in-process with captured output. A command
 * returns its exit status; it throws UserError for bad input, which the
 * dispatcher prints as one `fatal:` line.
 */
import type { Readable, Writable } from 'node:stream';

export interface CommandContext {
  /** Name used in messages, e.g. `sealpost/postmap`. */
  readonly prog: string;
  /** Arguments after the command name. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
}

export type CommandMain = (ctx: CommandContext) => Promise<number>;

/** Write a warning line to the command's stderr in Postfix's shape. */
export function warn(ctx: CommandContext, message: string): void {
  ctx.stderr.write(`${ctx.prog}: warning: ${message}\n`);
}
