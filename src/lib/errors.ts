/**
 * errors.ts — the error classes every sealpost component shares.
 *
 * Contract: a `UserError` is a problem with what the postmaster gave us (a config
 * file, a map file, a command-line argument). Its message is one line that names
 * the place (`/etc/sealpost/main.cf, line 12`) and says what to do. The CLI prints
 * it as `sealpost/<prog>: fatal: <message>` and exits with `exitCode`; it never
 * prints a stack trace for it. Anything that is not a `UserError` is a bug in
 * sealpost and is reported as such (with the stack, so it can be fixed).
 *
 * Not here: SMTP replies and delivery outcomes (those are values, not errors).
 */

/** sysexits.h codes that Postfix's tools use. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  OSFILE: 72,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  NOPERM: 77,
  CONFIG: 78,
} as const;

/** A problem with the postmaster's input: reported in one line, no stack trace. */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number = 1) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
  }
}

/** A configuration file problem that names the file and line. */
export class ConfigError extends UserError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, file?: string, line?: number) {
    super(file ? `${file}${line !== undefined ? `, line ${line}` : ''}: ${message}` : message, EX.CONFIG);
    this.name = 'ConfigError';
    this.file = file;
    this.line = line;
  }
}

/** Command-line usage problem (exit 64, like Postfix's `usage:` fatal). */
export class UsageError extends UserError {
  constructor(message: string) {
    super(message, EX.USAGE);
    this.name = 'UsageError';
  }
}

/** Render any thrown value as a one-line message (for UserError) or a bug report. */
export function describeError(err: unknown): { message: string; bug: boolean } {
  if (err instanceof UserError) return { message: err.message, bug: false };
  if (err instanceof Error) return { message: err.stack ?? err.message, bug: true };
  return { message: String(err), bug: true };
}
