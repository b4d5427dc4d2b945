/**
 * saslpasswd.ts — `sealpost saslpasswd [-c config_dir] add|delete|list [user]`:
 * manage the SMTP AUTH users of the listener's password file
 * (`sealpost_sasl_password_file`, default `$config_directory/sasl_passwd`).
 *
 * Contract:
 * - `add user` reads the password from the first line of standard input
 *   (never from the command line, where `ps` would show it) and stores only
 *   an scrypt hash; an existing user's hash is replaced.
 * - `delete user` removes the user (exit 1 with a one-line error when absent).
 * - `list` prints the user names, one per line, in file order.
 * - The file is rewritten atomically (temporary file, fsync, rename) with
 *   mode 0600; comments and other users' lines are kept as they are.
 *
 * Not here: the AUTH protocol (intake/smtpd/auth.ts), verification.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { resolveConfigDir, loadConfig } from '../config/load.ts';
import { UsageError, UserError } from '../lib/errors.ts';
import { hashPassword, passwordFile, readPasswordFile } from '../intake/smtpd/sasl.ts';
import { readFile } from 'node:fs/promises';
import type { CommandContext } from './context.ts';
import { warn } from './context.ts';
import { getopt } from './getopt.ts';
import { isNotFound } from '../lib/fs-errors.ts';

const USAGE = 'usage: sealpost saslpasswd [-c config_dir] add user | delete user | list';

async function readStdinLine(ctx: CommandContext): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '';
}

async function currentText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if (isNotFound(e)) return '';
    throw new UserError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.sasl_passwd.tmp.${process.pid}`);
  try {
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw new UserError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; check the directory permissions`);
  }
}

function validUser(user: string | undefined): string {
  if (!user || /[\s:]/.test(user)) throw new UsageError(`${USAGE}\n(a user name must be non-empty without white space or ":")`);
  return user;
}

/** The file's lines without `user`'s entry (comments and others kept). */
function withoutUser(text: string, user: string): { lines: string[]; removed: boolean } {
  let removed = false;
  const lines = text.split('\n').filter((l) => {
    const t = l.trim();
    if (t.startsWith('#') || t === '') return l !== '';
    if (t.slice(0, t.lastIndexOf(':')) === user) {
      removed = true;
      return false;
    }
    return true;
  });
  return { lines, removed };
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'c:', USAGE);
  const config = loadConfig({ configDir: resolveConfigDir(opts.value('c'), ctx.env), warn: (m) => warn(ctx, m) });
  const file = passwordFile(config);
  const [action, user, extra] = opts.rest;
  if (extra !== undefined) throw new UsageError(USAGE);
  switch (action) {
    case 'list':
      if (user !== undefined) throw new UsageError(USAGE);
      for (const e of await readPasswordFile(file)) ctx.stdout.write(`${e.user}\n`);
      return 0;
    case 'add': {
      const name = validUser(user);
      const password = await readStdinLine(ctx);
      if (password === '') throw new UserError('empty password: give the password on the first line of standard input');
      await readPasswordFile(file); // refuse to rewrite a malformed file
      const { lines } = withoutUser(await currentText(file), name);
      lines.push(`${name}:${await hashPassword(password)}`);
      await writeAtomically(file, lines.join('\n') + '\n');
      return 0;
    }
    case 'delete': {
      const name = validUser(user);
      const { lines, removed } = withoutUser(await currentText(file), name);
      if (!removed) throw new UserError(`${file}: no such user: ${name}`);
      await writeAtomically(file, lines.length > 0 ? lines.join('\n') + '\n' : '');
      return 0;
    }
    default:
      throw new UsageError(USAGE);
  }
}
