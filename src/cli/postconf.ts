/**
 * postconf.ts — `sealpost postconf`: print and edit main.cf/master.cf like postconf(1).
 *
 *   postconf [-c dir] [-d|-n] [-h] [-x] [-f] [name...]   print parameters (`name = value`)
 *   postconf -e name=value...                           edit main.cf in place
 *   postconf -X name... / postconf -# name...           remove / comment out
 *   postconf -M [-f] [-x] [service[/type]...]           print master.cf services
 *   postconf -m                                         supported lookup table types
 *
 * Contract: output is byte-identical to Postfix's postconf for the same files:
 * values are printed word by word with single spaces (postconf collapses
 * whitespace), `-f` folds at 80 columns with a 4-space indent, `-h` drops the
 * `name = `. An unknown name is a warning (`name: unknown parameter`), not an
 * error. Broken main.cf syntax, $name loops and unreadable directories are one
 * `fatal:` line naming the file and line.
 *
 * Not here: -a/-A/-b/-t/-T/-F/-P/-l (SASL, bounce templates, master.cf fields
 * and parameters, lock types) — Postfix features sealpost has no use for yet.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, EX, UsageError } from '../lib/errors.ts';
import { expand, ExpandError } from '../config/expand.ts';
import { checkConfigDir, loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { editMainCf, splitNameValue, type MainCfEdit } from '../config/main-cf.ts';
import { DEFAULT_MASTER_CF, formatMasterEntry, parseMasterCf, type MasterService } from '../config/master-cf.ts';
import { isRawParam } from '../config/params.ts';
import { DEFAULT_CONFIG_DIR } from '../config/types.ts';
import type { CommandContext } from './context.ts';
import { warn } from './context.ts';
import { getopt, type ParsedOptions } from './getopt.ts';

const USAGE =
  'usage: postconf [-c config_dir] [-d (parameter defaults)] [-e (edit configuration)] [-f (fold lines)] [-h (no names)] [-m (map types)] [-M (master.cf)] [-n (non-default parameters)] [-v (verbose)] [-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]';

/** The table types `postconf -m` lists (the maps registry will provide this list). */

// postconf_print.c behaviour: 80-column limit and 4-space continuation indent with -f.
const LINE_LIMIT = 80;
const INDENT = '    ';

/** postconf's line printer: words joined by one space; with fold, wrapped before column 80. */
export function formatLine(text: string, fold: boolean): string {
  let out = '';
  let len = 0;
  for (const word of text.split(/[ \t\r\n]+/)) {
    if (word === '') continue;
    if (len > 0) {
      if (!fold || len + word.length < LINE_LIMIT) {
        out += ' ';
        len += 1;
      } else {
        out += '\n' + INDENT;
        len = INDENT.length;
      }
    }
    out += word;
    len += word.length;
  }
  return out + '\n';
}

export async function main(ctx: CommandContext): Promise<number> {
  const o = getopt(ctx.argv, 'c:defhmMnvxX#', USAGE);
  const configDir = resolveConfigDir(o.value('c'), ctx.env);
  const configGiven = o.value('c') !== undefined || (ctx.env.MAIL_CONFIG ?? '') !== '';
  if (o.has('m')) {
    // Loaded only here: the table modules are not needed for the other modes.
    const { supportedTypes } = await import('../maps/registry.ts');
    for (const t of supportedTypes()) ctx.stdout.write(t + '\n');
    return EX.OK;
  }
  const edits = o.has('e') ? 'e' : o.has('X') ? 'X' : o.has('#') ? '#' : undefined;
  if (edits) return editMain(ctx, configDir, edits, o.rest);
  if (o.has('M')) return showMaster(ctx, configDir, o);
  return showParams(ctx, configDir, configGiven, o);
}

function editMain(ctx: CommandContext, configDir: string, mode: 'e' | 'X' | '#', args: readonly string[]): number {
  if (args.length === 0) {
    throw new UsageError(mode === 'e' ? '-e requires name=value argument' : `-${mode} requires parameter name argument`);
  }
  const edits: MainCfEdit[] = args.map((arg) => {
    if (mode === 'e') {
      const r = splitNameValue(arg);
      if ('error' in r) throw new UsageError(r.error);
      return { op: 'set', name: r.name, value: r.value };
    }
    if (arg.includes('=')) throw new UsageError(`-${mode} takes parameter names, not name=value: "${arg}"`);
    return { op: mode === 'X' ? 'remove' : 'comment', name: arg.trim() };
  });
  const seen = new Map<string, string>();
  for (const [i, e] of edits.entries()) {
    const earlier = seen.get(e.name);
    if (earlier !== undefined) warn(ctx, `ignoring earlier request: '${earlier}'`);
    seen.set(e.name, e.op === 'set' ? `${e.name} = ${e.value}` : args[i]!);
  }
  const path = join(configDir, 'main.cf');
  // Only the directory is checked: -e must be able to repair a main.cf that does not load.
  checkConfigDir(configDir);
  const before = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const { text, duplicates } = editMainCf(before, edits, path);
  for (const d of duplicates) warn(ctx, `${path}: multiple entries for "${d}"`);
  if (text !== before) {
    const tmp = `${path}.sealpost-tmp`;
    try {
      writeFileSync(tmp, text);
      renameSync(tmp, path);
    } catch (e) {
      throw new ConfigError(`cannot update ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}: check the directory's permissions`);
    }
  }
  return EX.OK;
}

function showMaster(ctx: CommandContext, configDir: string, o: ParsedOptions): number {
  const path = join(configDir, 'master.cf');
  const config = loadConfig({ configDir, strictValues: false, warn: (m) => warn(ctx, m) });
  const services = parseMasterCf(existsSync(path) ? readFileSync(path, 'utf8') : DEFAULT_MASTER_CF, path);
  const filters = o.rest.map((f) => ({ raw: f, name: f.split('/')[0]!, type: f.split('/')[1], hits: 0 }));
  for (const s of services) {
    if (filters.length > 0 && !filters.some((f) => matches(f, s))) continue;
    ctx.stdout.write(formatMasterEntry(s, o.has('f'), o.has('x') ? (v) => expandInService(config, s, v) : undefined));
  }
  for (const f of filters) if (f.hits === 0) warn(ctx, `unmatched request: "${f.raw}"`);
  return EX.OK;
}

/** postconf -Mx: expand `-o` values in the service's name space ($service_name, its own -o values). */
function expandInService(config: LoadedConfig, s: MasterService, text: string): string {
  const own = new Map(s.overrides);
  const lookup = (n: string): string | undefined => (n === 'service_name' ? s.name : (own.get(n) ?? config.raw(n)));
  try {
    return expand(text, { lookup });
  } catch (e) {
    if (e instanceof ExpandError) throw new ConfigError(`service ${s.name}/${s.type}: ${e.message}`, config.masterCfPath, s.line);
    throw e;
  }
}

function matches(f: { name: string; type: string | undefined; hits: number }, s: MasterService): boolean {
  const ok = f.name === s.name && (f.type === undefined || f.type === s.type);
  if (ok) f.hits++;
  return ok;
}

function showParams(ctx: CommandContext, configDir: string, configGiven: boolean, o: ParsedOptions): number {
  const warnings: string[] = [];
  const defaults = o.has('d');
  // postconf -d does not read main.cf: only built-in (and master.cf-derived) defaults.
  const config = loadConfig({ configDir, strictValues: false, readMainCf: !defaults, warn: (m) => warnings.push(m) });
  for (const w of warnings) if (!w.includes(': unused parameter: ')) warn(ctx, w);
  const nonDefault = o.has('n') && !defaults;
  const fold = o.has('f');
  const names = o.rest.length > 0 ? o.rest : listNames(config, defaults, nonDefault, configGiven);
  for (const name of names) {
    if (!config.isKnown(name) && !(name === 'config_directory')) {
      warn(ctx, `${name}: unknown parameter`);
      continue;
    }
    if (nonDefault && o.rest.length > 0 && !config.isSet(name)) continue;
    let value = defaults ? (config.defaultText(name) ?? '') : valueOf(config, name, configGiven);
    if (o.has('x') && !isRawParam(name)) value = defaults ? expandDefault(config, value, name) : config.expandText(value);
    ctx.stdout.write(formatLine(o.has('h') ? value : `${name} = ${value}`, fold));
  }
  // postconf(1) reports unused main.cf names after its output.
  for (const w of warnings) if (w.includes(': unused parameter: ')) warn(ctx, w);
  return EX.OK;
}

function valueOf(config: LoadedConfig, name: string, configGiven: boolean): string {
  if (name === 'config_directory' && configGiven && !config.isSet(name)) return config.configDir;
  return config.raw(name) ?? '';
}

function listNames(config: LoadedConfig, defaults: boolean, nonDefault: boolean, configGiven: boolean): string[] {
  if (nonDefault) {
    const set = [...config.entries.keys()].filter((n) => config.isKnown(n));
    // postconf -n shows config_directory when the directory was given with -c or MAIL_CONFIG.
    if (configGiven && config.configDir !== DEFAULT_CONFIG_DIR && !set.includes('config_directory')) set.push('config_directory');
    return set.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }
  const all = new Set(config.knownNames());
  if (!defaults) for (const n of config.entries.keys()) if (config.isKnown(n)) all.add(n);
  return [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** postconf -dx: expand a default against the other defaults only. */
function expandDefault(config: LoadedConfig, text: string, name: string): string {
  try {
    return expand(text, { lookup: (n) => config.defaultText(n) });
  } catch (e) {
    if (e instanceof ExpandError) throw new ConfigError(`bad default for parameter "${name}": ${e.message}`);
    throw e;
  }
}
