/**
 * load.ts — build the effective configuration: main.cf + master.cf service
 * names + the parameter registry + $name expansion → a read-only Config.
 *
 * Contract (other components code against these exports):
 *   resolveConfigDir(cFlag, env)  `-c` wins, then MAIL_CONFIG, then DEFAULT_CONFIG_DIR.
 *   loadConfig({configDir, warn?, overrides?})  synchronous; a missing main.cf in an
 *     existing directory means built-in defaults (hasMainCf=false); a missing directory
 *     is a ConfigError. Overrides (master.cf `-o name=value`) win over main.cf.
 *     Every main.cf value is checked for $name syntax and loops at load time, and
 *     typed parameters set explicitly are parsed at load time: a broken config is
 *     refused here with file, line and parameter, never later in a daemon.
 *     Warnings (unused or undefined names, obsolete parameters are separate: see
 *     deprecations()) go to `warn`, one line each, naming file and line.
 *   expandValue(config, text)  expand arbitrary text against a Config.
 *
 * Not here: parsing (main-cf.ts, master-cf.ts, expand.ts), defaults (params.ts).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../lib/errors.ts';
import { expand, ExpandError, references } from './expand.ts';
import { parseMainCf, type MainCfEntry } from './main-cf.ts';
import { DEFAULT_MASTER_CF, parseMasterCf, type MasterService } from './master-cf.ts';
import {
  acceptedForms,
  allParamNames,
  byteOrder,
  derivedSpec,
  isRawParam,
  OBSOLETE,
  deprecationWarning,
  paramSpec,
  parseBool,
  parseInt10,
  parseSize,
  parseTime,
  serviceParams,
  splitList,
  systemDefault,
  ValueError,
  type ParamSpec,
} from './params.ts';
import { DEFAULT_CONFIG_DIR, type Config } from './types.ts';

export interface LoadOptions {
  readonly configDir: string;
  readonly warn?: (message: string) => void;
  readonly overrides?: Readonly<Record<string, string>>;
  /**
   * Parse typed values of explicitly set parameters at load time (default true).
   * `postconf` turns this off: like Postfix's postconf it shows what is written.
   */
  readonly strictValues?: boolean;
  /** Read main.cf (default true). `postconf -d` does not: it shows built-in defaults only. */
  readonly readMainCf?: boolean;
}

/** Config plus what `postconf` needs to print it. */
export interface LoadedConfig extends Config {
  readonly mainCfPath: string;
  readonly masterCfPath: string;
  readonly hasMasterCf: boolean;
  readonly services: readonly MasterService[];
  /** main.cf entries by name (the last one wins), in file order. */
  readonly entries: ReadonlyMap<string, MainCfEntry>;
  /** The default text (registry, service-derived or computed); undefined for unknown names. */
  defaultText(name: string): string | undefined;
  /** Built-in and service-derived names, sorted. */
  knownNames(): string[];
  /** Known, or a main.cf name that some value references ($name): Postfix's "user-defined" parameter. */
  isKnown(name: string): boolean;
  spec(name: string): ParamSpec | undefined;
  /** Expand arbitrary text; ConfigError on bad syntax or a loop. */
  expandText(text: string): string;
  /** Where an explicitly set parameter was set. */
  location(name: string): { file: string; line: number } | undefined;
}

export function resolveConfigDir(cFlag: string | undefined, env: Readonly<Record<string, string | undefined>>): string {
  if (cFlag !== undefined && cFlag !== '') return cFlag;
  const fromEnv = env.MAIL_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return DEFAULT_CONFIG_DIR;
}

export function expandValue(config: Config, text: string): string {
  const loaded = config as Partial<LoadedConfig>;
  if (typeof loaded.expandText === 'function') return loaded.expandText(text);
  try {
    return expand(text, { lookup: (n) => config.raw(n) });
  } catch (e) {
    if (e instanceof ExpandError) throw new ConfigError(`cannot expand "${text}": ${e.message}`);
    throw e;
  }
}

/**
 * A ConfigError with the fix when `configDir` is missing or not a directory.
 * The built-in directory may be absent: then every value is a built-in
 * default (a fresh install runs before anyone wrote a main.cf). A directory
 * named with -c or MAIL_CONFIG must exist — a typo there must not silently
 * mean "defaults".
 */
export function checkConfigDir(configDir: string): void {
  let st;
  try {
    st = statSync(configDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw unreadable(configDir, e);
    if (configDir === DEFAULT_CONFIG_DIR) return;
    throw new ConfigError(
      `configuration directory ${configDir} does not exist: create it (an empty directory means built-in defaults), or point -c or MAIL_CONFIG at the directory that holds main.cf`,
    );
  }
  if (!st.isDirectory()) throw new ConfigError(`${configDir} is not a directory: -c and MAIL_CONFIG name the directory that holds main.cf`);
}

/** A file that exists but cannot be read (EACCES ...): one line naming it and the fix. */
function unreadable(path: string, e: unknown): ConfigError {
  const code = (e as NodeJS.ErrnoException).code ?? String(e);
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code;
  return new ConfigError(`cannot read ${path}: ${why}: run the command as a user that may read it (root, or the owner of the configuration), or fix its permissions`);
}

/** Whether a configuration file is there; a file that cannot be looked at is an error, never "absent". */
function present(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw unreadable(path, e);
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw unreadable(path, e);
  }
}

export function loadConfig(opts: LoadOptions): LoadedConfig {
  const configDir = opts.configDir;
  checkConfigDir(configDir);
  const warn = opts.warn ?? (() => {});
  const mainCfPath = join(configDir, 'main.cf');
  const masterCfPath = join(configDir, 'master.cf');
  // An unreadable configuration is an error, never "built-in defaults".
  const hasMainCf = opts.readMainCf !== false && present(mainCfPath);
  const hasMasterCf = present(masterCfPath);
  const parsed = hasMainCf ? parseMainCf(readText(mainCfPath), mainCfPath) : { entries: [], warnings: [] };
  parsed.warnings.forEach((w) => warn(w));
  const services = parseMasterCf(hasMasterCf ? readText(masterCfPath) : DEFAULT_MASTER_CF, masterCfPath);

  const entries = new Map<string, MainCfEntry>();
  for (const e of parsed.entries) {
    const earlier = entries.get(e.name);
    // postconf(5): the last entry wins; Postfix warns about the one it drops.
    if (earlier) warn(`${mainCfPath}, line ${e.line}: overriding earlier entry: ${earlier.name}=${earlier.value}`);
    entries.delete(e.name); // keep file order of the winning (last) entry
    entries.set(e.name, e);
  }
  const overrides = new Map<string, string>(Object.entries(opts.overrides ?? {}));

  const derived = new Map<string, string>();
  for (const s of services) for (const [n, d] of serviceParams(s.name, s.command)) derived.set(n, d);

  const specOf = (name: string): ParamSpec | undefined => {
    const p = paramSpec(name);
    if (p) return p;
    const d = derived.get(name);
    return d === undefined ? undefined : derivedSpec(name, d);
  };
  const builtinKnown = (name: string): boolean => paramSpec(name) !== undefined || derived.has(name);

  const sysCache = new Map<string, string | undefined>();
  const defaultText = (name: string): string | undefined => {
    if (!sysCache.has(name)) sysCache.set(name, systemDefault(name, { configDir, get: (n) => config.get(n) }));
    const sys = sysCache.get(name);
    if (sys !== undefined) return sys;
    return paramSpec(name)?.defaultText ?? derived.get(name);
  };
  const raw = (name: string): string | undefined => overrides.get(name) ?? entries.get(name)?.value ?? defaultText(name);

  const location = (name: string): { file: string; line: number } | undefined => {
    if (overrides.has(name)) return undefined;
    const e = entries.get(name);
    return e ? { file: mainCfPath, line: e.line } : undefined;
  };

  const cache = new Map<string, string>();
  const expandOrThrow = (text: string, name: string | undefined): string => {
    try {
      return expand(text, { lookup: raw });
    } catch (e) {
      if (!(e instanceof ExpandError)) throw e;
      const where = name ? location(name) : undefined;
      throw new ConfigError(name ? `bad value for parameter "${name}": ${e.message}` : e.message, where?.file, where?.line);
    }
  };

  // A loaded configuration never changes: typed values and lists are parsed once per name
  // (the queue manager and the listeners ask for some of them per message).
  const once = <T>(memo: Map<string, T>, name: string, make: () => T): T => {
    let v = memo.get(name);
    if (v === undefined) {
      v = make();
      memo.set(name, v);
    }
    return v;
  };
  const bools = new Map<string, boolean>();
  const times = new Map<string, number>();
  const ints = new Map<string, number>();
  const sizes = new Map<string, number>();
  const lists = new Map<string, readonly string[]>();
  const typed = <T>(name: string, parse: (text: string, spec: ParamSpec | undefined) => T): T => {
    const value = config.get(name);
    const spec = specOf(name);
    try {
      return parse(value, spec);
    } catch (e) {
      if (!(e instanceof ValueError)) throw e;
      const where = location(name);
      const forms = acceptedForms(spec ?? { type: 'string' });
      throw new ConfigError(`${e.message} for parameter "${name}": ${forms}`, where?.file, where?.line);
    }
  };

  const config: LoadedConfig = {
    configDir,
    hasMainCf,
    mainCfPath,
    masterCfPath,
    hasMasterCf,
    services,
    entries,
    get(name) {
      let v = cache.get(name);
      if (v === undefined) {
        const r = raw(name);
        v = r === undefined ? '' : isRawParam(name) ? r : expandOrThrow(r, name);
        cache.set(name, v);
      }
      return v;
    },
    raw,
    isSet: (name) => overrides.has(name) || entries.has(name),
    getBool: (name) => once(bools, name, () => typed(name, (t) => parseBool(t))),
    getTime: (name) => once(times, name, () => typed(name, (t, s) => parseTime(t, s?.unit ?? 's'))),
    getInt: (name) => once(ints, name, () => typed(name, (t) => parseInt10(t))),
    getSize: (name) => once(sizes, name, () => typed(name, (t) => parseSize(t))),
    getList: (name) => once(lists, name, () => Object.freeze(splitList(config.get(name)))),
    defaultText,
    knownNames: () => [...new Set([...allParamNames(), ...derived.keys()])].sort(byteOrder),
    isKnown: (name) => builtinKnown(name) || userDefined.has(name),
    spec: specOf,
    expandText: (text) => expandOrThrow(text, undefined),
    location,
  };

  // postconf: a main.cf name that some value references by $name is a user-defined parameter.
  const userDefined = new Set<string>();
  const scanRefs = (text: string, file: string, line: number | undefined, name: string, report: boolean): void => {
    let refs: string[];
    try {
      refs = references(text);
    } catch (e) {
      if (!(e instanceof ExpandError)) throw e;
      if (isRawParam(name)) return;
      throw new ConfigError(`bad value for parameter "${name}": ${e.message}`, file, line);
    }
    for (const r of refs) {
      if (builtinKnown(r)) continue;
      if (entries.has(r) || overrides.has(r)) userDefined.add(r);
      else if (report) warn(`${file}${line !== undefined ? `, line ${line}` : ''}: undefined parameter: ${r}`);
    }
  };
  for (const e of entries.values()) scanRefs(e.value, mainCfPath, e.line, e.name, true);
  for (const [n, v] of overrides) scanRefs(v, masterCfPath, undefined, n, true);
  for (const svc of services) {
    const own = new Set(svc.overrides.map(([n]) => n));
    for (const [n, v] of svc.overrides) {
      try {
        for (const r of references(v)) {
          if (builtinKnown(r) || own.has(r)) continue;
          if (entries.has(r)) userDefined.add(r);
          else warn(`${masterCfPath}, line ${svc.line}: undefined parameter: ${r}`);
        }
      } catch (e) {
        if (!(e instanceof ExpandError)) throw e;
        throw new ConfigError(`bad value for parameter "${n}" in service ${svc.name}/${svc.type}: ${e.message}`, masterCfPath, svc.line);
      }
    }
  }
  for (const n of allParamNames()) if (!entries.has(n)) scanRefs(paramSpec(n)!.defaultText, 'defaults', undefined, n, false);

  // Loops and bad syntax anywhere in an explicit value are refused now (Postfix: "macro processing error").
  for (const e of entries.values()) if (!isRawParam(e.name)) checkExpansion(e.value, e.name, mainCfPath, e.line, raw);
  for (const [n, v] of overrides) checkExpansion(v, n, masterCfPath, undefined, raw);

  for (const e of entries.values()) {
    // postconf(1): names that are neither built in nor referenced are reported as unused.
    if (!config.isKnown(e.name)) warn(`${mainCfPath}, line ${e.line}: unused parameter: ${e.name}=${e.value}`);
  }

  for (const s of services) {
    for (const [n, v] of s.overrides) {
      // postconf(1) warns about -o names that no program uses.
      if (!config.isKnown(n)) warn(`${masterCfPath}, line ${s.line}: unused parameter: ${n}=${v}`);
    }
  }

  if (opts.strictValues !== false) validateTyped(config, [...entries.keys(), ...overrides.keys()]);
  return Object.freeze(config);
}

function checkExpansion(text: string, name: string, file: string, line: number | undefined, raw: (n: string) => string | undefined): void {
  try {
    expand(text, { lookup: raw, scan: true });
  } catch (e) {
    if (!(e instanceof ExpandError)) throw e;
    throw new ConfigError(`bad value for parameter "${name}": ${e.message}`, file, line);
  }
}

function validateTyped(config: LoadedConfig, names: readonly string[]): void {
  for (const name of new Set(names)) {
    const spec = config.spec(name);
    if (!spec) continue;
    switch (spec.type) {
      case 'time':
        config.getTime(name);
        break;
      case 'bool':
        config.getBool(name);
        break;
      case 'int':
        config.getInt(name);
        break;
      case 'size':
        config.getSize(name);
        break;
      default:
        if (spec.values && !spec.values.includes(config.get(name))) {
          const where = config.location(name);
          throw new ConfigError(`bad value "${config.get(name)}" for parameter "${name}": ${acceptedForms(spec)}`, where?.file, where?.line);
        }
    }
  }
}

/**
 * One warning per obsolete parameter set in main.cf, naming its replacement
 * (DEPRECATION_README). What the old settings mean is decided by the TLS policy code.
 */
export function deprecations(config: Config): string[] {
  const loaded = config as Partial<LoadedConfig>;
  const out: string[] = [];
  for (const name of Object.keys(OBSOLETE)) {
    if (!config.isSet(name)) continue;
    const where = loaded.location?.(name);
    const prefix = where ? `${where.file}, line ${where.line}: ` : '';
    out.push(`${prefix}${deprecationWarning(name)}`);
  }
  return out;
}
