/**
 * restrictions.ts — relay control at RCPT TO: smtpd_relay_restrictions, then
 * smtpd_recipient_restrictions, with the restrictions that decide whether a
 * client may send to a destination (postconf(5), smtpd(8) "RELAY CONTROL").
 *
 * Contract:
 * - `checkRecipient()` returns a value: `permit`, or a `reject`/`defer` with
 *   Postfix's reply line (`554 5.7.1 <rcpt>: Relay access denied`), or a
 *   `config-error`/`lookup-error` that the session turns into `451 4.3.5
 *   Server configuration error` / `451 4.3.0 Temporary lookup error`.
 * - Lists are evaluated as smtpd_check.c does: a restriction answers OK
 *   (permit: this list is done), REJECT/DEFER (final), or DUNNO (next
 *   restriction); the end of a list permits that list.
 * - Supported: permit_mynetworks, permit_sasl_authenticated,
 *   reject_unauth_destination, defer_unauth_destination,
 *   permit_auth_destination, reject, defer, permit, and the compatibility
 *   name check_relay_domains (= permit_auth_destination + reject). Any other
 *   name is a configuration error ("unknown smtpd restriction"), answered
 *   with 451 4.3.5, as Postfix does.
 * - Fail safe: when neither list holds one of reject_unauth_destination,
 *   defer_unauth_destination, reject, defer (or check_relay_domains), every
 *   RCPT is a configuration error — never an open relay (Postfix refuses to
 *   run with such a config).
 * - "Auth destination" follows trivial-rewrite's resolve(): the address
 *   tricks `user%host@local`, `host!user@local`, `"user@host"@local` are
 *   unwrapped when the domain is local (allow_percent_hack, swap_bangpath,
 *   resolve_dequoted_address) and the result resolved again; a non-local
 *   destination whose local part still holds `@`, `%` or `!` is "routed" and
 *   is never an auth destination unless allow_untrusted_routing = yes.
 *
 * Not here: access(5) tables, RBLs, policy services, sender/helo/client
 * restrictions (not implemented; see docs/intake.md).
 */
import { ConfigError } from '../../lib/errors.ts';
import type { DomainList, NetworkList } from './match-list.ts';

export type Verdict =
  | { readonly kind: 'permit' }
  | { readonly kind: 'reject' | 'defer'; readonly reply: string }
  | { readonly kind: 'config-error'; readonly problem: string }
  | { readonly kind: 'lookup-error'; readonly problem: string };

const PERMIT: Verdict = Object.freeze({ kind: 'permit' });

export const KNOWN_RESTRICTIONS = [
  'permit_mynetworks',
  'permit_sasl_authenticated',
  'reject_unauth_destination',
  'defer_unauth_destination',
  'permit_auth_destination',
  'check_relay_domains',
  'reject',
  'defer',
  'permit',
] as const;

/** Restrictions that stop mail to unauthorised destinations (smtpd_check.c "relay_restrictions" sanity check). */
const RELAY_STOPPERS = new Set(['reject_unauth_destination', 'defer_unauth_destination', 'reject', 'defer', 'check_relay_domains']);

export interface RelaySettings {
  readonly relayRestrictions: readonly string[];
  readonly recipientRestrictions: readonly string[];
  readonly mynetworks: NetworkList;
  readonly mydestination: DomainList;
  readonly relayDomains: DomainList;
  readonly allowUntrustedRouting: boolean;
  readonly allowPercentHack: boolean;
  readonly swapBangpath: boolean;
  readonly resolveDequoted: boolean;
  /** relay_domains_reject_code (554). */
  readonly relayRejectCode: number;
  /** reject_code (554) for plain `reject`; defer_code (450) for `defer`. */
  readonly rejectCode: number;
  readonly deferCode: number;
  /** unauth_destination_defer? Postfix: defer_unauth_destination uses 4.7.1 with code 454 (unverified_recipient_defer_code-free). */
  readonly myorigin: string;
}

export interface RecipientContext {
  /** The recipient in internal form (no brackets). */
  readonly recipient: string;
  readonly hadSourceRoute: boolean;
  readonly clientAddress: string;
  /** The address the client connected to (an address literal for it is local). */
  readonly localAddress: string;
  readonly saslAuthenticated: boolean;
}

/** A configuration problem found without any client: unknown names, no relay stopper. */
export function relayConfigProblem(s: Pick<RelaySettings, 'relayRestrictions' | 'recipientRestrictions'>): string | undefined {
  for (const [param, list] of [
    ['smtpd_relay_restrictions', s.relayRestrictions],
    ['smtpd_recipient_restrictions', s.recipientRestrictions],
  ] as const) {
    for (const name of list) {
      if (!(KNOWN_RESTRICTIONS as readonly string[]).includes(name.toLowerCase())) return `unknown smtpd restriction: "${name}" in ${param}`;
    }
  }
  const all = [...s.relayRestrictions, ...s.recipientRestrictions].map((n) => n.toLowerCase());
  if (!all.some((n) => RELAY_STOPPERS.has(n))) {
    return 'in parameter smtpd_relay_restrictions or smtpd_recipient_restrictions, specify at least one working instance of: reject_unauth_destination, defer_unauth_destination, reject, defer, defer_if_permit or check_relay_domains';
  }
  return undefined;
}

/** Throw a ConfigError when relayConfigProblem() finds one (for startup and reload). */
export function assertRelayConfig(s: Pick<RelaySettings, 'relayRestrictions' | 'recipientRestrictions'>): void {
  const p = relayConfigProblem(s);
  if (p) throw new ConfigError(p);
}

export type ResolveClass = 'local' | 'relay' | 'remote';

export interface Resolved {
  readonly address: string;
  readonly cls: ResolveClass;
  /** Routing operators left in a non-local address's local part (RESOLVE_FLAG_ROUTED). */
  readonly routed: boolean;
  readonly error?: string;
}

function splitAddress(address: string): { local: string; domain: string | undefined } {
  const at = address.lastIndexOf('@');
  return at < 0 ? { local: address, domain: undefined } : { local: address.slice(0, at), domain: address.slice(at + 1) };
}

async function isLocalDomain(domain: string, s: RelaySettings, ctx: RecipientContext): Promise<boolean | string> {
  // An address literal naming the address we were reached on is local (resolve_numeric_domain aside).
  if (domain.startsWith('[') && domain.endsWith(']')) {
    const lit = domain.slice(1, -1).replace(/^ipv6:/i, '');
    return lit.toLowerCase() === ctx.localAddress.toLowerCase();
  }
  const m = await s.mydestination.match(domain);
  if (m.kind === 'error') return m.message;
  return m.kind === 'match';
}

/** One step of trivial-rewrite's local-part unwrapping; undefined when nothing is left to unwrap. */
function unwrapLocalPart(local: string, s: RelaySettings): string | undefined {
  // resolve_dequoted_address: "user@host"@local → user@host.
  if (s.resolveDequoted && local.includes('@')) return local;
  // swap_bangpath: host!user → user@host (the first `!` separates the host).
  const bang = local.indexOf('!');
  if (s.swapBangpath && bang > 0) return `${local.slice(bang + 1)}@${local.slice(0, bang)}`;
  // allow_percent_hack: user%host → user@host (the last `%`).
  const pct = local.lastIndexOf('%');
  if (s.allowPercentHack && pct > 0) return `${local.slice(0, pct)}@${local.slice(pct + 1)}`;
  return undefined;
}

/** trivial-rewrite resolve(): the destination class of a recipient. */
export async function resolveRecipient(recipient: string, s: RelaySettings, ctx: RecipientContext): Promise<Resolved> {
  let address = recipient;
  for (let hops = 0; hops < 20; hops++) {
    let { local, domain } = splitAddress(address);
    // A bare local part is completed with $myorigin (rewrite append_at_myorigin).
    if (domain === undefined || domain === '') domain = s.myorigin;
    const isLocal = await isLocalDomain(domain, s, ctx);
    if (typeof isLocal === 'string') return { address, cls: 'remote', routed: false, error: isLocal };
    if (isLocal) {
      const next = unwrapLocalPart(local, s);
      if (next === undefined) return { address: `${local}@${domain}`, cls: 'local', routed: false };
      address = next;
      continue;
    }
    const relay = await s.relayDomains.match(domain);
    if (relay.kind === 'error') return { address, cls: 'remote', routed: false, error: relay.message };
    // resolve.c: routing operators in a non-local local part are recognised even
    // when they are not enabled here, because the next MX might honour them.
    const routed = /[@%!]/.test(local);
    return { address: `${local}@${domain}`, cls: relay.kind === 'match' ? 'relay' : 'remote', routed };
  }
  return { address, cls: 'remote', routed: true };
}

type Step = 'ok' | 'dunno' | Verdict;

/** smtpd_check.c permit_auth_destination. */
async function authDestination(s: RelaySettings, ctx: RecipientContext): Promise<'ok' | 'dunno' | Verdict> {
  const r = await resolveRecipient(ctx.recipient, s, ctx);
  if (r.error) return { kind: 'lookup-error', problem: r.error };
  // Skip source-routed non-local mail (uncertain destination). A RFC 5321 source
  // route itself was already stripped (RFC 5321 Appendix C); only routing
  // operators left in the local part make the destination uncertain.
  if (!s.allowUntrustedRouting && r.cls !== 'local' && r.routed) return 'dunno';
  return r.cls === 'local' || r.cls === 'relay' ? 'ok' : 'dunno';
}

function relayDenied(code: number, ctx: RecipientContext): Verdict {
  // smtpd_check.c reject_unauth_destination: "<%s>: %s rejected: Relay access denied" (reply class Recipient address, shown as "<rcpt>: Relay access denied").
  const dsn = code >= 500 ? '5.7.1' : '4.7.1';
  return { kind: code >= 500 ? 'reject' : 'defer', reply: `${code} ${dsn} <${ctx.recipient}>: Relay access denied` };
}

function accessDenied(code: number, ctx: RecipientContext): Verdict {
  const dsn = code >= 500 ? '5.7.1' : '4.7.1';
  return { kind: code >= 500 ? 'reject' : 'defer', reply: `${code} ${dsn} <${ctx.recipient}>: Recipient address rejected: Access denied` };
}

async function evaluateOne(name: string, s: RelaySettings, ctx: RecipientContext): Promise<Step> {
  switch (name.toLowerCase()) {
    case 'permit':
      return 'ok';
    case 'reject':
      return accessDenied(s.rejectCode, ctx);
    case 'defer':
      return accessDenied(s.deferCode, ctx);
    case 'permit_mynetworks': {
      const m = await s.mynetworks.match(ctx.clientAddress);
      if (m.kind === 'error') return { kind: 'lookup-error', problem: m.message };
      return m.kind === 'match' ? 'ok' : 'dunno';
    }
    case 'permit_sasl_authenticated':
      return ctx.saslAuthenticated ? 'ok' : 'dunno';
    case 'permit_auth_destination':
      return authDestination(s, ctx);
    case 'reject_unauth_destination':
    case 'defer_unauth_destination':
    case 'check_relay_domains': {
      const a = await authDestination(s, ctx);
      if (a === 'dunno') return relayDenied(name.toLowerCase() === 'defer_unauth_destination' ? 454 : s.relayRejectCode, ctx);
      if (a === 'ok') return name.toLowerCase() === 'check_relay_domains' ? 'ok' : 'dunno';
      return a;
    }
    default:
      return { kind: 'config-error', problem: `unknown smtpd restriction: "${name}"` };
  }
}

async function evaluateList(list: readonly string[], s: RelaySettings, ctx: RecipientContext): Promise<Verdict | undefined> {
  for (const name of list) {
    const step = await evaluateOne(name, s, ctx);
    if (step === 'ok') return undefined;
    if (step === 'dunno') continue;
    return step;
  }
  return undefined;
}

/** smtpd_check_rcpt(): relay restrictions, then recipient restrictions. */
export async function checkRecipient(s: RelaySettings, ctx: RecipientContext): Promise<Verdict> {
  const problem = relayConfigProblem(s);
  if (problem) return { kind: 'config-error', problem };
  return (await evaluateList(s.relayRestrictions, s, ctx)) ?? (await evaluateList(s.recipientRestrictions, s, ctx)) ?? PERMIT;
}
