/**
 * errors.ts — the error classes every sealpost component shares, and the one
 * place that turns any thrown value into what a command prints.
 *
 * Contract: a `UserError` is a problem with what the postmaster gave us (a config
 * file, a map file, a command-line argument). Its message is one line that names
 * the place (`/etc/sealpost/main.cf, line 12`) and says what to do. The CLI prints
 * it as `sealpost/<prog>: fatal: <message>` and exits with `exitCode`; it never
 * prints a stack trace for it.
 *
 * A file-system error (Node's `ErrnoException`: EACCES, ENOENT, ENOTDIR, EROFS,
 * ENOSPC, EMFILE ...) is a problem with the machine, not a sealpost bug:
 * `describeError` renders it as one line naming the operation, the path and the
 * fix, with the sysexits code that fits (EX_NOPERM for a permission problem,
 * EX_TEMPFAIL for a full disk ...), never with a stack trace. The same holds for
 * such an error that crossed a worker thread as a bare message
 * (`EACCES: permission denied, scandir '/path'`).
 *
 * Anything else is a bug in sealpost and is reported as such (with the stack,
 * so it can be fixed).
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
  /** A line printed before the fatal one, as getopt(3) complains before Postfix's `fatal: usage:`. */
  readonly before: string | undefined;
  constructor(message: string, exitCode: number = 1, before?: string) {
    super(message);
    this.name = 'UserError';
    this.exitCode = exitCode;
    this.before = before;
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

/** Command-line usage problem (exit 64, like Postfix's `usage:` fatal); `before` is getopt's complaint. */
export class UsageError extends UserError {
  constructor(message: string, before?: string) {
    super(message, EX.USAGE, before);
    this.name = 'UsageError';
  }
}

/** What a file-system error code means and what to do about it. */
interface ErrnoText {
  readonly what: string;
  readonly fix: (path: string) => string;
  readonly exitCode: number;
}

const PERMISSION: ErrnoText = {
  what: 'permission denied',
  fix: (p) => `run the command as root (or as the owner of ${p}), or fix the permissions of ${p}`,
  exitCode: EX.NOPERM,
};

const ERRNO: Readonly<Record<string, ErrnoText>> = {
  EACCES: PERMISSION,
  EPERM: { ...PERMISSION, what: 'operation not permitted' },
  ENOENT: {
    what: 'no such file or directory',
    fix: (p) => `create it, or correct the setting that names ${p} (queue_directory, data_directory, -c config_dir, a table name)`,
    exitCode: EX.NOINPUT,
  },
  ENOTDIR: {
    what: 'a component of the path is not a directory',
    fix: (p) => `make every parent of ${p} a directory, or correct the setting that names it`,
    exitCode: EX.OSFILE,
  },
  EISDIR: { what: 'is a directory', fix: (p) => `name a file, not the directory ${p}`, exitCode: EX.OSFILE },
  EROFS: { what: 'read-only file system', fix: (p) => `remount the file system of ${p} read-write, or point the setting at a writable place`, exitCode: EX.CANTCREAT },
  ENOSPC: { what: 'no space left on device', fix: (p) => `free space on the file system that holds ${p}`, exitCode: EX.TEMPFAIL },
  EDQUOT: { what: 'disk quota exceeded', fix: (p) => `free space or raise the quota on the file system that holds ${p}`, exitCode: EX.TEMPFAIL },
  EMFILE: { what: 'too many open files', fix: () => 'raise the open-file limit (ulimit -n, LimitNOFILE=) and try again', exitCode: EX.OSERR },
  ENFILE: { what: 'too many open files in the system', fix: () => 'raise the system open-file limit (fs.file-max) and try again', exitCode: EX.OSERR },
  EIO: { what: 'input/output error', fix: (p) => `check the disk that holds ${p} (dmesg)`, exitCode: EX.IOERR },
  ELOOP: { what: 'too many levels of symbolic links', fix: (p) => `fix the symbolic links in ${p}`, exitCode: EX.OSFILE },
  ENAMETOOLONG: { what: 'file name too long', fix: () => 'use a shorter path', exitCode: EX.OSFILE },
  EEXIST: { what: 'file exists', fix: (p) => `remove ${p} or choose another name`, exitCode: EX.CANTCREAT },
  ENOTEMPTY: { what: 'directory not empty', fix: (p) => `empty or remove ${p}`, exitCode: EX.CANTCREAT },
  EBUSY: { what: 'resource busy', fix: () => 'try again when the file is no longer in use', exitCode: EX.TEMPFAIL },
  EAGAIN: { what: 'resource temporarily unavailable', fix: () => 'try again', exitCode: EX.TEMPFAIL },
  ETXTBSY: { what: 'text file busy', fix: () => 'try again when the file is no longer in use', exitCode: EX.TEMPFAIL },
};

/** Node's syscall names as words. */
const SYSCALL: Readonly<Record<string, string>> = {
  open: 'open',
  scandir: 'read directory',
  opendir: 'read directory',
  readdir: 'read directory',
  read: 'read',
  write: 'write',
  mkdir: 'create directory',
  mkdtemp: 'create directory',
  rmdir: 'remove directory',
  rm: 'remove',
  unlink: 'remove',
  rename: 'rename',
  link: 'link',
  symlink: 'create symbolic link',
  stat: 'look up',
  lstat: 'look up',
  fstat: 'look up',
  access: 'access',
  chmod: 'change the mode of',
  fchmod: 'change the mode of',
  chown: 'change the owner of',
  fchown: 'change the owner of',
  utime: 'set the time of',
  futime: 'set the time of',
  fsync: 'sync',
  fdatasync: 'sync',
  copyfile: 'copy',
  realpath: 'resolve',
  readlink: 'read link',
  watch: 'watch',
  chdir: 'enter directory',
};

/** The parts of a file-system error: code, syscall, path (and dest for rename/link). */
export interface FsErrorParts {
  readonly code: string;
  readonly syscall: string | undefined;
  readonly path: string | undefined;
  readonly dest: string | undefined;
}

/** The fields of an ErrnoException, or of its message when it crossed a thread as text. */
export function fsErrorParts(err: unknown): FsErrorParts | undefined {
  if (!(err instanceof Error) && (typeof err !== 'object' || err === null)) return undefined;
  const e = err as Partial<NodeJS.ErrnoException> & { dest?: unknown; message?: unknown };
  if (typeof e.code === 'string' && ERRNO[e.code] !== undefined && (typeof e.path === 'string' || typeof e.syscall === 'string')) {
    return { code: e.code, syscall: e.syscall, path: e.path, dest: typeof e.dest === 'string' ? e.dest : undefined };
  }
  // `EACCES: permission denied, scandir '/var/spool/sealpost/maildrop'` (libuv's text).
  const m = typeof e.message === 'string' ? /^(E[A-Z]+): [^,]+, (\w+) '([^']*)'(?: -> '([^']*)')?$/.exec(e.message) : null;
  if (m && ERRNO[m[1]!] !== undefined) return { code: m[1]!, syscall: m[2], path: m[3], dest: m[4] };
  return undefined;
}

/** One line for a file-system error: `cannot <op> <path>: <what>: <fix>`, and its sysexits code. */
export function describeFsError(parts: FsErrorParts): { message: string; exitCode: number } {
  const t = ERRNO[parts.code]!;
  const op = (parts.syscall && SYSCALL[parts.syscall]) ?? parts.syscall ?? 'use';
  const path = parts.path ?? '(unknown path)';
  const target = parts.dest !== undefined ? `${path} to ${parts.dest}` : path;
  return { message: `cannot ${op} ${target}: ${t.what}: ${t.fix(parts.dest ?? path)}`, exitCode: t.exitCode };
}

/**
 * Render any thrown value: a UserError or a file-system error as one line with
 * its exit code, anything else as a bug report with the stack.
 */
export function describeError(err: unknown): { message: string; bug: boolean; exitCode: number } {
  if (err instanceof UserError) return { message: err.message, bug: false, exitCode: err.exitCode };
  const fs = fsErrorParts(err);
  if (fs) return { ...describeFsError(fs), bug: false };
  if (err instanceof Error) return { message: err.stack ?? err.message, bug: true, exitCode: EX.SOFTWARE };
  return { message: String(err), bug: true, exitCode: EX.SOFTWARE };
}

/** A file-system error as a UserError (for code that wants to add context and rethrow). */
export function fsUserError(err: unknown): UserError | undefined {
  const fs = fsErrorParts(err);
  if (!fs) return undefined;
  const d = describeFsError(fs);
  return new UserError(d.message, d.exitCode);
}
