/**
 * secrets.ts — the master's root helper: a small process that keeps root
 * after the master has become mail_owner, holds no socket but the pipe to the
 * master, and does one thing: read the private files the configuration names
 * — smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_chain_files and
 * sealpost_sasl_password_file, in main.cf and in every smtpd service's `-o`
 * overrides — so that `sealpost reload` can load a renewed certificate and
 * AUTH sees a new password without opening those files to mail_owner.
 * (Postfix gets the same effect by starting new smtpd processes as root on
 * reload; sealpost's listeners live in one long-running process.)
 *
 * Contract:
 * - `startSecretsHelper(configDir)` spawns the helper (while still root) and
 *   installs it as the secret source (lib/secret-files.ts) without waiting
 *   for it (the start has read every file as root already); `refresh()`
 *   fetches a fresh snapshot (the reload calls it before validating);
 *   `stop()` ends it. The helper exits by itself when the master dies (its
 *   IPC channel closes).
 * - The helper decides which files it reads: it reads the configuration
 *   itself, as root, from the directory it was started with; a request for
 *   any other path is answered EACCES. A master taken over by an attacker can
 *   so learn nothing it did not already hold at start.
 * - Answers are `{text}` or `{code}` (the errno name), never exceptions.
 *
 * Not here: the readers (intake/smtpd/tls.ts, sasl.ts through
 * lib/secret-files.ts), dropping privileges (privileges.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { passwordFile } from '../intake/smtpd/sasl.ts';
import { installSecretSource, type SecretAnswer } from '../lib/secret-files.ts';

type RequestBody = { readonly kind: 'snapshot' } | { readonly kind: 'read'; readonly path: string };
type Request = RequestBody & { readonly id: number };
type Reply = { readonly id: number; readonly files: Record<string, SecretAnswer> } | { readonly id: number; readonly answer: SecretAnswer };

/** The private files one configuration names (see the header). */
export function secretPaths(config: Config): string[] {
  const paths = [config.get('smtpd_tls_cert_file'), config.get('smtpd_tls_key_file'), ...config.getList('smtpd_tls_chain_files'), passwordFile(config)];
  return paths.filter((p) => p !== '');
}

/** Every private file of main.cf and of each smtpd service's overrides. */
export function configuredSecretPaths(configDir: string): string[] {
  const main = loadConfig({ configDir, strictValues: false });
  const out = new Set(secretPaths(main));
  for (const s of main.services) {
    if (s.command !== 'smtpd' || s.overrides.length === 0) continue;
    for (const p of secretPaths(loadConfig({ configDir, overrides: Object.fromEntries(s.overrides), strictValues: false }))) out.add(p);
  }
  return [...out];
}

function readAnswer(path: string): SecretAnswer {
  try {
    return { text: readFileSync(path, 'utf8') };
  } catch (err) {
    return { code: (err as NodeJS.ErrnoException).code ?? 'EIO' };
  }
}

/** The helper's side (secrets-entry.ts runs it): answer the master until it goes away. */
export function serveSecrets(configDir: string): void {
  let allowed = new Set<string>();
  const learn = (): void => {
    try {
      allowed = new Set(configuredSecretPaths(configDir));
    } catch {
      // A broken configuration: the master's own validation reports it; serve what was known.
    }
  };
  learn();
  process.on('disconnect', () => process.exit(0));
  process.on('message', (req: Request) => {
    let reply: Reply;
    if (req.kind === 'snapshot') {
      learn();
      reply = { id: req.id, files: Object.fromEntries([...allowed].map((p) => [p, readAnswer(p)])) };
    } else {
      reply = { id: req.id, answer: allowed.has(req.path) ? readAnswer(req.path) : { code: 'EACCES' } };
    }
    process.send?.(reply);
  });
}

export interface SecretsHelper {
  refresh(): Promise<void>;
  stop(): void;
}

function helperEntry(): { script: string; execArgv: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = extname(here);
  // From TypeScript sources (tests, development) the child needs the same loader.
  return { script: join(dirname(here), `secrets-entry${ext}`), execArgv: ext === '.ts' ? ['--import', import.meta.resolve('tsx')] : [] };
}

/** Spawn the helper and install it as the secret source; see the header. */
export function startSecretsHelper(configDir: string): SecretsHelper {
  const { script, execArgv } = helperEntry();
  const child: ChildProcess = fork(script, [configDir], { execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  child.unref();
  (child.channel as unknown as { unref?: () => void } | undefined)?.unref?.();
  let seq = 0;
  const waiting = new Map<number, (r: Reply) => void>();
  child.on('message', (r: Reply) => {
    waiting.get(r.id)?.(r);
    waiting.delete(r.id);
  });
  const gone = (): void => {
    for (const w of waiting.values()) w({ id: -1, answer: { code: 'EIO' } });
    waiting.clear();
  };
  child.on('exit', gone);
  child.on('error', gone);
  const ask = (req: RequestBody): Promise<Reply> =>
    new Promise((resolve, reject) => {
      if (!child.connected) return reject(new Error('the secrets helper is gone'));
      const id = ++seq;
      waiting.set(id, resolve);
      child.send({ ...req, id });
    });
  let snapshot = new Map<string, SecretAnswer>();
  const source = {
    get snapshot() {
      return snapshot;
    },
    read: async (path: string): Promise<SecretAnswer> => {
      const r = await ask({ kind: 'read', path });
      if (!('answer' in r) || r.id === -1) throw new Error('the secrets helper is gone');
      return r.answer;
    },
  };
  const refresh = async (): Promise<void> => {
    const r = await ask({ kind: 'snapshot' });
    if ('files' in r) snapshot = new Map(Object.entries(r.files));
  };
  // No first snapshot here: the start read every file as root already; a reload asks for one.
  installSecretSource(source);
  return {
    refresh,
    stop: () => {
      installSecretSource(undefined);
      if (child.connected) child.disconnect();
    },
  };
}
