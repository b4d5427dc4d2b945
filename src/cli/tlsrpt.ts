/**
 * tlsrpt.ts — `sealpost tlsrpt`: what the TLS-RPT store holds, and
 * `sealpost tlsrpt send --now` to close the current period and send its
 * reports at once (for tests, and for a postmaster who wants to see one).
 *
 * Usage: sealpost tlsrpt [-c config_dir] [--json]
 *        sealpost tlsrpt [-c config_dir] send --now
 *
 * Contract:
 * - The listing reads the store on disk (nothing is changed): per period
 *   (start, end or `open`, when its reports are due) and per policy domain the
 *   sessions, the successful and failed ones, and the failures by result
 *   type. `--json` prints the same as one JSON document.
 * - `send --now`: when a live process (the daemon) owns the store, the request
 *   goes to it as a file in `$data_directory/tlsrpt/requests/` and the
 *   command waits for its answer (at most 2 minutes), so a period is never
 *   closed or sent twice; otherwise the command takes the store lock and does
 *   the work itself. Report mail goes into the queue through maildrop, as
 *   `sendmail` does; the daemon's pickup delivers it. Each step is printed
 *   (the lines the daemon logs).
 * - Bad usage: one line and exit status 64 (EX_USAGE).
 *
 * Not here: the store and the reports (reports/tlsrpt/).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { writeMaildrop } from '../intake/maildrop.ts';
import { EX, UserError } from '../lib/errors.ts';
import { createSpool } from '../queue/spool.ts';
import { memoryMailLog } from '../reports/maillog.ts';
import { readPeriods, type PeriodOnDisk } from '../reports/tlsrpt/journal.ts';
import { lockOwner } from '../reports/tlsrpt/lock.ts';
import { rfc3339 } from '../reports/tlsrpt/report.ts';
import { StoreBusyError, TlsRptService, tlsRptDir } from '../reports/tlsrpt/service.ts';
import { nextUtcMidnight } from '../reports/tlsrpt/store.ts';
import { warn, type CommandContext } from './context.ts';

const USAGE = 'usage: sealpost tlsrpt [-c config_dir] [--json] | sealpost tlsrpt [-c config_dir] send --now';

interface Args {
  readonly configDir: string;
  readonly json: boolean;
  readonly send: boolean;
}

function parse(ctx: CommandContext): Args {
  let cDir: string | undefined;
  let json = false;
  const words: string[] = [];
  for (let i = 0; i < ctx.argv.length; i++) {
    const a = ctx.argv[i]!;
    if (a === '-c') {
      cDir = ctx.argv[++i];
      if (cDir === undefined) throw new UserError(USAGE, EX.USAGE);
    } else if (a === '--json') json = true;
    else words.push(a);
  }
  const send = words[0] === 'send';
  if (send ? words.length !== 2 || words[1] !== '--now' : words.length !== 0) throw new UserError(USAGE, EX.USAGE);
  return { configDir: resolveConfigDir(cDir, ctx.env), json, send };
}

interface DomainView {
  readonly domain: string;
  readonly policyTypes: string[];
  readonly sessions: number;
  readonly successful: number;
  readonly failed: number;
  readonly failures: Record<string, number>;
}

function domainsOf(p: PeriodOnDisk): DomainView[] {
  return p.total.domains().map((domain) => {
    const totals = p.total.forDomain(domain);
    const failures: Record<string, number> = {};
    for (const t of totals) for (const d of t.details.values()) failures[d.detail.resultType] = (failures[d.detail.resultType] ?? 0) + d.count;
    const successful = totals.reduce((a, t) => a + t.success, 0);
    const failed = totals.reduce((a, t) => a + t.failure, 0);
    return { domain, policyTypes: [...new Set(totals.map((t) => t.policy.type))].sort(), sessions: successful + failed, successful, failed, failures };
  });
}

function periodJson(p: PeriodOnDisk): Record<string, unknown> {
  return {
    start: rfc3339(p.start),
    end: rfc3339(p.closed ? p.closed.end : nextUtcMidnight(p.start)),
    state: p.closed ? 'closed' : 'open',
    ...(p.closed ? { reportsDue: rfc3339(p.closed.notBefore), handled: [...p.handled].sort() } : {}),
    domains: domainsOf(p),
  };
}

function printText(ctx: CommandContext, periods: readonly PeriodOnDisk[]): void {
  if (periods.length === 0) {
    ctx.stdout.write('tlsrpt: no TLS sessions recorded\n');
    return;
  }
  for (const p of periods) {
    const state = p.closed ? `closed, reports due ${rfc3339(p.closed.notBefore)}` : 'open';
    ctx.stdout.write(`${rfc3339(p.start)} .. ${rfc3339(p.closed ? p.closed.end : nextUtcMidnight(p.start))} (${state})\n`);
    for (const d of domainsOf(p)) {
      const done = p.handled.has(d.domain) ? ' [report handled]' : '';
      ctx.stdout.write(`  ${d.domain} (${d.policyTypes.join(', ')}): ${d.sessions} sessions, ${d.successful} successful, ${d.failed} failed${done}\n`);
      for (const [type, n] of Object.entries(d.failures).sort()) ctx.stdout.write(`    ${type}: ${n}\n`);
    }
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Ask the live owner of the store (the daemon) to send now, and wait for its answer. */
async function askOwner(dir: string, timeoutMs = 120_000): Promise<{ lines: string[]; error?: string }> {
  const reqDir = join(dir, 'requests');
  mkdirSync(reqDir, { recursive: true, mode: 0o700 });
  const base = `${Date.now()}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(join(reqDir, `${base}.tmp`), 'send-now\n');
  renameSync(join(reqDir, `${base}.tmp`), join(reqDir, `${base}.req`));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const answer = JSON.parse(readFileSync(join(reqDir, `${base}.done`), 'utf8')) as { lines: string[]; error?: string };
      unlinkSync(join(reqDir, `${base}.done`));
      return answer;
    } catch {
      await sleep(100);
    }
  }
  try {
    unlinkSync(join(reqDir, `${base}.req`));
  } catch {
    // Taken after all; its answer will be left unread.
  }
  throw new UserError(`the mail system did not answer the send request within ${timeoutMs / 1000} s: see the mail log`, EX.TEMPFAIL);
}

async function sendHere(config: LoadedConfig): Promise<string[]> {
  const spool = await createSpool(config.get('queue_directory'), { longQueueIds: config.getBool('enable_long_queue_ids') });
  const service = new TlsRptService({
    config,
    log: memoryMailLog(config.get('syslog_name') || 'sealpost'),
    queueMail: (env, content) => writeMaildrop(spool, env, content),
  });
  await service.start();
  try {
    return await service.sendNow();
  } finally {
    await service.stop();
  }
}

async function sendNow(ctx: CommandContext, config: LoadedConfig): Promise<number> {
  const dir = tlsRptDir(config);
  let lines: string[];
  if (lockOwner(dir) !== undefined) {
    const answer = await askOwner(dir);
    if (answer.error) throw new UserError(answer.error, EX.SOFTWARE);
    lines = answer.lines;
  } else {
    try {
      lines = await sendHere(config);
    } catch (err) {
      // Lost a race with a starting daemon: ask it instead.
      if (!(err instanceof StoreBusyError)) throw err;
      const answer = await askOwner(dir);
      if (answer.error) throw new UserError(answer.error, EX.SOFTWARE);
      lines = answer.lines;
    }
  }
  if (lines.length === 0) ctx.stdout.write('tlsrpt: no TLS sessions recorded in the period; nothing to send\n');
  for (const l of lines) ctx.stdout.write(`tlsrpt: ${l}\n`);
  return EX.OK;
}

export async function main(ctx: CommandContext): Promise<number> {
  // `sealpost tlsrpt send --help`: the usage, exit 0 (as `sealpost COMMAND --help`).
  if (ctx.argv.includes('--help')) {
    ctx.stdout.write(`${USAGE}\n`);
    return EX.OK;
  }
  const args = parse(ctx);
  const config = loadConfig({ configDir: args.configDir, warn: (m: string) => warn(ctx, m) });
  if (args.send) return sendNow(ctx, config);
  const periods = await readPeriods(tlsRptDir(config));
  if (args.json) ctx.stdout.write(`${JSON.stringify({ periods: periods.map(periodJson) }, null, 2)}\n`);
  else printText(ctx, periods);
  return EX.OK;
}
