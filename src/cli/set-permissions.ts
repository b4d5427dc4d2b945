/**
 * set-permissions.ts — `sealpost set-permissions [-c config_dir]`: the setup
 * step, as `postfix set-permissions` (and the account creation a Postfix
 * package does on install): after it, `sealpost start` runs the mail system
 * as mail_owner and every local user can run sendmail and mailq.
 *
 * Contract (run as root; idempotent):
 * - Creates the setgid_group (default `sealdrop`) and the mail_owner account
 *   (default `sealpost`: a system account with its own group, no login
 *   shell, home queue_directory) when they are missing (groupadd/useradd).
 * - Gives the queue and data directories and every file in them the owners
 *   and modes of daemon/queue-layout.ts (Postfix's postfix-files).
 * - Compiles the setgid helpers native/postdrop.c and native/postqueue.c
 *   with the system's C compiler into $daemon_directory (owner root, group
 *   setgid_group, mode 2755). They trust the configuration directory
 *   /etc/sealpost — or, when daemon_directory is not the built-in one, the
 *   directory this command was run for. Without a compiler the rest is done
 *   and a warning says what unprivileged users cannot do and how to fix it.
 * - One line per change on stdout; problems are one `fatal:` line.
 *
 * Not here: the layout itself (daemon/queue-layout.ts), account lookups and
 * checks (daemon/privileges.ts).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { DEFAULT_CONFIG_DIR } from '../config/types.ts';
import { EX, UsageError, UserError } from '../lib/errors.ts';
import { lookupGroup, lookupUser, privilegePlan, type PrivilegePlan } from '../daemon/privileges.ts';
import { applyLayout, queueLayout } from '../daemon/queue-layout.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';
import { isNotFound } from '../lib/fs-errors.ts';

const USAGE = 'usage: sealpost set-permissions [-c config_dir]';
/** The built-in daemon_directory (config/params.ts). */
const DEFAULT_DAEMON_DIRECTORY = '/usr/libexec/sealpost';
export const HELPERS = ['postdrop', 'postqueue'] as const;

/** Where the C sources are: `native/` at the package root (from src/cli or dist/cli). */
export function nativeDirectory(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native');
}

function run(command: string, args: readonly string[]): void {
  try {
    execFileSync(command, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const e = err as { code?: string; stderr?: string };
    if (isNotFound(e)) throw new UserError(`${command} is not installed: create the account yourself, then run sealpost set-permissions again`);
    throw new UserError(`${command} ${args.join(' ')}: ${(e.stderr ?? '').trim().split('\n')[0] || 'failed'}`);
  }
}

/** The groups and the account, created when missing (also used by test fixtures). */
export function ensureAccounts(ownerName: string, groupName: string, home: string, say: (line: string) => void = () => undefined): void {
  if (!lookupGroup(groupName)) {
    run('groupadd', ['--system', groupName]);
    say(`created group ${groupName}`);
  }
  if (lookupUser(ownerName)) return;
  const shell = ['/usr/sbin/nologin', '/sbin/nologin'].find((s) => existsSync(s)) ?? '/bin/false';
  // Its own group, like Debian's postfix user; reuse a group of that name if one exists.
  const group = lookupGroup(ownerName) ? ['--gid', ownerName] : ['--user-group'];
  run('useradd', ['--system', ...group, '--home-dir', home, '--no-create-home', '--shell', shell, '--comment', 'sealpost mail system', ownerName]);
  say(`created user ${ownerName}`);
}

function compilerAvailable(): boolean {
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Compile and install one helper; see the header. */
function installHelper(name: string, daemonDir: string, trustedConfigDir: string, plan: PrivilegePlan): string {
  const target = join(daemonDir, name);
  const tmp = `${target}.${process.pid}.tmp`;
  const define = `-DDEF_CONFIG_DIR=${JSON.stringify(trustedConfigDir)}`;
  try {
    execFileSync('cc', ['-O2', '-Wall', define, '-o', tmp, join(nativeDirectory(), `${name}.c`)], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    chownSync(tmp, 0, plan.setgidGroup.gid);
    // chown(2) clears set-group-ID: the mode comes after it.
    chmodSync(tmp, 0o2755);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    const e = err as { stderr?: string; message: string };
    throw new UserError(`cannot build ${target}: ${(e.stderr ?? '').trim().split('\n')[0] || e.message}`);
  }
  return target;
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'c:', USAGE);
  if (opts.rest.length > 0) throw new UsageError(USAGE);
  if (process.geteuid?.() !== 0) throw new UserError('set-permissions must be run by the super-user: it creates accounts and changes owners', EX.NOPERM);
  const configDir = resolve(resolveConfigDir(opts.value('c'), ctx.env));
  const config = loadConfig({ configDir, strictValues: false });
  const say = (line: string): void => void ctx.stdout.write(`${line}\n`);
  ensureAccounts(config.get('mail_owner'), config.get('setgid_group'), config.get('queue_directory'), say);
  const plan = privilegePlan(config);
  const changes = applyLayout(queueLayout(config.get('queue_directory'), config.get('data_directory')), plan, { everyFile: true });
  for (const d of changes.created) say(`created ${d}`);
  for (const f of changes.fixed) say(`fixed ${f}`);
  if (changes.filesFixed > 0) say(`gave ${changes.filesFixed} queue file${changes.filesFixed === 1 ? '' : 's'} to ${plan.owner.name}`);
  const daemonDir = config.get('daemon_directory');
  if (!compilerAvailable()) {
    ctx.stderr.write(
      `${ctx.prog}: warning: no C compiler (cc): the setgid helpers ${HELPERS.map((h) => `${daemonDir}/${h}`).join(' and ')} were not built, so users other than root and ${plan.owner.name} cannot run sendmail or mailq; install one (apt-get install gcc) and run sealpost set-permissions again\n`,
    );
    return EX.OK;
  }
  mkdirSync(daemonDir, { recursive: true, mode: 0o755 });
  const trusted = daemonDir === DEFAULT_DAEMON_DIRECTORY ? DEFAULT_CONFIG_DIR : configDir;
  for (const name of HELPERS) say(`installed ${installHelper(name, daemonDir, trusted, plan)} (setgid ${plan.setgidGroup.name}, trusts ${trusted})`);
  return EX.OK;
}
