/**
 * sealpost.ts — the one executable and its command lines:
 *
 *   sealpost [-c config_dir] [-Dv] command [options]   (postfix(1)'s global options)
 *   sealpost command --help | sealpost help [command] | sealpost -V | --version
 *   postfix [-c config_dir] [-Dv] command               (the binary invoked as `postfix`)
 *   sendmail | mailq | newaliases | postconf | postmap | postqueue | postsuper | postcat ...
 *
 * Contract:
 * - Global options are parsed as postfix.c parses them (getopt "c:Dv", POSIX
 *   order: they stop at the command): `-c` must be an absolute path and
 *   becomes the command's MAIL_CONFIG; `-v` sets MAIL_VERBOSE (and makes
 *   `check` print its summary); `-D` sets MAIL_DEBUG (accepted: sealpost has
 *   no debugger_command). A command's own `-c` still wins, as in Postfix.
 * - Under the name `postfix`, the command is one of postfix-script's; the ones
 *   sealpost has run (extra arguments are ignored, as postfix-script ignores
 *   them), the others are refused with postfix-script's usage line.
 * - Under a Postfix tool's name the arguments go to that tool untouched
 *   (Postfix's option parsing, so `postmap --help` is Postfix's usage error);
 *   `sealpost <command> --help` prints the command's help and exits 0.
 * - An unknown command is one line with the closest names ("did you mean").
 * - A UserError or a file-system error ends the command with one `fatal:`
 *   line and its exit code (lib/errors.ts); anything else is reported as a
 *   sealpost bug with its stack (exit 70), never silently.
 *
 * Not here: the command table and help texts (commands.ts), each command.
 */
import { basename, isAbsolute } from 'node:path';
import { describeError, EX, UserError } from '../lib/errors.ts';
import { COMMANDS, commandList, didYouMean, helpText, POSTFIX_SCRIPT_COMMANDS } from './commands.ts';
import type { CommandContext } from './context.ts';
import { PROGRAM_NAMES } from './commands.ts';
import { versionText } from './version.ts';

export { COMMANDS } from './commands.ts';

type Io = Partial<CommandContext>;
type Env = Readonly<Record<string, string | undefined>>;

const SEALPOST_USAGE = 'usage: sealpost [-c config_dir] [-Dv] command [options]';
const POSTFIX_USAGE = 'usage: postfix [-c config_dir] [-Dv] command';
/** postfix-script speaks as `<syslog_name>/postfix-script`; sealpost's daemon.ts as this. */
const SCRIPT = 'sealpost/sealpost-script';

interface GlobalOptions {
  readonly env: Env;
  readonly rest: readonly string[];
  readonly special?: 'help' | 'version';
}

class GlobalUsage extends Error {
  constructor(
    readonly lines: readonly string[],
    readonly exitCode: number,
  ) {
    super(lines.join('\n'));
  }
}

/** postfix.c: getopt(argc, argv, "c:Dv") in POSIX order; the sealpost name also knows -V, -h, --help, --version. */
function parseGlobal(prog: string, args: readonly string[], env: Env, usage: string, extras: boolean): GlobalOptions {
  const next: Record<string, string | undefined> = { ...env };
  const bad = (first: string): never => {
    throw new GlobalUsage([`${prog}: ${first}`, `${prog}: fatal: ${usage}`], extras ? EX.USAGE : 1);
  };
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (extras && (arg === '--help' || arg === '-h')) return { env: next, rest: args.slice(i + 1), special: 'help' };
    if (extras && (arg === '--version' || arg === '-V')) return { env: next, rest: args.slice(i + 1), special: 'version' };
    if (arg.length < 2 || arg[0] !== '-') break;
    for (let j = 1; j < arg.length; j++) {
      const flag = arg[j]!;
      if (flag === 'D') next.MAIL_DEBUG = '';
      else if (flag === 'v') next.MAIL_VERBOSE = '';
      else if (flag === 'c') {
        const value = j + 1 < arg.length ? arg.slice(j + 1) : args[++i];
        if (value === undefined) bad(`option requires an argument -- 'c'`);
        // postfix.c: "-c requires absolute pathname".
        if (!isAbsolute(value!)) throw new GlobalUsage([`${prog}: fatal: -c requires absolute pathname`], extras ? EX.USAGE : 1);
        next.MAIL_CONFIG = value;
        break;
      } else bad(`invalid option -- '${flag}'`);
    }
  }
  return { env: next, rest: args.slice(i) };
}

function out(io: Io | undefined): NodeJS.WritableStream {
  return (io?.stdout ?? process.stdout) as NodeJS.WritableStream;
}
function err(io: Io | undefined): NodeJS.WritableStream {
  return (io?.stderr ?? process.stderr) as NodeJS.WritableStream;
}

/** Run one command with its context; errors become one line (or a bug report). */
async function runCommand(command: string, prog: string, argv: readonly string[], env: Env, io: Io | undefined): Promise<number> {
  const entry = COMMANDS[command]!;
  const ctx: CommandContext = {
    prog,
    argv,
    env,
    stdin: io?.stdin ?? process.stdin,
    stdout: io?.stdout ?? process.stdout,
    stderr: io?.stderr ?? process.stderr,
  };
  try {
    const mod = await entry.load();
    return await mod.main(ctx);
  } catch (e) {
    const d = describeError(e);
    if (d.bug) {
      ctx.stderr.write(`${ctx.prog}: fatal: internal error (a sealpost bug; please report it): ${d.message}\n`);
      return EX.SOFTWARE;
    }
    if (e instanceof UserError && e.before) ctx.stderr.write(`${ctx.prog}: ${e.before}\n`);
    ctx.stderr.write(`${ctx.prog}: fatal: ${d.message}\n`);
    return d.exitCode;
  }
}

/** The binary invoked as a Postfix tool (`postmap`, `sendmail`, `newaliases` ...): Postfix's parsing. */
function runAsTool(invoked: string, args: readonly string[], env: Env, io: Io | undefined): Promise<number> {
  const command = invoked === 'newaliases' ? 'sendmail' : invoked;
  return runCommand(command, `sealpost/${invoked}`, args, env, io);
}

/** The commands `postfix` runs: postfix-script's that sealpost has (its `tls` is not Postfix's). */
function postfixCommands(): string[] {
  return POSTFIX_SCRIPT_COMMANDS.filter((c) => c !== 'tls' && COMMANDS[c] !== undefined);
}

/** The binary invoked as `postfix`: postfix(1) then postfix-script. */
async function runAsPostfix(args: readonly string[], env: Env, io: Io | undefined): Promise<number> {
  const g = parseGlobal('postfix', args, env, POSTFIX_USAGE, false);
  const command = g.rest[0] ?? '';
  const have = postfixCommands();
  if (!have.includes(command)) {
    const list = `Usage: postfix ${have[0]} (or ${have.slice(1).join(', ')})`;
    const known = POSTFIX_SCRIPT_COMMANDS.includes(command);
    const why = known ? `"${command}" is a Postfix command that sealpost does not have` : `unknown command: '${command}'${didYouMean(command, have)}`;
    err(io).write(`${SCRIPT}: fatal: ${why}. ${list}\n`);
    return 1;
  }
  // postfix-script ignores arguments after the command.
  return runCommand(command, `sealpost/${command}`, [], g.env, io);
}

function helpFor(name: string | undefined, io: Io | undefined): number {
  if (name === undefined) {
    out(io).write(commandList());
    return EX.OK;
  }
  if (!COMMANDS[name]) {
    err(io).write(`sealpost: fatal: no help for unknown command "${name}"${didYouMean(name, Object.keys(COMMANDS))}; run "sealpost help" for the list\n`);
    return EX.USAGE;
  }
  out(io).write(helpText(name));
  return EX.OK;
}

/** The binary invoked as `sealpost`. */
async function runAsSealpost(args: readonly string[], env: Env, io: Io | undefined): Promise<number> {
  const g = parseGlobal('sealpost', args, env, SEALPOST_USAGE, true);
  if (g.special === 'help') return helpFor(g.rest[0], io);
  if (g.special === 'version') {
    out(io).write(versionText());
    return EX.OK;
  }
  const [command, ...rest] = g.rest;
  if (command === undefined) {
    err(io).write(commandList());
    return EX.USAGE;
  }
  if (command === 'help') return helpFor(rest[0], io);
  if (!COMMANDS[command]) {
    err(io).write(`sealpost: fatal: unknown command "${command}"${didYouMean(command, Object.keys(COMMANDS))}; run "sealpost help" for the list\n`);
    return EX.USAGE;
  }
  if (rest[0] === '--help') return helpFor(command, io);
  return runCommand(command, `sealpost/${command}`, rest, g.env, io);
}

export async function run(argv0: string, args: readonly string[], io?: Io): Promise<number> {
  const invoked = basename(argv0).replace(/\.(js|ts)$/, '');
  const env: Env = io?.env ?? process.env;
  try {
    if (invoked === 'postfix') return await runAsPostfix(args, env, io);
    if (PROGRAM_NAMES.has(invoked)) return await runAsTool(invoked, args, env, io);
    return await runAsSealpost(args, env, io);
  } catch (e) {
    if (!(e instanceof GlobalUsage)) throw e;
    err(io).write(e.lines.join('\n') + '\n');
    return e.exitCode;
  }
}
