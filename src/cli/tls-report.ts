/**
 * tls-report.ts — `sealpost tls report [-c config_dir] [--since DURATION |
 * --from TIME [--to TIME]] [--json] [--svg FILE]`: per destination domain,
 * how outgoing mail was protected over a window — the TLS posture store
 * (reports/posture.ts) rendered as an aligned table, JSON, or an SVG picture.
 *
 * Contract:
 * - The window defaults to the last 24 hours. DURATION is a Postfix time
 *   value (`90m`, `24h`, `7d`, `2w`; a bare number is hours). TIME is ISO 8601
 *   (`2026-12-01`, `2026-12-01T10:00`, `2026-12-01 10:00:00Z`); without a zone
 *   it is UTC. The store counts by whole UTC hours: an hour is in the window
 *   when it overlaps it.
 * - stdout gets the text table (or, with --json, one JSON document);
 *   `--svg FILE` also writes the picture (`-` for stdout instead of the table).
 * - Read-only: it reads `$data_directory/tls-posture`; what the running
 *   daemon counted in the last minute may not be there yet (it appends every 60 s).
 * - Bad arguments are one `fatal:` line (UsageError/UserError).
 *
 * Not here: counting (reports/posture.ts), layout (reports/posture-render.ts).
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { parseTime } from '../config/params.ts';
import { EX, UsageError, UserError } from '../lib/errors.ts';
import { readPosture, type PostureWindow } from '../reports/posture.ts';
import { postureJson, postureRows, renderPostureSvg, renderPostureText } from '../reports/posture-render.ts';
import { warn, type CommandContext } from './context.ts';

export const USAGE = 'usage: sealpost tls report [-c config_dir] [--since DURATION | --from TIME [--to TIME]] [--json] [--svg FILE]';

/** An ISO 8601 date or date-time; UTC when no zone is given. */
export function parseWhen(text: string, what: string): number {
  const t = text.trim().replace(' ', 'T');
  const zoned = /(Z|[+-]\d{2}:?\d{2})$/i.test(t);
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(t) ? `${t}T00:00:00Z` : zoned ? t : `${t}Z`);
  if (!/^\d{4}-\d{2}-\d{2}/.test(t) || Number.isNaN(ms)) throw new UsageError(`bad ${what} time "${text}": use ISO 8601, e.g. 2026-12-01 or 2026-12-01T10:00 (UTC)`);
  return ms;
}

export function reportWindow(v: { since?: string; from?: string; to?: string }, now: number): PostureWindow {
  if (v.since !== undefined && (v.from !== undefined || v.to !== undefined)) throw new UsageError('--since cannot be combined with --from/--to');
  if (v.from !== undefined) {
    const from = parseWhen(v.from, '--from');
    const to = v.to !== undefined ? parseWhen(v.to, '--to') : now;
    if (to <= from) throw new UsageError(`--to (${v.to ?? 'now'}) must be after --from (${v.from})`);
    return { from, to };
  }
  if (v.to !== undefined) throw new UsageError('--to needs --from');
  let seconds: number;
  try {
    seconds = parseTime(v.since ?? '24h', 'h');
  } catch {
    throw new UsageError(`bad --since value "${v.since}": a number with a unit s, m, h, d or w (e.g. 24h, 7d)`);
  }
  return { from: now - seconds * 1000, to: now };
}

export async function main(ctx: CommandContext): Promise<number> {
  let values: { since?: string; from?: string; to?: string; json?: boolean; svg?: string; config?: string };
  try {
    ({ values } = parseArgs({
      args: [...ctx.argv],
      options: { since: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' }, svg: { type: 'string' }, config: { type: 'string', short: 'c' } },
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  const config = loadConfig({ configDir: resolveConfigDir(values.config, ctx.env), warn: (m) => warn(ctx, m) });
  const w = reportWindow(values, Date.now());
  const rows = postureRows(await readPosture(config.get('data_directory'), w));
  if (values.svg !== undefined) {
    const svg = renderPostureSvg(rows, w);
    if (values.svg === '-') {
      ctx.stdout.write(svg);
      return EX.OK;
    }
    try {
      writeFileSync(values.svg, svg);
    } catch (err) {
      throw new UserError(`cannot write ${values.svg}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  ctx.stdout.write(values.json ? JSON.stringify(postureJson(rows, w), null, 2) + '\n' : renderPostureText(rows, w));
  return EX.OK;
}
