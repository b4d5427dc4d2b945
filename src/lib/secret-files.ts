/**
 * secret-files.ts — how sealpost reads the files only root may read: the
 * smtpd TLS keys and certificates and the SMTP AUTH password file. Before
 * the master drops its privileges they are plain reads; afterwards the
 * master's root helper (daemon/secrets.ts) reads them on its behalf, and this
 * module hands its answers to the readers (intake/smtpd/tls.ts, sasl.ts),
 * which so keep working on `sealpost reload` (a renewed certificate) and
 * for every AUTH (a new password).
 *
 * Contract:
 * - `readSecretFileSync(path)`: the text from the last snapshot the helper
 *   delivered (a reload fetches one before it validates), else a direct read.
 *   Errors are thrown like fs errors (an Error with `code`, e.g. ENOENT), so
 *   callers keep their existing messages.
 * - `readSecretFile(path)`: asks the helper afresh when one is installed,
 *   else reads directly.
 * - `installSecretSource()` is called by the master only; tests and tools
 *   never install one and read directly.
 *
 * Not here: which files are secret and the helper process (daemon/secrets.ts).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export type SecretAnswer = { readonly text: string } | { readonly code: string };

export interface SecretSource {
  /** The answers of the last snapshot, by path. */
  readonly snapshot: ReadonlyMap<string, SecretAnswer>;
  /** Ask for one file now. */
  read(path: string): Promise<SecretAnswer>;
}

let source: SecretSource | undefined;

export function installSecretSource(s: SecretSource | undefined): void {
  source = s;
}

function unpack(path: string, answer: SecretAnswer): string {
  if ('text' in answer) return answer.text;
  throw Object.assign(new Error(`${answer.code}: ${path}`), { code: answer.code, path });
}

export function readSecretFileSync(path: string): string {
  const answer = source?.snapshot.get(path);
  return answer ? unpack(path, answer) : readFileSync(path, 'utf8');
}

export async function readSecretFile(path: string): Promise<string> {
  if (!source) return readFile(path, 'utf8');
  let answer: SecretAnswer;
  try {
    answer = await source.read(path);
  } catch {
    // The helper is gone: what this process may read itself is all there is.
    return readFile(path, 'utf8');
  }
  return unpack(path, answer);
}
