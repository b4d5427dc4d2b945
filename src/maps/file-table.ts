/**
 * file-table.ts — small helpers shared by the file-backed table types
 * (hash/btree/lmdb, cdb, texthash): path resolution, open-error wording,
 * the "database is older than source file" warning, change detection and
 * the atomic file replacement used by the writers.
 *
 * Contract: the only I/O is `stat` (warnIfOlder, staleCheck) and
 * writeFileAtomic() (temp file in the same directory, fsync, rename, fsync
 * of the directory), so a reader sees the old or the new file, never a mix. Error texts keep Postfix's words (`open database X:
 * No such file or directory`) and add what to do.
 *
 * Not here: any file format.
 */
import { closeSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { UserError } from '../lib/errors.ts';
import { isNotFound } from '../lib/fs-errors.ts';

/** Resolve a table file name against baseDir (when given and the name is relative). */
export function resolvePath(name: string, baseDir: string | undefined): string {
  return baseDir && !isAbsolute(name) ? join(baseDir, name) : name;
}

const STRERROR: Readonly<Record<string, string>> = {
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory',
  ENOTDIR: 'Not a directory',
  ELOOP: 'Too many levels of symbolic links',
  EMFILE: 'Too many open files',
  ENOSPC: 'No space left on device',
  EROFS: 'Read-only file system',
  EEXIST: 'File exists',
};

/** strerror(3)-style text for a Node fs error. */
export function errnoText(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code && STRERROR[code]) return STRERROR[code]!;
  return err instanceof Error ? err.message : String(err);
}

/**
 * The error for a table file that cannot be opened, in Postfix's words plus
 * the fix: `open database /etc/x.db: No such file or directory; build it with "sealpost postmap hash:/etc/x"`.
 */
export function openFailure(type: string, name: string, shown: string, err: unknown, buildable = true): UserError {
  const code = (err as { code?: string }).code;
  const base = `open database ${shown}: ${errnoText(err)}`;
  if (isNotFound(err) && buildable) return new UserError(`${base}; build it with "sealpost postmap ${type}:${name}"`);
  if (isNotFound(err)) return new UserError(`${base}; create the file or correct the table name`);
  if (code === 'EACCES' || code === 'EPERM') return new UserError(`${base}; check the file's owner and permissions`);
  return new UserError(base);
}

/**
 * dict_db.c / dict_cdb.c: warn when the source file is newer than the indexed
 * file, "except when the source file changed only seconds ago" (100 s).
 */
export function warnIfOlder(
  dbShown: string,
  sourceShown: string,
  sourcePath: string,
  dbMtimeMs: number,
  warn: ((m: string) => void) | undefined,
  now: number = Date.now(),
): void {
  if (!warn) return;
  let src: Stats;
  try {
    src = statSync(sourcePath);
  } catch {
    return;
  }
  const srcSec = Math.floor(src.mtimeMs / 1000);
  if (srcSec > Math.floor(dbMtimeMs / 1000) && srcSec < Math.floor(now / 1000) - 100) {
    warn(`database ${dbShown} is older than source file ${sourceShown}`);
  }
}

/** A function that says whether the file changed (or vanished) since `st` was taken. */
export function staleCheck(path: string, st: Stats): () => boolean {
  return () => {
    try {
      const now = statSync(path);
      return now.mtimeMs !== st.mtimeMs || now.ino !== st.ino || now.size !== st.size;
    } catch {
      return true;
    }
  };
}

/** Replace `path` atomically with `data`: write `tmpPath` (same directory), fsync, rename. */
export function writeFileAtomic(path: string, tmpPath: string, data: Uint8Array, mode = 0o644): void {
  const fd = openSync(tmpPath, 'w', mode);
  try {
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmpPath);
    } catch {
      /* already gone */
    }
    throw err;
  }
  closeSync(fd);
  renameSync(tmpPath, path);
  try {
    // Make the rename itself durable.
    const dfd = openSync(dirname(path), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    /* some file systems refuse to fsync a directory: the rename is still atomic */
  }
}
