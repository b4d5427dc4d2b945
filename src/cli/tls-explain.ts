/**
 * tls-explain.ts — `sealpost tls explain [-c config_dir] [-n] [-s sender] recipient...`:
 * for each recipient, the route (Router steps: domain class, transport_maps,
 * default/relay transport, relayhost), the next hop(s), and for each next hop
 * the TLS policy as the SMTP client would decide it: every smtp_tls_policy_maps
 * key tried in every table and the entry that matched, what DANE and MTA-STS
 * said (the `_mta-sts` TXT record, the cached or fetched policy with its id
 * and expiry; per MX host the TLSA records and whether the MX and host
 * lookups were DNSSEC-secure), which source won, the effective level and
 * what it means, and the certificate names (or fingerprints) that must match.
 * It warns when a policy entry for the recipient domain exists but is never
 * consulted because mail goes to another next hop (MISSION.md trap 5: "the
 * policy table is keyed by the next hop"), and says how to fix it.
 *
 * Contract:
 * - The delivering program is the master.cf service named by the transport,
 *   and its `-o` overrides apply to its TLS parameters (as for smtp(8)
 *   running as `relay`), via scheduler/transports.ts serviceConfig().
 * - NETWORK LOOKUPS: by default it asks DNS (sealpost_dns_resolvers, else
 *   the system resolver) for the MX hosts, their TLSA records and the
 *   `_mta-sts` TXT record, and fetches an MTA-STS policy over HTTPS when the
 *   cache (read, never written: a fetched policy is shown, not stored) has
 *   none with that id — the hop step and the per-server step of delivery
 *   (delivery/tls/policy.ts decideHop, decideServer), the servers in the
 *   order delivery would try them. `-n`: no network at all (main.cf,
 *   master.cf and the tables only; the per-server step is not shown), as
 *   the status page runs it. No daemon is needed either way. Every decision
 *   is the delivery code's own; this file only prints its trace.
 * - Output is plain text on stdout, one block per recipient; warnings of the
 *   policy engine (Postfix's words) are shown inside the block. Exit 0 unless
 *   the command line or main.cf is wrong (UsageError/ConfigError).
 * - Without -s the sender is the null sender `<>` (sender_dependent_* maps
 *   are then looked up with their empty_address_*_lookup_key).
 *
 * Not here: probing servers (tls-finger: STARTTLS and certificates).
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
import { decideHop, decideServer, type HopDecision, type PolicyEnv } from '../delivery/tls/policy.ts';
import { parsePolicyEntry } from '../delivery/tls/policy-table.ts';
import type { TableEntryRef, TraceStep } from '../delivery/tls/sources/types.ts';
import type { TlsLevel, TlsPolicy } from '../delivery/tls/types.ts';
import { createResolver, type FullResolver } from '../delivery/dns/resolver.ts';
import { connectSettings, resolveHop } from '../delivery/smtp/connect.ts';
import { ReadOnlyStsCache, StsCache } from '../delivery/mta-sts/cache.ts';
import { createStsService, stsCacheDir, type StsPolicySource } from '../delivery/mta-sts/service.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

export const USAGE = 'usage: sealpost tls explain [-c config_dir] [-n] [-s sender] recipient...';

/** What the network lookups use (absent: -n, or the status page). */
export interface ExplainNetwork {
  readonly resolver: FullResolver;
  /** The MTA-STS service over a read-only cache; absent when sealpost_mta_sts = no. */
  readonly sts?: StsPolicySource;
  readonly warn: (text: string) => void;
}

/** DNS and MTA-STS as delivery would use them; a fetched policy is never stored. */
function explainNetwork(config: LoadedConfig, warnings: string[]): ExplainNetwork {
  const warn = (t: string): void => void warnings.push(t);
  const resolver = createResolver(config);
  const sts = config.getBool('sealpost_mta_sts')
    ? createStsService(config, resolver, { warn }, undefined, new ReadOnlyStsCache(new StsCache(stsCacheDir(config), warn)))
    : undefined;
  return { resolver, ...(sts ? { sts } : {}), warn };
}

export async function main(ctx: CommandContext): Promise<number> {
  if (ctx.argv[0] !== 'explain') throw new UsageError(USAGE);
  const opts = getopt(ctx.argv.slice(1), 'c:ns:', USAGE);
  if (opts.rest.length === 0) throw new UsageError(USAGE);
  const configDir = resolveConfigDir(opts.value('c'), ctx.env);
  const configWarnings: string[] = [];
  const config = loadConfig({ configDir, warn: (m) => configWarnings.push(m) });
  for (const w of configWarnings) ctx.stderr.write(`${ctx.prog}: warning: ${w}\n`);
  const tables = new TableSet({ baseDir: config.configDir, defaultType: config.get('default_database_type') || 'hash' });
  try {
    const blocks: string[] = [];
    const netWarnings: string[] = [];
    let network: ExplainNetwork | undefined;
    try {
      network = opts.has('n') ? undefined : explainNetwork(config, netWarnings);
    } catch (err) {
      // An unreadable CA file: say it, and explain without MTA-STS fetches.
      ctx.stderr.write(`${ctx.prog}: warning: ${(err as Error).message}; MTA-STS not looked up\n`);
      network = { resolver: createResolver(config), warn: (t) => void netWarnings.push(t) };
    }
    for (const recipient of opts.rest) {
      blocks.push((await explainRecipient({ config, tables, recipient, sender: opts.value('s') ?? '', ...(network ? { network } : {}) })).join('\n'));
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
  /** DNS and MTA-STS lookups (absent: tables only, no network). */
  readonly network?: ExplainNetwork;
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
  const net = input.network;
  for (const nexthop of route.nexthops) out.push(...(await explainNexthop(agentConfig, tables, nexthop, net)));
  if (route.fallbackRelays.length > 0) {
    out.push(`smtp_fallback_relay (tried when the next hops above fail): ${route.fallbackRelays.join(', ')}`);
    for (const relay of route.fallbackRelays) out.push(...(await explainNexthop(agentConfig, tables, relay, net)).map((l) => (l.startsWith('next hop:') ? `fallback ${l}` : l)));
  }
  out.push(...(await shadowWarnings(agentConfig, tables, recipient, route)));
  return out;
}

function policyEnv(config: Config, tables: TableSet, warnings: string[], net: ExplainNetwork | undefined): PolicyEnv {
  return {
    config, openTable: (spec) => tables.get(spec), warn: (w) => warnings.push(w),
    ...(net ? { resolver: net.resolver, ...(net.sts ? { sts: net.sts } : {}) } : {}),
  };
}

/** The hop step of the policy engine for one next hop, its warnings collected. */
async function hopDecision(config: Config, tables: TableSet, nexthop: string, net?: ExplainNetwork): Promise<{ decision: HopDecision; warnings: string[] }> {
  const warnings: string[] = [];
  const decision = await decideHop(policyEnv(config, tables, warnings, net), nexthop, { tlsRequiredNo: false, requireTls: false });
  return { decision, warnings };
}

/** The TLS policy for one next hop: the combiner's trace, level, names; with the network, each server's step. */
async function explainNexthop(config: Config, tables: TableSet, nexthop: string, net: ExplainNetwork | undefined): Promise<string[]> {
  const out = [`next hop: ${nexthop}`];
  const { decision, warnings } = await hopDecision(config, tables, nexthop, net);
  for (const step of decision.trace.steps) out.push(...describeStep(step, net !== undefined));
  for (const w of warnings) out.push(`  warning: ${w}`);
  out.push(...describePolicy(config, decision.policy, nexthop).map((l) => `  ${l}`));
  if (net) out.push(...(await explainServers(config, tables, decision, net)));
  return out;
}

/** The per-server step for each server delivery would try (MX order), with what DANE and MTA-STS said. */
async function explainServers(config: Config, tables: TableSet, hop: HopDecision, net: ExplainNetwork): Promise<string[]> {
  const nexthop = hop.policy.nexthop;
  const res = await resolveHop(nexthop, connectSettings(config), net.resolver);
  if (res.kind === 'fail') return [`  servers: none: ${res.reason} (delivery is ${res.dsn.startsWith('5') ? 'bounced' : 'deferred'}, dsn=${res.dsn})`];
  const out = ['  servers (the per-server step, in the order delivery tries them):'];
  for (const t of res.targets) {
    const warnings: string[] = [];
    const s = await decideServer(policyEnv(config, tables, warnings, net), hop, t);
    const secure = (b: boolean | undefined): string => (b ? 'secure' : 'insecure');
    out.push(`    ${t.hostname}[${t.address}]:${t.port}: MX RRset ${nexthop.startsWith('[') ? '(no MX lookup)' : secure(t.mxAuthenticated)}, address records ${secure(t.addressAuthenticated)}`);
    for (const step of s.trace.steps.filter((x) => x.step === 'server')) out.push(...describeServerStep(step));
    for (const w of warnings) out.push(`      warning: ${w}`);
    const v = s.verdict;
    if (v.kind === 'skip') out.push(`      NOT TRIED: ${v.reason}`);
    else if (v.kind === 'defer') out.push(`      DEFERRED: dsn=${v.deferral.dsn} (${v.deferral.reason}); the next server is tried`);
    else out.push(...serverPolicyLines(v.policy, s.trace.winner, s.trace.why));
  }
  return out;
}

/** What one source said at the server step (DANE, MTA-STS, per-site). */
function describeServerStep(step: TraceStep): string[] {
  const a = step.answer;
  const title = step.source === 'dane' ? 'DANE' : step.source === 'mta-sts' ? 'MTA-STS' : step.source === 'per-site' ? 'smtp_tls_per_site' : undefined;
  if (!title || (a.kind === 'silent' && (a.note === '' || a.note.startsWith('not asked')))) return [];
  const lines = [`      ${title}: ${a.kind === 'defer-server' ? `${a.deferral.reason} (${a.note})` : a.note}`];
  if (a.kind === 'published' && a.published.kind === 'tlsa') for (const r of a.published.report.strings) lines.push(`        TLSA ${r}`);
  if (a.kind === 'published' && a.published.kind === 'dane-fallback' && a.published.report) for (const r of a.published.report.strings) lines.push(`        TLSA ${r} (unusable)`);
  return lines;
}

/** A connectable server policy: level, winner and why, SNI. */
function serverPolicyLines(p: TlsPolicy, winner: string, why: string): string[] {
  if (p.level === 'invalid') return [`      DEFERRED: ${p.invalid.reason}`];
  const configured = p.configuredLevel && p.configuredLevel !== p.level ? `${p.configuredLevel}, effective ` : '';
  const lines = [`      level: ${configured}${p.level} (from ${p.source}; source ${winner})`, `      why: ${why}`];
  if (p.dane) lines.push(`      DANE: the certificate must match a TLSA record; SNI ${p.dane.baseDomain}${p.dane.halfdane ? ' (halfdane: MX RRset insecure)' : ''}`);
  if (p.sts) lines.push(`      MTA-STS (mode ${p.sts.mode}): TLS 1.2 or later and a certificate valid for ${p.sts.mxHost} (SNI ${p.sts.mxHost})${p.sts.mode === 'testing' ? ', checked and recorded, not enforced' : ''}`);
  else if (p.level === 'verify' || p.level === 'secure') lines.push(`      certificate names: ${p.match.join(', ')}`);
  return lines;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The MTA-STS source's hop answer: the TXT record and the policy, or why there is none. */
function describeSts(a: TraceStep['answer'], online: boolean): string[] {
  if (a.kind === 'silent') return [`  MTA-STS: ${!online && a.note.startsWith('not looked up') ? 'not looked up (-n: no network)' : a.note}`];
  if (a.kind === 'invalid') return [`  MTA-STS: LOOKUP ERROR: ${a.note} (mail is deferred: ${a.deferral.reason})`];
  if (a.kind !== 'published' || a.published.kind !== 'sts-policy') return [`  MTA-STS: ${a.note}`];
  const { policy: p, from, txt } = a.published;
  return [
    `  MTA-STS: policy of ${p.domain} (${from === 'cache' ? 'from the cache' : 'fetched now; not stored'}):`,
    ...(txt ? [`    TXT _mta-sts.${p.domain}: "${txt}"`] : []),
    `    id ${p.id}, mode ${p.mode}, max_age ${p.maxAge}, fetched ${iso(p.fetchedAt)}, expires ${iso(p.expiresAt)}`,
    ...p.lines.map((l) => `    | ${l}`),
  ];
}

/** The trace lines of one source's answer (the main.cf level shows in the `level:` line; TLS-Required: No is never set here). */
function describeStep(step: TraceStep, online: boolean): string[] {
  const a = step.answer;
  if (step.source === 'mta-sts') return describeSts(a, online);
  if (step.source === 'dane') return [];
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
  dane: 'opportunistic DANE: usable TLSA records authenticate the server (without them: the domain\'s MTA-STS policy, else may)',
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
  const level = configured && configured !== policy.level
    ? `${configured} (effective ${policy.level} before the MX hosts are known; with smtp_dns_support_level = dnssec, TLSA records decide per MX host)` : policy.level;
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
