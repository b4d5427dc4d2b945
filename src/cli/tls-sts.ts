/**
 * tls-sts.ts — `sealpost tls sts [-c config_dir] [-j] list | show DOMAIN |
 * fetch DOMAIN | forget DOMAIN`: the MTA-STS policy cache.
 *
 *   list         every cached, unexpired policy: domain, mode, id, expiry, mx patterns;
 *   show D       the cached policy of D in full (its lines), without any network lookup;
 *   fetch D      the `_mta-sts` TXT record and the policy now (RFC 8461 §3), whatever the
 *                cache says; a failure keeps the cached policy (§5.1);
 *   forget D     drop D's policy: the next delivery looks it up anew.
 *
 * Contract:
 * - While the daemon runs, the command acts on the daemon's own service
 *   (policies it read are held in memory): the request goes to it as a file
 *   in `$data_directory/mta-sts/requests/` (mta-sts/control.ts) and the
 *   command waits for the answer (at most the fetch timeout + 30 s).
 *   Otherwise it acts on the cache files itself; run as root it gives the
 *   files it wrote to mail_owner, so the daemon can read them later.
 * - `-j`: the answer as one JSON object (control.ts StsAnswer).
 * - Exit status: 0; 1 when `fetch` found no policy because the fetch
 *   failed; 75 (EX_TEMPFAIL) when the daemon does not answer; bad usage
 *   one line and 64.
 *
 * Not here: the policy logic (mta-sts/service.ts), serving requests in the
 * daemon (mta-sts/daemon.ts).
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { lookupUser } from '../daemon/privileges.ts';
import { daemonPid } from '../daemon/pidfile.ts';
import { createResolver } from '../delivery/dns/resolver.ts';
import { cacheKey, type StsCacheEntry } from '../delivery/mta-sts/cache.ts';
import { answerRequest, requestDir, type StsAnswer, type StsRequest } from '../delivery/mta-sts/control.ts';
import { createStsService, stsCacheDir, type StsLookup } from '../delivery/mta-sts/service.ts';
import { EX, UsageError, UserError } from '../lib/errors.ts';
import { warn, type CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

export const USAGE = 'usage: sealpost tls sts [-c config_dir] [-j] list | show domain | fetch domain | forget domain';

function parseRequest(words: readonly string[]): StsRequest {
  const [op, domain, ...rest] = words;
  if (op === 'list' && domain === undefined) return { op: 'list' };
  if ((op === 'show' || op === 'fetch' || op === 'forget') && domain !== undefined && rest.length === 0) {
    try {
      return { op, domain: cacheKey(domain) };
    } catch (err) {
      throw new UsageError(USAGE, (err as Error).message);
    }
  }
  throw new UsageError(USAGE);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Ask the running daemon (see the header). */
async function askDaemon(config: LoadedConfig, req: StsRequest): Promise<StsAnswer> {
  const dir = requestDir(stsCacheDir(config));
  if (!existsSync(dir)) throw new UserError(`the mail system runs, but ${dir} does not exist: is it a version without MTA-STS? restart it (sealpost stop; sealpost start)`, EX.TEMPFAIL);
  const base = `${Date.now()}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(join(dir, `${base}.tmp`), JSON.stringify(req), { mode: 0o644 });
  renameSync(join(dir, `${base}.tmp`), join(dir, `${base}.req`));
  const timeoutMs = config.getTime('sealpost_mta_sts_fetch_timeout') * 1000 + 30_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const answer = JSON.parse(readFileSync(join(dir, `${base}.done`), 'utf8')) as StsAnswer;
      unlinkSync(join(dir, `${base}.done`));
      return answer;
    } catch {
      await sleep(50);
    }
  }
  try {
    unlinkSync(join(dir, `${base}.req`));
  } catch {
    // Taken after all; its answer is left unread.
  }
  throw new UserError(`the mail system did not answer within ${Math.round(timeoutMs / 1000)} s: see the mail log`, EX.TEMPFAIL);
}

/** No daemon: answer from the files; as root, give what was written to mail_owner. */
async function answerHere(ctx: CommandContext, config: LoadedConfig, req: StsRequest): Promise<StsAnswer> {
  const service = createStsService(config, createResolver(config), { warn: (t) => warn(ctx, t) });
  const answer = await answerRequest(service, req);
  if (req.op === 'fetch' && process.getuid?.() === 0) {
    const owner = lookupUser(config.get('mail_owner'));
    const dir = stsCacheDir(config);
    const file = join(dir, `${req.domain}.json`);
    if (owner) {
      for (const f of [dir, file]) {
        try {
          chownSync(f, owner.uid, owner.gid);
        } catch {
          // Not written (the fetch failed): nothing to give away.
        }
      }
    }
  }
  return answer;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function entryLine(e: StsCacheEntry): string {
  return `${e.domain}: mode ${e.mode}, id ${e.id}, expires ${iso(e.expiresAt)}, mx ${e.mx.join(' ') || '(none)'}`;
}

function entryBlock(e: StsCacheEntry): string[] {
  return [
    `${e.domain}: MTA-STS policy id ${e.id}, mode ${e.mode}`,
    `  fetched ${iso(e.fetchedAt)}, max_age ${e.maxAge}, expires ${iso(e.expiresAt)}`,
    ...e.lines.map((l) => `  | ${l}`),
  ];
}

function lookupLines(domain: string, l: StsLookup): string[] {
  if (l.kind === 'error') return [`${domain}: ${l.detail}`];
  if (l.kind === 'policy') {
    const lines = entryBlock(l.policy);
    if (l.from === 'fetch') lines[0] = `${lines[0]} (fetched now)`;
    if (l.refreshFailure) lines.push(`  the fetch failed (${l.refreshFailure.type}): ${l.refreshFailure.detail}; the cached policy stays`);
    return lines;
  }
  if (l.why === 'mode-none' && l.policy) return [...entryBlock(l.policy), '  mode none: no MTA-STS policy applies'];
  return [`${domain}: no MTA-STS policy: ${l.detail}${l.failure ? ` (${l.failure.type})` : ''}`];
}

function textOf(a: Extract<StsAnswer, { ok: true }>): string[] {
  switch (a.op) {
    case 'list':
      return a.entries.length === 0 ? ['no MTA-STS policies cached'] : a.entries.map(entryLine);
    case 'show':
      return a.entry ? entryBlock(a.entry) : [`${a.domain}: no cached MTA-STS policy`];
    case 'fetch':
      return lookupLines(a.domain, a.lookup);
    case 'forget':
      return [a.had ? `${a.domain}: forgotten; the next delivery looks its policy up anew` : `${a.domain}: was not cached`];
  }
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'c:j', USAGE);
  const req = parseRequest(opts.rest);
  const config = loadConfig({ configDir: resolveConfigDir(opts.value('c'), ctx.env), warn: (m) => warn(ctx, m) });
  const running = await daemonPid(config.get('queue_directory'));
  const answer = running !== undefined ? await askDaemon(config, req) : await answerHere(ctx, config, req);
  if (!answer.ok) throw new UserError(answer.error, EX.SOFTWARE);
  if (opts.has('j')) ctx.stdout.write(`${JSON.stringify(answer)}\n`);
  else ctx.stdout.write(`${textOf(answer).join('\n')}\n`);
  const failed = answer.op === 'fetch' && answer.lookup.kind === 'none' && answer.lookup.why === 'fetch-failed';
  return failed || (answer.op === 'fetch' && answer.lookup.kind === 'error') ? 1 : EX.OK;
}
