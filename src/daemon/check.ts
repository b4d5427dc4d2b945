/**
 * check.ts — validate a configuration the way the daemon will use it: main.cf,
 * master.cf, the per-service `-o` overrides, the listener endpoints, every
 * lookup table the configuration names, and (for `sealpost check`) the queue
 * and data directories. `postfix check` plus the table checks Postfix only
 * does when a daemon first opens a table.
 *
 * Contract:
 * - `checkConfiguration()` never throws for a configuration problem: it
 *   returns a CheckReport with one-line `errors` (file, line, parameter, what
 *   to do) and `warnings`. The daemon refuses to start, and a reload is
 *   refused, when `errors` is not empty; the first error is the one shown.
 * - Tables are those named by explicitly set `*_maps` and `*_checks`
 *   parameters (main.cf or a master.cf `-o`), and the `type:name` entries of
 *   `mynetworks`, `relay_domains` and `permit_mx_backup_networks`. Each is
 *   opened and closed again; opening is what finds a missing, unreadable or
 *   corrupt file, an unknown type or a pattern that does not compile.
 * - Each smtpd service gets its own Config through
 *   loadConfig({configDir, overrides}) (master.cf `-o` wins over main.cf).
 *
 * - Each smtpd service's settings are built as the listener builds them
 *   (intake/smtpd/settings.ts), so what it would refuse is found here.
 * - Each delivery service the queue manager runs (master.cf `unix` services
 *   with command smtp, error or discard: scheduler/transports.ts) gets its
 *   Config the same way (`$service_name` in `-o` values is the service name),
 *   so a bad `-o` on `relay` refuses the start or the reload; tables named in
 *   its `-o` overrides are checked too. Other unix services (Postfix's
 *   pickup, cleanup, qmgr ...) are built in and ignored.
 *
 * - The TLS checks (check-tls.ts): an unknown smtp_tls_security_level is an
 *   error (a start or reload is refused); policy table entries smtp(8) would
 *   refuse, and entries the relayhost trap hides, are warnings.
 *
 * Not here: starting anything (main.ts), tables inside restriction lists
 * (`check_*_access type:name`): those are opened by the listener.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { deprecations, loadConfig, type LoadedConfig } from '../config/load.ts';
import type { MasterService } from '../config/master-cf.ts';
import { describeError, UserError } from '../lib/errors.ts';
import { openTable, tableType } from '../maps/registry.ts';
import { smtpdSettings } from '../intake/smtpd/settings.ts';
import { agentKind, serviceConfig } from '../scheduler/transports.ts';
import { serviceEndpoints, type Endpoint } from './services.ts';
import { checkTls } from './check-tls.ts';
import { parseNexthop } from '../maps/domain-walk.ts';
import { splitNexthops } from '../scheduler/resolve.ts';
import { isNotFound } from '../lib/fs-errors.ts';

export interface ServicePlan {
  readonly service: MasterService;
  readonly config: LoadedConfig;
}

export interface TableCheck {
  readonly spec: string;
  /** Where it is named: `smtp_tls_policy_maps` or `smtp: smtp_tls_policy_maps` (a -o override). */
  readonly usedBy: string[];
  readonly error?: string;
}

export interface DirectoryCheck {
  readonly param: string;
  readonly path: string;
  readonly state: 'ok' | 'missing' | 'error';
}

export interface CheckReport {
  readonly configDir: string;
  readonly config: LoadedConfig | undefined;
  readonly errors: string[];
  readonly warnings: string[];
  readonly services: ServicePlan[];
  readonly endpoints: Endpoint[];
  readonly tables: TableCheck[];
  readonly directories: DirectoryCheck[];
}

export interface CheckOptions {
  /** Also check queue_directory and data_directory (`sealpost check`). */
  readonly directories?: boolean;
}

/** Parameters that name tables by their name's shape. */
function isTableParam(name: string): boolean {
  return /_maps$/.test(name) || /_checks$/.test(name);
}

/** Lists whose type:name entries are tables (the rest are networks or domains). */
const MIXED_LISTS = ['mynetworks', 'relay_domains', 'permit_mx_backup_networks'];

/** A list entry that is a table: `type:name` with a type sealpost knows, or a non-hex type word. */
export function looksLikeTable(entry: string): boolean {
  const m = /^([A-Za-z][A-Za-z0-9_-]*):./.exec(entry);
  if (!m) return false;
  return tableType(m[1]!) !== undefined || !/^[0-9a-f]+$/i.test(m[1]!);
}

function prefixed(err: unknown, prefix: string): string {
  const { message } = describeError(err);
  return message.includes(', line ') ? message : `${prefix}${message}`;
}

function loadServices(main: LoadedConfig, report: CheckReport): void {
  for (const s of main.services) {
    if (agentKind(s) !== undefined) {
      try {
        report.services.push({ service: s, config: serviceConfig(main, s) });
      } catch (err) {
        report.errors.push(prefixed(err, `${main.masterCfPath}, line ${s.line}: service "${s.name}": `));
      }
      continue;
    }
    if (s.type !== 'inet' || s.command !== 'smtpd') continue;
    try {
      const config = s.overrides.length === 0 ? main : loadConfig({ configDir: main.configDir, overrides: Object.fromEntries(s.overrides) });
      // What the listener would refuse (TLS without a certificate, an open relay ...), found before it runs.
      const settings = smtpdSettings(config);
      for (const w of settings.warnings) report.warnings.push(`service "${s.name}": ${w}`);
      report.services.push({ service: s, config });
    } catch (err) {
      report.errors.push(prefixed(err, `${main.masterCfPath}, line ${s.line}: service "${s.name}": `));
    }
  }
}

function addTable(tables: Map<string, string[]>, spec: string, usedBy: string): void {
  const list = tables.get(spec) ?? [];
  if (!list.includes(usedBy)) list.push(usedBy);
  tables.set(spec, list);
}

function collectTables(main: LoadedConfig, plans: readonly ServicePlan[], errors: string[]): Map<string, string[]> {
  const tables = new Map<string, string[]>();
  const collect = (config: LoadedConfig, name: string, label: string): void => {
    let list: readonly string[];
    try {
      list = config.getList(name);
    } catch (err) {
      errors.push(describeError(err).message);
      return;
    }
    const mixed = MIXED_LISTS.includes(name);
    for (const entry of list) if (!mixed || looksLikeTable(entry)) addTable(tables, entry, label);
  };
  for (const name of main.entries.keys()) if (isTableParam(name) || MIXED_LISTS.includes(name)) collect(main, name, name);
  for (const name of MIXED_LISTS) if (!main.isSet(name)) collect(main, name, name);
  for (const plan of plans) {
    for (const [name] of plan.service.overrides) {
      if (isTableParam(name) || MIXED_LISTS.includes(name)) collect(plan.config, name, `${plan.service.name}: ${name}`);
    }
  }
  return tables;
}

async function checkTable(main: LoadedConfig, spec: string, usedBy: string[], warnings: string[]): Promise<TableCheck> {
  const where = (): string => {
    const loc = main.location(usedBy[0]!.replace(/^.*: /, ''));
    return loc ? `${loc.file}, line ${loc.line}: ` : '';
  };
  try {
    const table = await openTable(spec, {
      baseDir: main.configDir,
      defaultType: main.get('default_database_type') || 'hash',
      warn: (m) => warnings.push(`${spec}: ${m}`),
    });
    await table.close();
    return { spec, usedBy };
  } catch (err) {
    return { spec, usedBy, error: `${where()}${usedBy[0]}: ${describeError(err).message}` };
  }
}

function checkDirectory(param: string, path: string, report: CheckReport): void {
  let state: DirectoryCheck['state'] = 'ok';
  try {
    if (!statSync(path).isDirectory()) {
      report.errors.push(`${param} ${path} is not a directory: point ${param} in main.cf at a directory`);
      state = 'error';
    } else {
      accessSync(path, constants.W_OK | constants.X_OK);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (isNotFound(err)) {
      state = 'missing';
      try {
        accessSync(nearestExisting(path), constants.W_OK);
        report.warnings.push(`${param} ${path} does not exist yet: "sealpost start" creates it`);
      } catch {
        state = 'error';
        report.errors.push(`${param} ${path} does not exist and cannot be created here: create it, or run as a user that may`);
      }
    } else if (state === 'ok') {
      state = 'error';
      report.errors.push(`cannot write to ${param} ${path}: ${code ?? String(err)}: fix its permissions or run sealpost as its owner`);
    }
  }
  report.directories.push({ param, path, state });
}

function nearestExisting(path: string): string {
  let p = dirname(path);
  for (;;) {
    try {
      statSync(p);
      return p;
    } catch {
      const up = dirname(p);
      if (up === p) return p;
      p = up;
    }
  }
}

/** Validate everything the daemon would use from `configDir`; see the header. */
export async function checkConfiguration(configDir: string, opts: CheckOptions = {}): Promise<CheckReport> {
  const report: CheckReport = { configDir, config: undefined, errors: [], warnings: [], services: [], endpoints: [], tables: [], directories: [] };
  let main: LoadedConfig;
  try {
    main = loadConfig({ configDir, warn: (m) => report.warnings.push(m) });
  } catch (err) {
    report.errors.push(describeError(err).message);
    return report;
  }
  (report as { config: LoadedConfig | undefined }).config = main;
  report.warnings.push(...deprecations(main));
  loadServices(main, report);
  try {
    const { endpoints, warnings } = serviceEndpoints(
      main.services,
      { interfaces: main.getList('inet_interfaces'), protocols: main.getList('inet_protocols') },
      main.masterCfPath,
    );
    report.endpoints.push(...endpoints);
    report.warnings.push(...warnings);
  } catch (err) {
    report.errors.push(describeError(err).message);
  }
  const tables = collectTables(main, report.services, report.errors);
  const checks = await Promise.all([...tables].map(([spec, usedBy]) => checkTable(main, spec, usedBy, report.warnings)));
  for (const t of checks) {
    report.tables.push(t);
    if (t.error) report.errors.push(t.error);
  }
  report.warnings.push(...nexthopWarnings(main));
  // The TLS level, every policy table entry, the relayhost trap (check-tls.ts).
  const smtpPlans = report.services.filter((p) => agentKind(p.service) === 'smtp').map((p) => ({ service: { name: p.service.name, line: p.service.line }, config: p.config }));
  const tls = await checkTls(main, smtpPlans);
  report.errors.push(...tls.errors);
  report.warnings.push(...tls.warnings);
  if (opts.directories) {
    checkDirectory('queue_directory', main.get('queue_directory'), report);
    checkDirectory('data_directory', main.get('data_directory'), report);
  }
  return report;
}

/**
 * `relayhost`, `smtp_fallback_relay` and `default_transport`/`relay_transport` next hops the SMTP client could not parse (an unclosed
 * `[`, a port out of range ...): every delivery through them would be deferred. Warnings, as
 * Postfix does not check them before smtp(8) meets them; the line names the file and the fix.
 */
function nexthopWarnings(main: LoadedConfig): string[] {
  const out: string[] = [];
  const check = (param: string, hops: readonly string[]): void => {
    for (const hop of hops) {
      try {
        parseNexthop(hop);
      } catch (err) {
        const line = main.entries.get(param)?.line;
        const where = line !== undefined ? `${main.mainCfPath}, line ${line}: ` : '';
        out.push(`${where}${param}: ${(err as Error).message}; mail for it will be deferred until this is fixed`);
      }
    }
  };
  check('relayhost', splitNexthops(main.get('relayhost')));
  check('smtp_fallback_relay', splitNexthops(main.get('smtp_fallback_relay')));
  // `transport:nexthop` in default_transport and relay_transport, when the transport is an SMTP client.
  for (const param of ['default_transport', 'relay_transport']) {
    const value = main.get(param).trim();
    const colon = value.indexOf(':');
    if (colon < 0 || colon === value.length - 1) continue;
    const service = main.services.find((sv) => sv.name === value.slice(0, colon) && sv.type === 'unix');
    if (service && agentKind(service) === 'smtp') check(param, splitNexthops(value.slice(colon + 1)));
  }
  return out;
}

/** The first error as a UserError (exit 1), or undefined when the report is clean. */
export function firstError(report: CheckReport): UserError | undefined {
  const e = report.errors[0];
  if (e === undefined) return undefined;
  const more = report.errors.length > 1 ? ` (and ${report.errors.length - 1} more: run "sealpost check")` : '';
  return new UserError(e + more, 1);
}
