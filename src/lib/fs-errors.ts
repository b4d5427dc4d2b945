/**
 * fs-errors.ts — the one test for "the file is not there" (ENOENT), which
 * queue scans, caches and the queue manager treat as a normal outcome (a
 * file that postsuper moved, a cache not written yet), not as an error.
 *
 * Contract: pure; accepts anything a catch clause can hold.
 *
 * Not here: wording file-system errors for users (each command's own).
 */

/** The errno code of a Node file-system error, if it has one. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
}

/** True when `err` says the file or directory does not exist. */
export function isNotFound(err: unknown): boolean {
  return errnoCode(err) === 'ENOENT';
}
