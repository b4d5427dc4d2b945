/**
 * params.ts — the one registry of configuration parameters: every Postfix
 * name with its default text and value type, plus the sealpost_* parameters.
 *
 * How it is built (docs/parameters.md):
 *   1. postfix-defaults.ts, generated from Postfix 3.7 by scripts/gen-params.ts;
 *   2. POSTFIX_3_8_TO_3_11 below: the defaults that changed or appeared in
 *      Postfix 3.8–3.11 that sealpost follows (the contract is Postfix 3.11);
 *   3. SEALPOST_PARAMS: parameters only sealpost has (prefix `sealpost_`);
 *   4. systemDefault(): values Postfix computes at run time (host name, paths,
 *      the running user), computed the sealpost way.
 * Types come from explicit declarations (DECLARED) for the parameters sealpost
 * uses, else are inferred from the default text where that is unambiguous
 * (`yes`/`no` → boolean, `5d` → time with unit d, digits → integer/size).
 *
 * Contract: lookups are lazy (the maps are built on first use) and immutable.
 * Value parsers (parseTime, parseBool, ...) are pure and throw ValueError with
 * the accepted forms; load.ts adds the file, line and parameter.
 *
 * Not here: reading main.cf (load.ts), expansion (expand.ts).
 */
import { hostname, networkInterfaces } from 'node:os';
import { POSTFIX_DEFAULTS } from './postfix-defaults.ts';

export const SEALPOST_VERSION = '0.1.0';
export const SEALPOST_RELEASE_DATE = '20261128';

export type ParamType = 'time' | 'size' | 'bool' | 'int' | 'list' | 'string';
export type TimeUnit = 's' | 'm' | 'h' | 'd' | 'w';

export interface ParamSpec {
  readonly name: string;
  /** Default text exactly as `postconf -d` prints it (may hold $name and ${{...}}). */
  readonly defaultText: string;
  readonly type: ParamType;
  /** Time parameters: the unit a bare number is in. */
  readonly unit?: TimeUnit;
  /** Accepted values for enumerated string parameters. */
  readonly values?: readonly string[];
  readonly origin: 'postfix-3.7' | 'postfix-3.8+' | 'sealpost';
  /** Obsolete: the setting to use instead. */
  readonly replacement?: string;
}

/**
 * Postfix 3.8–3.11 default changes and new parameters (postconf(5), RELEASE_NOTES-3.9..3.11,
 * mail_params.h). Each entry replaces or adds the 3.7 default text.
 */
export const POSTFIX_3_8_TO_3_11: Readonly<Record<string, string>> = {
  // 3.11: opportunistic TLS by default at compatibility_level ≥ 3.11 (TLS_README "compatibility").
  smtp_tls_security_level: '${{$compatibility_level} <level {3.11} ? {} : {may}}',
  lmtp_tls_security_level: '${{$compatibility_level} <level {3.11} ? {} : {may}}',
  // 3.9: SMTP smuggling defence on by default (postconf(5) smtpd_forbid_bare_newline).
  smtpd_forbid_bare_newline: 'normalize',
  // 3.9: smtpd_forbid_unauth_pipelining default yes.
  smtpd_forbid_unauth_pipelining: 'yes',
  // 3.6.17/3.7.13+: DANE for insecure MX with secure TLSA (postconf(5)).
  smtp_tls_dane_insecure_mx_policy: 'dane',
  lmtp_tls_dane_insecure_mx_policy: 'dane',
  // 3.9: RFC 7250 raw public keys.
  smtp_tls_enable_rpk: 'no',
  lmtp_tls_enable_rpk: 'no',
  smtpd_tls_enable_rpk: 'no',
  // 3.10: TLSRPT event export; 3.11 flips skip_reused_handshakes with the compatibility level.
  smtp_tlsrpt_enable: 'no',
  lmtp_tlsrpt_enable: 'no',
  smtp_tlsrpt_socket_name: '',
  lmtp_tlsrpt_socket_name: '',
  smtp_tlsrpt_skip_reused_handshakes: '${{$compatibility_level} <level {3.11} ? {yes} : {no}}',
  lmtp_tlsrpt_skip_reused_handshakes: '${{$compatibility_level} <level {3.11} ? {yes} : {no}}',
  // 3.10.5: MTA-STS mx patterns enforced.
  smtp_tls_enforce_sts_mx_patterns: 'yes',
  lmtp_tls_enforce_sts_mx_patterns: 'yes',
  // 3.11: tls= feature status on delivery log lines.
  smtp_log_tls_feature_status: 'yes',
  lmtp_log_tls_feature_status: 'yes',
  // 3.11: REQUIRETLS (RFC 8689) and TLS-Required: No (REQUIRETLS_README, mail_params.h).
  requiretls_enable: 'yes',
  tls_required_enable: 'yes',
  // mail_params.h DEF_SMTP_REQTLS_POLICY (3.11-20251114 and later): internal destinations
  // opportunistic, everything else enforce.
  smtp_requiretls_policy:
    'inline:{{${domain_to_ascii{$mydomain}}=opportunistic}, {.${domain_to_ascii{$mydomain}}=opportunistic}, {localhost=opportunistic}}, cidr:{{0.0.0.0/0 opportunistic}, {::/0 opportunistic}}, enforce',
  lmtp_requiretls_policy: 'opportunistic',
  requiretls_redact_dsn: 'yes',
  requiretls_esmtp_header: 'yes',
  // 3.10: client privacy.
  smtpd_hide_client_session: 'no',
};

/**
 * Postfix parameters whose default sealpost changes on purpose (docs/differences-from-postfix.md;
 * `postconf -d` prints these values).
 */
export const SEALPOST_DEFAULTS: Readonly<Record<string, string>> = {
  // TLS connection reuse on by default: Postfix needs its tlsproxy(8) for it and defaults to no;
  // sealpost's client keeps the TLS session in-process and reuses it only for the same next hop
  // and the same effective policy (delivery/smtp/reuse.ts). One handshake per connection, not per message.
  smtp_tls_connection_reuse: 'yes',
  lmtp_tls_connection_reuse: 'yes',
};

/** Parameters only sealpost has. */
const SEALPOST_PARAMS: readonly ParamSpec[] = [
  // Empty = the system resolver (/etc/resolv.conf); else a list of ip[:port] (tests, labs, a validating resolver).
  { name: 'sealpost_dns_resolvers', defaultText: '', type: 'list', origin: 'sealpost' },
  { name: 'sealpost_maillog_format', defaultText: 'postfix', type: 'string', values: ['postfix', 'json'], origin: 'sealpost' },
  // The system logger's socket when maillog_file is empty; '' = /dev/log, else journald's
  // /run/systemd/journal/dev-log (tests point it at a receiver of their own).
  { name: 'sealpost_syslog_socket', defaultText: '', type: 'string', origin: 'sealpost' },
  // SMTP AUTH users for smtpd (scrypt hashes only; managed with `sealpost saslpasswd`).
  { name: 'sealpost_sasl_password_file', defaultText: '$config_directory/sasl_passwd', type: 'string', origin: 'sealpost' },
  // How many worker threads run each smtp(8) service's SMTP client (TLS handshakes and
  // crypto off the intake's event loop); 0 = in the master's thread.
  { name: 'sealpost_delivery_workers', defaultText: '1', type: 'int', origin: 'sealpost' },
  // Group commit (queue/journal.ts): one fdatasync of the queue journal makes every message
  // that arrived together durable; `no` = each queue file fsynced with its directory.
  { name: 'sealpost_queue_journal', defaultText: 'yes', type: 'bool', origin: 'sealpost' },
  // TLS-RPT (RFC 8460), docs/tls.md "TLS-RPT": record sessions and send daily reports to the
  // domains that publish _smtp._tls; the report fields default from $mydomain/$myhostname.
  { name: 'sealpost_tlsrpt', defaultText: 'yes', type: 'bool', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_organization', defaultText: '$mydomain', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_contact', defaultText: 'postmaster@$mydomain', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_sender', defaultText: 'noreply-smtp-tls-reporting@$mydomain', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_submitter', defaultText: '$myhostname', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_max_delay', defaultText: '1h', type: 'time', unit: 's', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_retry_backoff', defaultText: '5m', type: 'time', unit: 's', origin: 'sealpost' },
  { name: 'sealpost_tlsrpt_retry_lifetime', defaultText: '1d', type: 'time', unit: 's', origin: 'sealpost' },
  // MTA-STS (RFC 8461) built in: on by default; the policy fetch's deadline and size limit.
  { name: 'sealpost_mta_sts', defaultText: 'yes', type: 'bool', origin: 'sealpost' },
  { name: 'sealpost_mta_sts_fetch_timeout', defaultText: '30s', type: 'time', unit: 's', origin: 'sealpost' },
  { name: 'sealpost_mta_sts_max_policy_size', defaultText: '65536', type: 'size', origin: 'sealpost' },
  // Observability (docs/observability.md): the HTTP listener for /metrics and the status page
  // (empty = off; `PORT` or `HOST:PORT`; a bare port binds 127.0.0.1), its access and its TLS.
  { name: 'sealpost_http_listen', defaultText: '', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_http_auth_file', defaultText: '', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_http_tls_cert_file', defaultText: '', type: 'string', origin: 'sealpost' },
  { name: 'sealpost_http_tls_key_file', defaultText: '', type: 'string', origin: 'sealpost' },
  // Destination domains that get their own label in sealpost_destination_* metrics, and how many others may.
  { name: 'sealpost_metrics_destinations', defaultText: '', type: 'list', origin: 'sealpost' },
  { name: 'sealpost_metrics_destination_limit', defaultText: '20', type: 'int', origin: 'sealpost' },
  // The TLS posture store (`sealpost tls report`) and the per-message evidence store (`sealpost tls proof`).
  { name: 'sealpost_tls_report_enable', defaultText: 'yes', type: 'bool', origin: 'sealpost' },
  { name: 'sealpost_tls_report_retention', defaultText: '400d', type: 'time', unit: 'd', origin: 'sealpost' },
  { name: 'sealpost_tls_proof_enable', defaultText: 'yes', type: 'bool', origin: 'sealpost' },
  { name: 'sealpost_tls_proof_retention', defaultText: '400d', type: 'time', unit: 'd', origin: 'sealpost' },
];

/** Obsolete parameters (DEPRECATION_README) and what to set instead. */
export const OBSOLETE: Readonly<Record<string, string>> = {
  smtp_use_tls: 'smtp_tls_security_level = may',
  smtp_enforce_tls: 'smtp_tls_security_level = encrypt',
  smtp_tls_enforce_peername: 'smtp_tls_security_level = verify (or encrypt)',
  smtp_tls_per_site: 'smtp_tls_policy_maps',
  smtpd_use_tls: 'smtpd_tls_security_level = may',
  smtpd_enforce_tls: 'smtpd_tls_security_level = encrypt',
};

/** The one wording of a deprecation warning (Postfix's): `support for parameter "X" will be removed; instead, specify "Y"`. */
export function deprecationWarning(name: string): string {
  return `support for parameter "${name}" will be removed; instead, specify "${OBSOLETE[name] ?? 'its replacement'}"`;
}

/**
 * Parameters whose values Postfix does not $name-expand at load time (the
 * daemon expands them later with its own names: $home, $rbl_code, ...);
 * `postconf -x` prints them as written. Found with postconf 3.7 -nx.
 */
const RAW_PARAMS = new Set([
  'command_execution_directory',
  'default_rbl_reply',
  'forward_path',
  'luser_relay',
  'mailbox_command',
  'postscreen_expansion_filter',
  'postscreen_reject_footer',
  'smtpd_expansion_filter',
  'smtpd_reject_footer',
]);

export function isRawParam(name: string): boolean {
  return RAW_PARAMS.has(name);
}

/** Explicit types for the parameters sealpost reads (the rest are inferred). */
const DECLARED: Readonly<Record<string, ParamType | readonly [ParamType, TimeUnit]>> = {
  compatibility_level: 'string',
  mynetworks: 'list',
  mydestination: 'list',
  relay_domains: 'list',
  relayhost: 'list',
  fallback_relay: 'list',
  smtp_fallback_relay: 'list',
  transport_maps: 'list',
  smtp_tls_policy_maps: 'list',
  smtp_sasl_password_maps: 'list',
  smtp_tls_per_site: 'list',
  smtpd_relay_restrictions: 'list',
  smtpd_recipient_restrictions: 'list',
  smtpd_client_restrictions: 'list',
  smtpd_helo_restrictions: 'list',
  smtpd_sender_restrictions: 'list',
  smtpd_data_restrictions: 'list',
  inet_interfaces: 'list',
  inet_protocols: 'list',
  smtp_tls_mandatory_protocols: 'list',
  smtp_tls_protocols: 'list',
  smtp_tls_secure_cert_match: 'list',
  smtp_tls_verify_cert_match: 'list',
  smtp_tls_fingerprint_cert_match: 'list',
  smtp_tls_exclude_ciphers: 'list',
  smtp_tls_mandatory_exclude_ciphers: 'list',
  smtp_tls_chain_files: 'list',
  smtp_host_lookup: 'list',
  smtpd_tls_chain_files: 'list',
  smtp_requiretls_policy: 'list',
  tls_dane_digests: 'list',
  smtp_dns_support_level: 'string',
  smtp_tls_dane_insecure_mx_policy: 'string',
  smtp_tls_security_level: 'string',
  smtpd_tls_security_level: 'string',
  smtp_tls_loglevel: 'string',
  smtpd_forbid_bare_newline: 'string',
  smtp_tls_session_cache_timeout: ['time', 's'],
  smtp_connect_timeout: ['time', 's'],
  smtp_helo_timeout: ['time', 's'],
  smtp_starttls_timeout: ['time', 's'],
  maximal_queue_lifetime: ['time', 'd'],
  bounce_queue_lifetime: ['time', 'd'],
  delay_warning_time: ['time', 'h'],
  minimal_backoff_time: ['time', 's'],
  maximal_backoff_time: ['time', 's'],
  queue_run_delay: ['time', 's'],
  message_size_limit: 'size',
  header_size_limit: 'size',
  mailbox_size_limit: 'size',
  line_length_limit: 'int',
  smtpd_recipient_limit: 'int',
  smtp_mx_address_limit: 'int',
  smtp_mx_session_limit: 'int',
  default_destination_concurrency_limit: 'int',
};

let registry: Map<string, ParamSpec> | undefined;

function inferType(name: string, text: string, defaults: ReadonlyMap<string, string>, depth = 0): { type: ParamType; unit?: TimeUnit } {
  const declared = DECLARED[name];
  if (declared) return typeof declared === 'string' ? { type: declared } : { type: declared[0], unit: declared[1] };
  if (/^(yes|no)$/i.test(text)) return { type: 'bool' };
  const rel = /^\$\{\{.*\? *\{(yes|no)\} *: *\{(yes|no)\}\}$/.exec(text);
  if (rel) return { type: 'bool' };
  const t = /^\d+([smhdw])$/.exec(text);
  if (t) return { type: 'time', unit: t[1] as TimeUnit };
  if (/^-?\d+$/.test(text)) return { type: /_size(_limit)?$/.test(name) ? 'size' : 'int' };
  if (/_(maps|restrictions|domains|classes|checks|networks|interfaces)$/.test(name)) return { type: 'list' };
  const ref = /^\$\{?([A-Za-z0-9_]+)\}?$/.exec(text);
  if (ref && depth < 5) {
    const target = defaults.get(ref[1]!);
    if (target !== undefined) return inferType(ref[1]!, target, defaults, depth + 1);
  }
  return { type: 'string' };
}

function build(): Map<string, ParamSpec> {
  const defaults = new Map<string, string>(POSTFIX_DEFAULTS.map(([n, v]) => [n, v]));
  const origin = new Map<string, ParamSpec['origin']>();
  for (const n of defaults.keys()) origin.set(n, 'postfix-3.7');
  for (const [n, v] of Object.entries(POSTFIX_3_8_TO_3_11)) {
    defaults.set(n, v);
    origin.set(n, 'postfix-3.8+');
  }
  for (const [n, v] of Object.entries(SEALPOST_DEFAULTS)) defaults.set(n, v);
  const m = new Map<string, ParamSpec>();
  for (const [name, text] of defaults) {
    const { type, unit } = inferType(name, text, defaults);
    const spec: ParamSpec = { name, defaultText: text, type, origin: origin.get(name)!, ...(unit ? { unit } : {}), ...(OBSOLETE[name] ? { replacement: OBSOLETE[name] } : {}) };
    m.set(name, Object.freeze(spec));
  }
  for (const p of SEALPOST_PARAMS) m.set(p.name, Object.freeze(p));
  m.set('compatibility_level', Object.freeze({ ...m.get('compatibility_level')!, defaultText: SEALPOST_COMPATIBILITY_LEVEL }));
  return m;
}

/** sealpost's deliberate difference: modern defaults without a main.cf (docs/parameters.md). */
export const SEALPOST_COMPATIBILITY_LEVEL = '3.11';

/** The registry entry of a built-in parameter, or undefined. */
export function paramSpec(name: string): ParamSpec | undefined {
  registry ??= build();
  return registry.get(name);
}

/** Every built-in parameter name, sorted (postconf order). */
export function allParamNames(): string[] {
  registry ??= build();
  return [...registry.keys()].sort(byteOrder);
}

export function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Per-transport parameters that Postfix derives from master.cf service names
 * (postconf(5) "transport_destination_concurrency_limit" and friends): for every
 * service run by a queue-manager delivery agent.
 */
const DELIVERY_AGENTS = new Set(['smtp', 'lmtp', 'local', 'virtual', 'pipe', 'error']);
const TRANSPORT_SUFFIXES: ReadonlyArray<readonly [string, string]> = [
  ['delivery_slot_cost', '$default_delivery_slot_cost'],
  ['delivery_slot_discount', '$default_delivery_slot_discount'],
  ['delivery_slot_loan', '$default_delivery_slot_loan'],
  ['destination_concurrency_failed_cohort_limit', '$default_destination_concurrency_failed_cohort_limit'],
  ['destination_concurrency_limit', '$default_destination_concurrency_limit'],
  ['destination_concurrency_negative_feedback', '$default_destination_concurrency_negative_feedback'],
  ['destination_concurrency_positive_feedback', '$default_destination_concurrency_positive_feedback'],
  ['destination_rate_delay', '$default_destination_rate_delay'],
  ['destination_recipient_limit', '$default_destination_recipient_limit'],
  ['extra_recipient_limit', '$default_extra_recipient_limit'],
  ['initial_destination_concurrency', '$initial_destination_concurrency'],
  ['minimum_delivery_slots', '$default_minimum_delivery_slots'],
  ['recipient_limit', '$default_recipient_limit'],
  ['recipient_refill_delay', '$default_recipient_refill_delay'],
  ['recipient_refill_limit', '$default_recipient_refill_limit'],
  ['transport_rate_delay', '$default_transport_rate_delay'],
];

/** Service-derived parameters for one master.cf service (name → default text). */
export function serviceParams(service: string, command: string): Array<readonly [string, string]> {
  if (!DELIVERY_AGENTS.has(command)) return [];
  const out: Array<readonly [string, string]> = [];
  for (const [suffix, def] of TRANSPORT_SUFFIXES) {
    const name = `${service}_${suffix}`;
    if (!paramSpec(name)) out.push([name, def]);
  }
  // pipe(8): per-transport time limit.
  if (command === 'pipe' && !paramSpec(`${service}_time_limit`)) out.push([`${service}_time_limit`, '$command_time_limit']);
  return out;
}

/** Type of a service-derived parameter (same as its default_* counterpart). */
export function derivedSpec(name: string, defaultText: string): ParamSpec {
  const target = /^\$([A-Za-z0-9_]+)$/.exec(defaultText)?.[1];
  const t = target ? paramSpec(target) : undefined;
  return { name, defaultText, type: t?.type ?? 'string', ...(t?.unit ? { unit: t.unit } : {}), origin: 'postfix-3.7' };
}

/** Names whose default Postfix computes at run time; sealpost computes them here. */
export const SYSTEM_PARAMS: readonly string[] = [
  'config_directory',
  'queue_directory',
  'data_directory',
  'meta_directory',
  'mail_owner',
  'setgid_group',
  'daemon_directory',
  'mail_name',
  'syslog_name',
  'mail_version',
  'mail_release_date',
  'myhostname',
  'mydomain',
  'mynetworks',
  'process_id',
  'process_name',
];

export interface SystemContext {
  readonly configDir: string;
  /** The expanded value of another parameter (mynetworks needs mynetworks_style). */
  readonly get: (name: string) => string;
}

/** The run-time default of a system parameter, or undefined when `name` is not one. */
export function systemDefault(name: string, ctx: SystemContext): string | undefined {
  switch (name) {
    case 'config_directory':
      return ctx.configDir;
    case 'queue_directory':
      return '/var/spool/sealpost';
    case 'data_directory':
      return '/var/lib/sealpost';
    case 'meta_directory':
      return '/etc/sealpost';
    case 'mail_owner':
      // A dedicated unprivileged account (Postfix: postfix); sealpost set-permissions creates it.
      return 'sealpost';
    case 'setgid_group':
      // The group of maildrop/, public/ and the setgid helpers (Postfix: postdrop).
      return 'sealdrop';
    case 'daemon_directory':
      // Where sealpost set-permissions installs the setgid postdrop/postqueue helpers.
      return '/usr/libexec/sealpost';
    case 'mail_name':
      return 'sealpost';
    case 'syslog_name':
      return '${multi_instance_name?{$multi_instance_name}:{sealpost}}';
    case 'mail_version':
      return SEALPOST_VERSION;
    case 'mail_release_date':
      return SEALPOST_RELEASE_DATE;
    case 'myhostname':
      return myHostname();
    case 'mydomain':
      return myDomain(ctx.get('myhostname'));
    case 'mynetworks':
      return myNetworks(ctx.get('mynetworks_style'));
    case 'process_id':
      return String(process.pid);
    case 'process_name':
      return 'sealpost';
    default:
      return undefined;
  }
}

/** Postfix: the host name; a name without a dot gets `.localdomain` appended. */
function myHostname(): string {
  const h = hostname().toLowerCase();
  return h.includes('.') ? h : `${h}.localdomain`;
}

/** Postfix: myhostname minus its first label; `localdomain` when there is nothing left. */
function myDomain(host: string): string {
  const dot = host.indexOf('.');
  return dot > 0 && dot < host.length - 1 ? host.slice(dot + 1) : 'localdomain';
}

/** postconf(5) mynetworks_style: host (default at level ≥ 2), subnet, class. */
export function myNetworks(style: string): string {
  const v4: string[] = [];
  const v6: string[] = [];
  const add = (list: string[], item: string): void => {
    if (!list.includes(item)) list.push(item);
  };
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      const cidr = networkOf(a.address, a.family === 'IPv4' ? 4 : 6, style === 'host' ? undefined : a.cidr, style);
      if (a.family === 'IPv4') add(v4, cidr);
      else add(v6, `[${cidr.replace(/\/\d+$/, '')}]${cidr.slice(cidr.lastIndexOf('/'))}`);
    }
  }
  if (v4.length === 0) v4.push(style === 'host' ? '127.0.0.1/32' : '127.0.0.0/8');
  return [...v4, ...v6].join(' ');
}

function networkOf(address: string, family: 4 | 6, cidr: string | null | undefined, style: string): string {
  if (family === 4 && address.startsWith('127.') && style !== 'host') return '127.0.0.0/8';
  if (!cidr || style === 'host') return `${address.split('%')[0]}/${family === 4 ? 32 : 128}`;
  const bits = Number(cidr.split('/')[1]);
  if (family === 4) {
    const classBits = style === 'class' ? classfulBits(address) : bits;
    const n = address.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    const mask = classBits === 0 ? 0 : (0xffffffff << (32 - classBits)) >>> 0;
    const net = (n & mask) >>> 0;
    return `${[24, 16, 8, 0].map((s) => (net >>> s) & 255).join('.')}/${classBits}`;
  }
  return `${maskV6(address.split('%')[0]!, bits)}/${bits}`;
}

function classfulBits(address: string): number {
  const first = Number(address.split('.')[0]);
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

function maskV6(address: string, bits: number): string {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g || '0', 16));
  const masked = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : g & ((0xffff << (16 - keep)) & 0xffff);
  });
  // Compress the longest run of zero groups, as Postfix prints (e.g. fe80::).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (masked[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && masked[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = masked.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

// ---------------------------------------------------------------------------
// Value parsers (pure). load.ts wraps ValueError with file, line and parameter.

export class ValueError extends Error {}

const TIME_FACTORS: Readonly<Record<TimeUnit, number>> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** conv_time(3): a number with an optional unit s, m, h, d or w; a bare number takes `unit`. Seconds. */
export function parseTime(text: string, unit: TimeUnit = 's'): number {
  const m = /^(\d+)([smhdw])?$/i.exec(text.trim());
  if (!m) throw new ValueError(`bad time value "${text}"`);
  return Number(m[1]) * TIME_FACTORS[(m[2]?.toLowerCase() as TimeUnit | undefined) ?? unit];
}

/** get_mail_conf_bool(3): yes or no, case-insensitive. */
export function parseBool(text: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === 'yes') return true;
  if (t === 'no') return false;
  throw new ValueError(`bad boolean value "${text}"`);
}

export function parseInt10(text: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new ValueError(`bad integer value "${text}"`);
  return Number(text.trim());
}

export function parseSize(text: string): number {
  if (!/^\d+$/.test(text.trim())) throw new ValueError(`bad size value "${text}"`);
  return Number(text.trim());
}

/** The accepted forms, for error messages. */
export function acceptedForms(spec: Pick<ParamSpec, 'type' | 'values'>): string {
  switch (spec.type) {
    case 'time':
      return 'use a number with an optional unit s, m, h, d or w';
    case 'bool':
      return 'use yes or no';
    case 'int':
      return 'use a whole number';
    case 'size':
      return 'use a number of bytes';
    default:
      return spec.values ? `use one of ${spec.values.join(', ')}` : 'use a text value';
  }
}

/**
 * mystrtokq(3) with CHARS_COMMA_SP: split on commas and whitespace; a `{ ... }`
 * group (with its braces) stays one element.
 */
export function splitList(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let level = 0;
  for (const ch of text) {
    if (ch === '{') level++;
    else if (ch === '}' && level > 0) level--;
    if (level === 0 && (ch === ',' || ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n')) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (cur !== '') out.push(cur);
  return out;
}
