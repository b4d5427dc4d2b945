/**
 * daemon.ts — `sealpost start | start-fg | stop | abort | reload | status |
 * flush | check`: the control commands of postfix(1)/postfix-script, one
 * module; the subcommand comes from ctx.prog (`sealpost/start` ...).
 *
 * Contract (messages as postfix-script words them, prefixed
 * `sealpost/sealpost-script:`, on stderr):
 * - start: validate (as check does), refuse when running (`fatal: the sealpost
 *   mail system is already running`), print `starting the sealpost mail
 *   system`, start the master in the background and exit 0 once its
 *   listeners are up; exit 1 with the child's fatal line otherwise.
 * - start-fg: run the master in this process until SIGTERM/SIGINT; run as
 *   root, it becomes mail_owner once its listeners are bound. With
 *   maillog_file empty it logs to the system logger (else to standard error,
 *   or $data_directory/maillog under `start`).
 * - stop / abort: `stopping` / `aborting the sealpost mail system`, SIGTERM /
 *   SIGKILL, wait until it is gone; exit 1 `fatal: the sealpost mail system is
 *   not running` when it is not.
 * - reload: the new configuration is validated here first; a broken one is
 *   one fatal line and exit 1, and the daemon is not signalled. Otherwise
 *   SIGHUP and `refreshing the sealpost mail system`.
 * - status: `the sealpost mail system is running: PID: N` (exit 0) or `... is
 *   not running` (exit 1). start, stop, status and reload all ask the master
 *   lock (daemon/lock.ts) whether the master runs, so they always agree.
 * - flush: postqueue -f.
 * - check: main.cf, master.cf, tables, queue and data directories; warnings
 *   and errors one per line; exit 1 on any error; `-v` adds a summary on
 *   stdout.
 * All take `-c config_dir` (else MAIL_CONFIG, else /etc/sealpost).
 *
 * Not here: the master (daemon/main.ts), validation (daemon/check.ts).
 */
import { EX, UsageError, UserError } from '../lib/errors.ts';
import { resolveConfigDir } from '../config/load.ts';
import { checkConfiguration, firstError, type CheckReport } from '../daemon/check.ts';
import { daemonPid, signalReload, startBackground, stopDaemon, type StartMessage } from '../daemon/control.ts';
import { masterLockHeldSettled } from '../daemon/lock.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

const SCRIPT = 'sealpost/sealpost-script';
const SUBCOMMANDS = ['start', 'start-fg', 'stop', 'abort', 'reload', 'status', 'flush', 'check'] as const;
type Sub = (typeof SUBCOMMANDS)[number];

/** Longest wait for a graceful stop: the master's session grace period plus margin. */
const STOP_TIMEOUT_MS = 40_000;

function say(ctx: CommandContext, text: string): void {
  ctx.stderr.write(`${SCRIPT}: ${text}\n`);
}

function subcommand(ctx: CommandContext): Sub {
  const name = ctx.prog.replace(/^.*\//, '');
  if (!(SUBCOMMANDS as readonly string[]).includes(name)) throw new UsageError(`usage: sealpost ${SUBCOMMANDS.join('|')} [-c config_dir]`);
  return name as Sub;
}

function parse(ctx: CommandContext, sub: Sub): { configDir: string; verbose: boolean } {
  const opts = getopt(ctx.argv, sub === 'check' ? 'c:v' : 'c:', `usage: sealpost ${sub} [-c config_dir]${sub === 'check' ? ' [-v]' : ''}`);
  if (opts.rest.length > 0) throw new UsageError(`usage: sealpost ${sub} [-c config_dir]${sub === 'check' ? ' [-v]' : ''}`);
  // `sealpost -v check` (postfix(1)'s global -v, MAIL_VERBOSE) is `sealpost check -v`.
  return { configDir: resolveConfigDir(opts.value('c'), ctx.env), verbose: opts.has('v') || (sub === 'check' && ctx.env.MAIL_VERBOSE !== undefined) };
}

/** Validate; print warnings; throw the first error. */
async function validated(ctx: CommandContext, configDir: string): Promise<CheckReport> {
  const report = await checkConfiguration(configDir);
  for (const w of report.warnings) ctx.stderr.write(`${ctx.prog}: warning: ${w}\n`);
  const err = firstError(report);
  if (err) throw err;
  return report;
}

function queueDirOf(report: CheckReport): string {
  return report.config!.get('queue_directory');
}

async function start(ctx: CommandContext, configDir: string): Promise<number> {
  const report = await validated(ctx, configDir);
  const config = report.config!;
  // A master SIGKILLed a moment ago counts as gone once its lock settles: start right after works.
  if (await masterLockHeldSettled(queueDirOf(report))) {
    say(ctx, 'fatal: the sealpost mail system is already running');
    return 1;
  }
  const logFile = config.get('maillog_file');
  if (logFile.startsWith('/dev/')) {
    say(ctx, `warning: maillog_file is ${logFile}: the background daemon's log is discarded; set maillog_file in ${configDir}/main.cf, or run "sealpost start-fg" under a supervisor`);
  } else if (logFile === '') {
    const { findSyslogSocket } = await import('../reports/syslog.ts');
    if (findSyslogSocket(config.get('sealpost_syslog_socket')) === undefined) {
      const { syslogFallbackFile } = await import('../daemon/main.ts');
      say(ctx, `warning: no system logger socket: the log goes to ${syslogFallbackFile(config, 'file')}; set maillog_file in ${configDir}/main.cf to choose a file`);
    }
  }
  say(ctx, 'starting the sealpost mail system');
  try {
    await startBackground({ configDir, logFile, env: ctx.env });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    say(ctx, `fatal: ${err.message}`);
    return 1;
  }
  return EX.OK;
}

/** Tell a `sealpost start` parent how the start went (IPC), then let go of the channel. */
function report(ctx: CommandContext, m: StartMessage): void {
  if (ctx.env.SEALPOST_START_IPC !== '1' || typeof process.send !== 'function') return;
  process.send(m, undefined, undefined, () => {
    if (process.connected) process.disconnect();
  });
}

async function startForeground(ctx: CommandContext, configDir: string): Promise<number> {
  const { runMaster, SYSLOG } = await import('../daemon/main.ts');
  try {
    return await runMaster({
      configDir,
      defaultLogFile: SYSLOG,
      // Under `sealpost start` standard error goes nowhere: the fallback is a file then.
      syslogFallback: ctx.env.SEALPOST_START_IPC === '1' ? 'file' : 'stderr',
      dropPrivileges: process.geteuid?.() === 0,
      onReady: ({ pid }) => report(ctx, { kind: 'ready', pid }),
    });
  } catch (err) {
    report(ctx, { kind: 'error', message: err instanceof Error ? err.message : String(err) });
    throw err;
  }
}

async function stop(ctx: CommandContext, configDir: string, how: 'graceful' | 'abort'): Promise<number> {
  const report = await validatedQuiet(configDir);
  const queueDir = queueDirOf(report);
  const pid = await daemonPid(queueDir);
  if (pid === undefined) {
    say(ctx, 'fatal: the sealpost mail system is not running');
    return 1;
  }
  if (pid === 0) {
    say(ctx, `fatal: the sealpost mail system is running, but ${queueDir}/pid/master.pid does not name its process`);
    return 1;
  }
  say(ctx, how === 'graceful' ? 'stopping the sealpost mail system' : 'aborting the sealpost mail system');
  const gone = await stopDaemon(queueDir, pid, how, how === 'graceful' ? STOP_TIMEOUT_MS : 5000);
  if (!gone) {
    say(ctx, `fatal: the sealpost mail system (PID ${pid}) did not stop in time${how === 'graceful' ? '; "sealpost abort" stops it at once' : ''}`);
    return 1;
  }
  return EX.OK;
}

/**
 * The configuration for commands that only need queue_directory: a broken
 * table or a bad value elsewhere in main.cf must not keep `stop` or `status`
 * from finding the running daemon.
 */
async function validatedQuiet(configDir: string): Promise<CheckReport> {
  const { loadConfig } = await import('../config/load.ts');
  const config = loadConfig({ configDir, strictValues: false });
  return { configDir, config, errors: [], warnings: [], services: [], endpoints: [], tables: [], directories: [] };
}

async function reload(ctx: CommandContext, configDir: string): Promise<number> {
  // postfix(1) reads the configuration before it signals anything: a broken one stops here.
  const report = await validated(ctx, configDir);
  const pid = await daemonPid(queueDirOf(report));
  if (pid === undefined || pid === 0) {
    say(ctx, pid === 0 ? 'fatal: the master\'s pid file is missing' : 'fatal: the sealpost mail system is not running');
    return 1;
  }
  signalReload(pid);
  say(ctx, 'refreshing the sealpost mail system');
  return EX.OK;
}

async function status(ctx: CommandContext, configDir: string): Promise<number> {
  const pid = await daemonPid(queueDirOf(await validatedQuiet(configDir)));
  if (pid === undefined) {
    say(ctx, 'the sealpost mail system is not running');
    return 1;
  }
  say(ctx, `the sealpost mail system is running: PID: ${pid === 0 ? 'unknown' : pid}`);
  return EX.OK;
}

async function flush(ctx: CommandContext, configDir: string): Promise<number> {
  const postqueue = await import('./postqueue.ts');
  return postqueue.main({ ...ctx, prog: 'sealpost/postqueue', argv: ['-c', configDir, '-f'] });
}

function summary(report: CheckReport, pid: number | undefined): string {
  const c = report.config;
  const lines: string[] = [];
  lines.push(`config directory: ${report.configDir}`);
  if (c) {
    lines.push(`main.cf: ${c.mainCfPath} (${c.hasMainCf ? 'found' : 'not found: built-in defaults'})`);
    lines.push(`master.cf: ${c.masterCfPath} (${c.hasMasterCf ? 'found' : 'not found: built-in default, smtp on port 25'})`);
    const level = c.get('smtp_tls_security_level');
    lines.push(`smtp_tls_security_level = ${level}${level === '' ? ' (no TLS for outgoing mail)' : ''}${c.isSet('smtp_tls_security_level') ? '' : ' (default)'}`);
    const policy = c.get('smtp_tls_policy_maps');
    lines.push(`smtp_tls_policy_maps = ${policy === '' ? '(none)' : policy}`);
    lines.push(`relayhost = ${c.get('relayhost') === '' ? '(none: direct delivery by MX)' : c.get('relayhost')}`);
  }
  if (report.endpoints.length === 0) lines.push('listeners: none');
  for (const e of report.endpoints) {
    const n = e.service.overrides.length;
    const where = e.service.host !== undefined ? e.service.name : `${e.service.name} on ${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
    lines.push(`listener: ${where} (${e.service.command}${n > 0 ? `, ${n} -o override${n > 1 ? 's' : ''}` : ''}; master.cf line ${e.service.line})`);
  }
  if (report.tables.length === 0) lines.push('tables: none configured');
  for (const t of report.tables) lines.push(`table: ${t.spec} (${t.usedBy.join(', ')}): ${t.error ? 'ERROR' : 'ok'}`);
  for (const d of report.directories) lines.push(`${d.param}: ${d.path} (${d.state === 'missing' ? 'missing: start creates it' : d.state})`);
  if (c) lines.push(`daemon: ${pid === undefined ? 'not running' : `running, PID ${pid}`}`);
  lines.push(`result: ${report.errors.length === 0 ? 'OK' : `${report.errors.length} error${report.errors.length > 1 ? 's' : ''}`}, ${report.warnings.length} warning${report.warnings.length === 1 ? '' : 's'}`);
  return lines.join('\n') + '\n';
}

async function check(ctx: CommandContext, configDir: string, verbose: boolean): Promise<number> {
  const report = await checkConfiguration(configDir, { directories: true });
  for (const w of report.warnings) ctx.stderr.write(`${ctx.prog}: warning: ${w}\n`);
  for (const e of report.errors) ctx.stderr.write(`${ctx.prog}: error: ${e}\n`);
  if (verbose) {
    const pid = report.config ? await daemonPid(report.config.get('queue_directory')).catch(() => undefined) : undefined;
    ctx.stdout.write(summary(report, pid));
  }
  return report.errors.length === 0 ? EX.OK : 1;
}

export async function main(ctx: CommandContext): Promise<number> {
  const sub = subcommand(ctx);
  const { configDir, verbose } = parse(ctx, sub);
  switch (sub) {
    case 'start':
      return start(ctx, configDir);
    case 'start-fg':
      return startForeground(ctx, configDir);
    case 'stop':
      return stop(ctx, configDir, 'graceful');
    case 'abort':
      return stop(ctx, configDir, 'abort');
    case 'reload':
      return reload(ctx, configDir);
    case 'status':
      return status(ctx, configDir);
    case 'flush':
      return flush(ctx, configDir);
    case 'check':
      return check(ctx, configDir, verbose);
  }
}
