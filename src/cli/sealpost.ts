/**
 * sealpost.ts — the one executable. `sealpost <command> [args]`, or the same
 * binary invoked under a Postfix tool's name (`sendmail`, `mailq`, `postqueue`,
 * `postsuper`, `postmap`, `postconf`, `postcat`) behaves as that tool, as
 * Postfix's `sendmail`/`mailq` dispatch on their program name.
 *
 * Contract: a UserError ends the command with one `fatal:` line on stderr and
 * its exit code; an unexpected exception is reported as a sealpost bug with its
 * stack (exit 70), never silently.
 */
import { basename } from 'node:path';
import { describeError, EX } from '../lib/errors.ts';
import type { CommandContext, CommandMain } from './context.ts';

type Loader = () => Promise<{ main: CommandMain }>;

/** Every command; loaded lazily so `sealpost postmap -q` does not load the daemon. */
export const COMMANDS: Readonly<Record<string, { summary: string; load: Loader }>> = {
  postconf: { summary: 'print or edit main.cf/master.cf parameters (postconf(1))', load: () => import('./postconf.ts') },
  postmap: { summary: 'build, query and dump lookup tables (postmap(1))', load: () => import('./postmap.ts') },
  mailq: { summary: 'list the mail queue (same as postqueue -p)', load: () => import('./postqueue.ts') },
  postqueue: { summary: 'list (-p, -j) or flush (-f, -i, -s) the mail queue (postqueue(1))', load: () => import('./postqueue.ts') },
  postsuper: { summary: 'delete, hold, release, requeue or expire queued mail (postsuper(1))', load: () => import('./postsuper.ts') },
  postcat: { summary: 'show a queue file (postcat(1))', load: () => import('./postcat.ts') },
  sendmail: { summary: 'submit a message from standard input (sendmail(1))', load: () => import('./sendmail.ts') },
  start: { summary: 'start the mail system in the background', load: () => import('./daemon.ts') },
  'start-fg': { summary: 'run the mail system in the foreground', load: () => import('./daemon.ts') },
  stop: { summary: 'stop the mail system gracefully', load: () => import('./daemon.ts') },
  abort: { summary: 'stop the mail system at once', load: () => import('./daemon.ts') },
  reload: { summary: 're-read main.cf, master.cf and tables (a broken config is refused)', load: () => import('./daemon.ts') },
  status: { summary: 'tell whether the mail system runs, and its PID', load: () => import('./daemon.ts') },
  flush: { summary: 'attempt delivery of all queued mail (postqueue -f)', load: () => import('./daemon.ts') },
  check: { summary: 'validate the configuration, master.cf, tables and queue directory', load: () => import('./daemon.ts') },
  tls: { summary: 'tls explain RECIPIENT: the route, next hop, TLS policy and name checks (no network)', load: () => import('./tls-explain.ts') },
  'tls-finger': { summary: 'probe a destination\'s SMTP servers: STARTTLS, certificates, verdict per TLS level (posttls-finger(1))', load: () => import('./tls-finger.ts') },
  demo: { summary: 'play the postmaster\'s story on loopback: three receivers, a policy table, a narrated transcript', load: () => import('./demo.ts') },
  saslpasswd: { summary: 'add, delete or list SMTP AUTH users (passwords stored hashed)', load: () => import('./saslpasswd.ts') },
  'set-permissions': { summary: 'create the mail_owner account, the queue directories and the setgid sendmail/mailq helpers (run as root)', load: () => import('./set-permissions.ts') },
};

/** Program names that select a command by themselves (argv[0] dispatch). */
const ALIASES: Readonly<Record<string, string>> = {
  postconf: 'postconf',
  postmap: 'postmap',
  mailq: 'mailq',
  postqueue: 'postqueue',
  postsuper: 'postsuper',
  postcat: 'postcat',
  sendmail: 'sendmail',
};

function usage(): string {
  const lines = ['usage: sealpost command [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  return lines.join('\n') + '\n';
}

export async function run(argv0: string, args: readonly string[], io?: Partial<CommandContext>): Promise<number> {
  const invoked = basename(argv0).replace(/\.(js|ts)$/, '');
  let command = ALIASES[invoked];
  let rest = args;
  if (!command) {
    if (args.length === 0 || args[0] === '-h' || args[0] === '--help' || args[0] === 'help') {
      (io?.stdout ?? process.stdout).write(usage());
      return args.length === 0 ? EX.USAGE : EX.OK;
    }
    command = args[0]!;
    rest = args.slice(1);
  }
  const entry = COMMANDS[command];
  const stderr = io?.stderr ?? process.stderr;
  if (!entry) {
    stderr.write(`sealpost: fatal: unknown command "${command}"; run "sealpost help" for the list\n`);
    return EX.USAGE;
  }
  const ctx: CommandContext = {
    prog: `sealpost/${command}`,
    argv: rest,
    env: io?.env ?? process.env,
    stdin: io?.stdin ?? process.stdin,
    stdout: io?.stdout ?? process.stdout,
    stderr,
  };
  try {
    const mod = await entry.load();
    return await mod.main(ctx);
  } catch (err) {
    const { message, bug } = describeError(err);
    if (bug) {
      stderr.write(`${ctx.prog}: fatal: internal error (a sealpost bug; please report it): ${message}\n`);
      return EX.SOFTWARE;
    }
    stderr.write(`${ctx.prog}: fatal: ${message}\n`);
    return (err as { exitCode?: number }).exitCode ?? 1;
  }
}
