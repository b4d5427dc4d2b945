/**
 * tls-explain.ts — `sealpost tls explain [-c config_dir] [-s sender] recipient...`:
 * for each recipient, the route (Router steps: domain class, transport_maps,
 * default/relay transport, relayhost), the next hop(s), and for each next hop
 * the TLS policy as the SMTP client would decide it: every smtp_tls_policy_maps
 * key tried in every table and the entry that matched, the effective level and
 * what it means, and the certificate names (or fingerprints) that must match.
 * It warns when a policy entry for the recipient domain exists but is never
 * consulted because mail goes to another next hop (MISSION.md trap 5: "the
 * policy table is keyed by the next hop"), and says how to fix it.
 *
 * Contract:
 * - The delivering program is the master.cf service named by the transport,
 *   and its `-o` overrides apply to its TLS parameters (as for smtp(8)
 *   running as `relay`), via scheduler/transports.ts serviceConfig().
 * - No network and no daemon: it reads main.cf, master.cf and the tables. Every
 *   decision is the delivery code's own (scheduler/resolve.ts, the hop step of
 *   delivery/tls/policy.ts decideHop); this file only prints its trace. The
 *   per-server step needs the MX list and is not shown.
 * - Output is plain text on stdout, one block per recipient; warnings of the
 *   policy engine (Postfix's words) are shown inside the block. Exit 0 unless
 *   the command line or main.cf is wrong (UsageError/ConfigError).
 * - Without -s the sender is the null sender `<>` (sender_dependent_* maps
 *   are then looked up with their empty_address_*_lookup_key).
 *
 * Not here: probing servers (tls-finger), DANE TLSA and MTA-STS lookups
 * (a `dane` level is shown as the engine decides it without TLSA).
 */
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import type { Config } from '../config/types.ts';
import { EX, UsageError } from '../lib/errors.ts';
import { TableSet } from '../maps/registry.ts';
import { parseNexthop } from '../maps/domain-walk.ts';
import { splitOutsideBraces } from '../maps/braces.ts';
import { Router, TEXT_TRANSPORTS, type Route } from '../scheduler/resolve.ts';
import { findRelayhostTrap } from '../scheduler/relayhost-trap.ts';
import { agentKind, serviceConfig } from '../scheduler/transports.ts';
import { levelRank } from '../delivery/tls/level.ts';
import { decideHop, type HopDecision } from '../delivery/tls/policy.ts';
import { parsePolicyEntry } from '../delivery/tls/policy-table.ts';
import type { TableEntryRef, TraceStep } from '../delivery/tls/sources/types.ts';
import type { TlsLevel, TlsPolicy } from '../delivery/tls/types.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

const USAGE = 'usage: sealpost tls explain [-c config_dir] [-s sender] recipient...';

export async function main(ctx: CommandContext): Promise<number> {
  if (ctx.argv[0] !== 'explain') throw new UsageError(USAGE);
  const opts = getopt(ctx.argv.slice(1), 'c:s:', USAGE);
  if (opts.rest.length === 0) throw new UsageError(USAGE);
  const configDir = resolveConfigDir(opts.value('c'), ctx.env);
  const configWarnings: string[] = [];
  const config = loadConfig({ configDir, warn: (m) => configWarnings.push(m) });
  for (const w of configWarnings) ctx.stderr.write(`${ctx.prog}: warning: ${w}\n`);
  const tables = new TableSet({ baseDir: config.configDir, defaultType: config.get('default_database_type') || 'hash' });
  try {
    const blocks: string[] = [];
    for (const recipient of opts.rest) {
      blocks.push((await explainRecipient({ config, tables, recipient, sender: opts.value('s') ?? '' })).join('\n'));
    }
    ctx.stdout.write(blocks.join('\n\n') + '\n');
  } finally {
    await tables.close();
  }
  return EX.OK;
}

export interface ExplainInput {
  readonly config: LoadedConfig;
  readonly tables: TableSet;
  readonly recipient: string;
  readonly sender: string;
}

/** The report for one recipient, as lines. */
export async function explainRecipient(input: ExplainInput): Promise<string[]> {
  const { config, tables, recipient, sender } = input;
  const out: string[] = [`recipient: <${recipient}>`, `sender: <${sender}>`];
  const route = await new Router({ config, tables }).resolve(recipient, sender);
  out.push('route:');
  for (const s of route.steps) out.push(`  ${s.what}: ${s.detail}`);
  if (route.kind !== 'deliver') {
    out.push(`result: ${route.kind === 'bounce' ? 'bounced' : 'deferred'}, dsn=${route.dsn} (${route.reason})`);
    return out;
  }
  out.push(`transport: ${route.transport}`);
  // master.cf decides which program delivers, and its -o overrides are that program's main.cf.
  const service = config.services.find((s) => s.name === route.transport && s.type === 'unix');
  if (!service) {
    out.push(`no master.cf service "${route.transport}": mail would wait in the queue until one is defined`);
    return out;
  }
  const kind = agentKind(service);
  if (kind !== 'smtp' || TEXT_TRANSPORTS.has(route.transport)) {
    const action = kind === 'discard' ? 'discards the mail' : kind === 'retry' ? 'defers the mail' : kind === 'error' ? 'bounces the mail' : `runs "${service.command}", which sealpost does not have`;
    out.push(`no connection: master.cf service ${route.transport} ${action}${kind ? ` with "${route.nexthops[0] ?? ''}"` : ''}`);
    return out;
  }
  const tlsOverrides = service.overrides.filter(([name]) => /tls/.test(name));
  if (tlsOverrides.length > 0) {
    out.push(`master.cf service ${service.name} (line ${service.line}) overrides: ${tlsOverrides.map(([n, v]) => `-o ${n}=${v}`).join(' ')}`);
  }
  const agentConfig = serviceConfig(config, service);
  for (const nexthop of route.nexthops) out.push(...(await explainNexthop(agentConfig, tables, nexthop)));
  if (route.fallbackRelays.length > 0) {
    out.push(`smtp_fallback_relay (tried when the next hops above fail): ${route.fallbackRelays.join(', ')}`);
    for (const relay of route.fallbackRelays) out.push(...(await explainNexthop(agentConfig, tables, relay)).map((l) => (l.startsWith('next hop:') ? `fallback ${l}` : l)));
  }
  out.push(...(await shadowWarnings(agentConfig, tables, recipient, route)));
  return out;
}

/** The hop step of the policy engine for one next hop, its warnings collected. */
async function hopDecision(config: Config, tables: TableSet, nexthop: string): Promise<{ decision: HopDecision; warnings: string[] }> {
  const warnings: string[] = [];
  const decision = await decideHop({ config, openTable: (spec) => tables.get(spec), warn: (w) => warnings.push(w) }, nexthop, { tlsRequiredNo: false, requireTls: false });
  return { decision, warnings };
}

/** The TLS policy for one next hop: the combiner's trace, level, names. */
async function explainNexthop(config: Config, tables: TableSet, nexthop: string): Promise<string[]> {
  const out = [`next hop: ${nexthop}`];
  const { decision, warnings } = await hopDecision(config, tables, nexthop);
  for (const step of decision.trace.steps) out.push(...describeStep(step));
  for (const w of warnings) out.push(`  warning: ${w}`);
  out.push(...describePolicy(config, decision.policy, nexthop).map((l) => `  ${l}`));
  return out;
}

/** The trace lines of one source's answer (the main.cf level shows in the `level:` line; TLS-Required: No is never set here). */
function describeStep(step: TraceStep): string[] {
  const a = step.answer;
  const title = step.source === 'table' ? 'smtp_tls_policy_maps' : step.source === 'per-site' ? 'smtp_tls_per_site' : undefined;
  if (!title) return [];
  if (a.kind === 'silent' && a.note === '(empty)') return step.source === 'table' ? [`  ${title}: (empty)`] : [];
  const lines = [`  ${title}:`];
  if (step.source === 'per-site') return [...lines, `    ${a.note}`];
  const tried = a.tried ?? [];
  if (tried.length === 0) return [...lines, `    ${a.note}`];
  tried.forEach((t, i) => {
    let what = 'not found';
    if (i === tried.length - 1 && a.kind === 'invalid' && !a.tableEntry) {
      what = `LOOKUP ERROR: ${a.note.replace(/^lookup error: /, '')} (mail is deferred: ${a.deferral.reason})`;
    } else if (i === tried.length - 1 && (a.kind === 'demand' || a.kind === 'invalid') && a.tableEntry) {
      what = `found: "${a.tableEntry.value}"`;
    }
    lines.push(`    ${t.table}: key "${t.key}": ${what}`);
  });
  if (a.kind === 'silent') lines.push('    no entry matched: the main.cf default applies');
  return lines;
}

const LEVEL_MEANING: Readonly<Record<string, string>> = {
  none: 'no TLS: mail is sent in plaintext',
  may: 'opportunistic: STARTTLS when the server offers it, otherwise plaintext; the certificate is not checked',
  encrypt: 'mandatory encryption: a server without STARTTLS gets no mail (deferred); the certificate is not checked',
  fingerprint: 'mandatory TLS: the certificate (or public key) fingerprint must match; no CA check',
  dane: 'opportunistic DANE: TLSA records decide (without usable TLSA: may)',
  'dane-only': 'mandatory DANE: usable TLSA records must exist and match',
  verify: 'mandatory TLS: the certificate must be CA-verified and name one of the names below',
  secure: 'mandatory TLS: the certificate must be CA-verified and name one of the names below (names from the next hop, safe against DNS forgery)',
};

function describePolicy(config: Config, policy: TlsPolicy, nexthop: string): string[] {
  const from = policy.matchedEntry ? `${policy.matchedEntry.table} entry "${policy.matchedEntry.key}"` : policy.source;
  if (policy.level === 'invalid') {
    return [`level: INVALID (from ${from})`, `effect: every delivery to ${nexthop} is deferred: dsn=${policy.invalid.dsn} (${policy.invalid.reason}); never sent in plaintext`];
  }
  const configured = policy.configuredLevel;
  const level = configured && configured !== policy.level ? `${configured} (effective ${policy.level}: sealpost has no TLSA lookups yet)` : policy.level;
  const lines = [`level: ${level} (from ${from})`, `meaning: ${LEVEL_MEANING[policy.level] ?? policy.level}`];
  if (policy.level === 'fingerprint') {
    lines.push(`certificate fingerprints (${config.get('smtp_tls_fingerprint_digest')}) that must match:`);
    for (const f of policy.match) lines.push(`  ${f}`);
  } else if (policy.level === 'verify' || policy.level === 'secure') {
    const param = policy.level === 'verify' ? 'smtp_tls_verify_cert_match' : 'smtp_tls_secure_cert_match';
    const origin = policy.matchedEntry && /(^|[\s,])match=/.test(policy.matchedEntry.value) ? 'match= of the policy entry' : param;
    lines.push(`certificate names that must match (${origin}):`);
    for (const m of policy.match) lines.push(`  ${m.padEnd(12)} ${describeMatch(m, nexthop, policy.nexthopDomain)}`);
    lines.push('wildcards count only as the whole leftmost label (*.example.com matches mx.example.com, not a.mx.example.com)');
  }
  if (policy.servername) lines.push(`SNI: ${policy.servername}`);
  return lines;
}

/** What one smtp_tls_*_cert_match item means for this next hop. */
export function describeMatch(item: string, nexthop: string, domain: string): string {
  const d = domain.toLowerCase();
  let bracketed = false;
  try {
    bracketed = parseNexthop(nexthop).bracketed;
  } catch {
    bracketed = false;
  }
  switch (item.toLowerCase()) {
    case 'hostname':
      return bracketed ? `${d} (the server name of the [host] next hop)` : `the MX host name of each server of ${d}, as found in DNS (not DNSSEC-protected: prefer secure)`;
    case 'nexthop':
      return d;
    case 'dot-nexthop':
      return `any name under .${d} (e.g. mx.${d})`;
    default:
      return item.startsWith('.') ? `any name under ${item.toLowerCase()}` : item.toLowerCase();
  }
}

/** The smtp_tls_policy_maps entry the hop step found for `nexthop`, if any. */
async function tableEntryFor(config: Config, tables: TableSet, nexthop: string): Promise<TableEntryRef | undefined> {
  const { decision } = await hopDecision(config, tables, nexthop);
  const step = decision.trace.steps.find((s) => s.source === 'table');
  return step && (step.answer.kind === 'demand' || step.answer.kind === 'invalid') ? step.answer.tableEntry : undefined;
}

/**
 * MISSION.md trap 5: an smtp_tls_policy_maps entry for the recipient domain
 * (or a `.parent` of it) is only consulted when the next hop IS that domain.
 */
async function shadowWarnings(config: Config, tables: TableSet, recipient: string, route: Extract<Route, { kind: 'deliver' }>): Promise<string[]> {
  const at = recipient.lastIndexOf('@');
  if (at < 0) return [];
  const domain = recipient.slice(at + 1).toLowerCase();
  // The detection is shared with `sealpost check` (scheduler/relayhost-trap.ts).
  const trap = await findRelayhostTrap(config, tables, domain, route);
  if (!trap) return [];
  const { entry: walked, via } = trap;
  const hop = route.nexthops[0]!;
  const out = [
    `WARNING: ${walked.table} has the entry "${walked.key} ${walked.value}", but it is never consulted for <${recipient}>:`,
    `  the TLS policy table is keyed by the next hop, and mail for ${domain} goes to ${route.nexthops.join(', ')} (${via}).`,
  ];
  if (via === 'relayhost' || via === 'sender_dependent_relayhost_maps') {
    out.push(`  fix: route ${domain} directly with transport_maps: add "${domain}  smtp:" to the transport table (postmap it, then sealpost reload);`);
    out.push(`       the next hop becomes ${domain}, found by MX lookup (needs outbound port 25), and the entry applies.`);
  } else {
    out.push(`  fix: change the transport_maps entry so that the next hop is ${domain} ("${domain}  smtp:"),`);
  }
  const own = await tableEntryFor(config, tables, hop);
  const suggestion = suggestHopEntry(walked.value, own?.value);
  if (own) {
    out.push(suggestion
      ? `  or: make the next hop's own entry "${own.key} ${own.value}" as strict as you need (e.g. "${own.key}  ${suggestion}").`
      : `  or: keep the next hop's own entry "${own.key} ${own.value}": it already demands at least what "${walked.key} ${walked.value}" asks for.`);
  } else {
    out.push(`  or: give the next hop its own policy entry, e.g. "${hop}  ${suggestion ?? walked.value}" in ${walked.table}.`);
  }
  return out;
}

/** Attributes that name the destination's own servers: never copied onto another next hop's entry. */
const SERVER_ATTRIBUTES = new Set(['match', 'servername', 'tafile']);
/** Levels whose match= lists certificate names (fingerprint lists digests). */
const NAME_LEVELS = new Set<TlsLevel>(['verify', 'secure']);

/**
 * The policy value to suggest for the next hop that mail for a recipient
 * domain really goes to: the stronger of the recipient entry's level and the
 * next hop's own entry (never weaker than the entry it replaces), the own
 * entry's attributes kept where they still mean the same, the recipient
 * entry's match=/servername=/tafile= never copied (they name the
 * recipient's servers), no match name listed twice. Undefined when the own
 * entry already demands at least as much. A recipient `fingerprint` entry
 * becomes `secure` (its digests are of the recipient's certificates).
 */
export function suggestHopEntry(recipientValue: string, ownValue?: string): string | undefined {
  const want = parsePolicyEntry(recipientValue);
  if (!want.ok) return undefined;
  const own = ownValue !== undefined ? parsePolicyEntry(ownValue) : undefined;
  const ownLevel = own?.ok ? own.entry.level : undefined;
  const level: TlsLevel = want.entry.level === 'fingerprint' ? 'secure' : want.entry.level;
  // Never weaker than the entry it replaces: an own entry at least as strong needs no change.
  if (ownLevel !== undefined && levelRank(ownLevel) >= levelRank(level)) return undefined;
  const keepNames = ownLevel !== undefined && NAME_LEVELS.has(ownLevel) && NAME_LEVELS.has(level);
  const attrs = ownValue === undefined || ownLevel === 'none' ? [] : splitOutsideBraces(ownValue).slice(1)
    .filter((tok) => {
      const name = tok.split('=')[0]!.trim().toLowerCase();
      return !SERVER_ATTRIBUTES.has(name) || keepNames;
    })
    .map((tok) => (/^match\s*=/i.test(tok) ? dedupeMatch(tok) : tok));
  const value = [level, ...attrs].join(' ');
  return parsePolicyEntry(value).ok ? value : level;
}

/** `match=a:b:a` → `match=a:b` (names are compared case-insensitively). */
function dedupeMatch(tok: string): string {
  const eq = tok.indexOf('=');
  const sep = tok.includes('|') ? '|' : ':';
  const seen = new Set<string>();
  const names = tok.slice(eq + 1).split(sep).filter((n) => {
    const k = n.trim().toLowerCase();
    if (k === '' || seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return `${tok.slice(0, eq + 1)}${names.join(sep)}`;
}
