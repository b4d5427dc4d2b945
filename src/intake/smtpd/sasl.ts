/**
 * sasl.ts — SMTP AUTH (RFC 4954) on the server side: the PLAIN (RFC 4616) and
 * LOGIN mechanisms, and the password file that stores only scrypt hashes.
 *
 * Contract:
 * - The password file (`sealpost_sasl_password_file`, default
 *   `$config_directory/sasl_passwd`) has one `user:scrypt$N$r$p$salt$hash`
 *   line per user (salt and hash base64, `#` comments). It is read at each
 *   AUTH, so `sealpost saslpasswd` changes take effect without a reload.
 * - `verifyPassword()` compares in constant time; an unknown user costs the
 *   same scrypt work as a known one.
 * - Mechanism steps are pure decoders: `decodePlain()` and the LOGIN prompts;
 *   the session drives the 334 exchange.
 *
 * Not here: Cyrus/Dovecot SASL back ends (smtpd_sasl_type is ignored),
 * CRAM-MD5 and other mechanisms that need a plaintext-equivalent secret,
 * smtpd_sasl_security_options beyond "noanonymous".
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { ConfigError } from '../../lib/errors.ts';
import { readSecretFile } from '../../lib/secret-files.ts';
import type { Config } from '../../config/types.ts';
import { isNotFound } from '../../lib/fs-errors.ts';

export const SASL_MECHANISMS = ['PLAIN', 'LOGIN'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** scrypt cost parameters for new hashes (N = 2^14, r = 8, p = 1: ~16 MiB, ~50 ms). */
const DEFAULT_N = 16384;
const DEFAULT_R = 8;
const DEFAULT_P = 1;
const KEY_LEN = 32;

/** The password file this configuration uses. */
export function passwordFile(config: Config): string {
  const v = config.get('sealpost_sasl_password_file');
  return v !== '' ? v : join(config.configDir, 'sasl_passwd');
}

function scryptAsync(password: Buffer, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, KEY_LEN, { N: n, r, p, maxmem: 256 * n * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new `scrypt$N$r$p$salt$hash` string for `password`. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(Buffer.from(password, 'utf8'), salt, DEFAULT_N, DEFAULT_R, DEFAULT_P);
  return `scrypt$${DEFAULT_N}$${DEFAULT_R}$${DEFAULT_P}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export interface PasswordEntry {
  readonly user: string;
  readonly hash: string;
  readonly line: number;
}

/** Parse the password file text; a malformed line is a ConfigError naming file and line. */
export function parsePasswordFile(text: string, file: string): PasswordEntry[] {
  const out: PasswordEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.lastIndexOf(':');
    const user = colon > 0 ? line.slice(0, colon) : '';
    const hash = colon > 0 ? line.slice(colon + 1) : '';
    if (user === '' || !/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/.test(hash)) {
      throw new ConfigError('expected "user:scrypt$N$r$p$salt$hash"; rewrite the entry with "sealpost saslpasswd add"', file, i + 1);
    }
    out.push({ user, hash, line: i + 1 });
  });
  return out;
}

/** Read the password file; a missing file means no users. */
export async function readPasswordFile(file: string): Promise<PasswordEntry[]> {
  let text: string;
  try {
    // Root-only: read through the master's root helper once it runs as mail_owner.
    text = await readSecretFile(file);
  } catch (e) {
    if (isNotFound(e)) return [];
    throw new ConfigError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; check its permissions`);
  }
  return parsePasswordFile(text, file);
}

// A fixed dummy hash: unknown users cost the same work as known ones.
const DUMMY = `scrypt$${DEFAULT_N}$${DEFAULT_R}$${DEFAULT_P}$${Buffer.alloc(16).toString('base64')}$${Buffer.alloc(KEY_LEN).toString('base64')}`;

/** Check `password` against a stored hash in constant time. */
export async function verifyHash(stored: string, password: string): Promise<boolean> {
  const [, n, r, p, salt, key] = stored.split('$');
  const want = Buffer.from(key ?? '', 'base64');
  const got = await scryptAsync(Buffer.from(password, 'utf8'), Buffer.from(salt ?? '', 'base64'), Number(n), Number(r), Number(p));
  return want.length === got.length && timingSafeEqual(want, got);
}

/** True when `user` exists in the file and `password` matches. */
export async function verifyPassword(file: string, user: string, password: string): Promise<boolean> {
  const entry = (await readPasswordFile(file)).find((e) => e.user === user);
  const ok = await verifyHash(entry?.hash ?? DUMMY, password);
  return entry !== undefined && ok;
}

/** RFC 4648 base64 that decodes to exactly the input (Node's decoder is lenient). */
export function strictBase64(text: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

/** RFC 4616: `[authzid] NUL authcid NUL passwd`. undefined when malformed. */
export function decodePlain(data: Buffer): { authzid: string; user: string; password: string } | undefined {
  const parts = data.toString('utf8').split('\0');
  if (parts.length !== 3 || parts[1] === '' || parts[2] === '') return undefined;
  return { authzid: parts[0]!, user: parts[1]!, password: parts[2]! };
}

/** The LOGIN mechanism's prompts, base64 ("Username:", "Password:"). */
export const LOGIN_PROMPTS = { user: Buffer.from('Username:').toString('base64'), password: Buffer.from('Password:').toString('base64') } as const;
