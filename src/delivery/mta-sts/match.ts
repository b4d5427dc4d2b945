/**
 * match.ts — what an MTA-STS policy demands of one MX host (RFC 8461 §4,
 * §5): is the host listed, and which certificate checks apply.
 *
 * Contract (pure):
 * - `mxPatternMatches(pattern, host)` — §4.1: `mail.example.com` matches
 *   itself; `*.example.com` matches exactly one more leftmost label
 *   (`mx.example.com`, never `example.com` nor `a.b.example.com`);
 *   case-insensitive, a trailing dot ignored. (verify.ts has the same rule
 *   for Postfix's `mx_host_pattern=`; both should share this one.)
 * - `stsForServer(policy, host)` — the plan for one MX host:
 *     `enforce`: a host matching no pattern is not tried (Postfix's warning
 *       `MX name 'H' does not match STS MX pattern for 'D'`); a listed host
 *       must offer STARTTLS with TLS ≥ 1.2 (§7.2) and a certificate that
 *       chains to the roots `secure` uses and names the MX host (§4.2: the
 *       host name, not the pattern; SNI = the host name, §7.1) — Postfix's
 *       `secure` with `match=hostname`;
 *     `testing`: the same checks, evaluated and recorded (TLS-RPT) but not
 *       enforced (§5: "deliver anyway");
 *   `requirement` is what the policy step turns into a TlsPolicy.
 * - `stsReasons` — sealpost's deferral texts naming the source (Postfix has
 *   none for MTA-STS; its plugin only says `Server certificate not verified`).
 *
 * Not here: discovery, fetching, caching; the TLS handshake itself.
 */
import type { TlsRptResultType } from '../outcome.ts';
import type { StsMode } from './policy.ts';

export function mxPatternMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  const h = host.toLowerCase().replace(/\.$/, '');
  if (p.startsWith('*.')) {
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot + 1) === p.slice(2);
  }
  return p === h;
}

/** The first `mx:` pattern that matches `host`, or undefined. */
export function matchingPattern(patterns: readonly string[], host: string): string | undefined {
  return patterns.find((p) => mxPatternMatches(p, host));
}

/** Postfix smtp_tls_policy.c smtp_tls_authorize_mx_hostname(): the warning for an unlisted MX. */
export function stsMxWarning(host: string, domain: string): string {
  return `MX name '${host}' does not match STS MX pattern for '${domain}'`;
}

/**
 * Deferral and log texts that name the MTA-STS source (sealpost's wording;
 * Postfix has no built-in MTA-STS). Where Postfix has a text for the same
 * failure (`Server certificate not verified`, `TLS is required, but was not
 * offered by host H[A]`), it stays the prefix and `withPolicy()` appends
 * `: MTA-STS policy of D demands ...`, so log readers that match Postfix's
 * texts still match.
 */
export const stsReasons = {
  /** An MX host that matches no `mx:` pattern, under enforce: not tried. */
  notListed: (domain: string, host: string) => `MX host ${host} is not listed in the MTA-STS policy of ${domain}`,
  /** Every MX failed under an enforce policy because none is listed. */
  noListedMx: (domain: string) => `MTA-STS policy of ${domain} lists none of its MX hosts`,
  /** A listed MX did not present a valid certificate for its name. */
  certificate: (domain: string, host: string) => `MTA-STS policy of ${domain} requires a valid certificate for MX host ${host}`,
  /** A listed MX did not offer STARTTLS. */
  noStarttls: (domain: string, host: string) => `MTA-STS policy of ${domain} requires TLS, but MX host ${host} did not offer STARTTLS`,
  /** A testing-mode failure, logged and delivered anyway. */
  testing: (domain: string, what: string) => `MTA-STS policy of ${domain} (mode testing) would have failed: ${what}`,
  /** The policy service could not be asked (a worker thread lost its channel): defer, never deliver without the policy. */
  lookupError: (domain: string, detail: string) => `MTA-STS policy lookup for ${domain} failed: ${detail}`,
  /** Postfix's text for a TLS failure, then what the MTA-STS policy demands. */
  withPolicy: (postfixText: string, domain: string, host: string) =>
    `${postfixText}: MTA-STS policy of ${domain} demands TLS 1.2 or later with a valid certificate for ${host}`,
} as const;

/** What a connection to one listed MX host must meet. */
export interface StsRequirement {
  /** Postfix level with the same checks: `secure` (PKIX to the `secure` roots, names from `match`). */
  readonly level: 'secure';
  /** The MX host name: the only reference identifier (§4.2). */
  readonly match: readonly string[];
  /** §7.2: TLS 1.2 or later. */
  readonly minProtocol: 'TLSv1.2';
  /** §7.1: SNI is the MX host name. */
  readonly servername: string;
}

export type StsServerPlan =
  | {
      readonly try: true;
      /** false under `testing`: failures are recorded, not enforced. */
      readonly enforce: boolean;
      readonly pattern: string;
      readonly requirement: StsRequirement;
    }
  | {
      readonly try: false;
      /** RFC 8460 has no type for "MX not listed": the catch-all. */
      readonly type: TlsRptResultType;
      readonly warning: string;
    }
  | {
      /** `testing` and the host is not listed: try it as before, record the failure. */
      readonly try: true;
      readonly enforce: false;
      readonly pattern: undefined;
      readonly type: TlsRptResultType;
      readonly warning: string;
    };

export function stsForServer(policy: { readonly domain: string; readonly mode: Exclude<StsMode, 'none'>; readonly mx: readonly string[] }, host: string): StsServerPlan {
  const pattern = matchingPattern(policy.mx, host);
  const h = host.replace(/\.$/, '').toLowerCase();
  if (pattern === undefined) {
    const warning = stsMxWarning(h, policy.domain);
    // RFC 8461 §5: enforce — do not deliver to an MX that fails the MX match; testing — deliver anyway.
    if (policy.mode === 'enforce') return { try: false, type: 'validation-failure', warning };
    return { try: true, enforce: false, pattern: undefined, type: 'validation-failure', warning };
  }
  return {
    try: true,
    enforce: policy.mode === 'enforce',
    pattern,
    requirement: Object.freeze({ level: 'secure', match: Object.freeze([h]), minProtocol: 'TLSv1.2', servername: h }),
  };
}
