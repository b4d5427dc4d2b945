/**
 * level.ts — Postfix's TLS security levels: names, strength order and the
 * predicates smtp(8) derives from them (tls.h TLS_REQUIRED, TLS_MUST_MATCH,
 * TLS_MUST_PKIX), and what `dane`/`dane-only` become without TLSA records.
 *
 * Contract: pure. `parseLevel` is case-insensitive as Postfix's
 * name_code_lookup(); unknown names give undefined (the caller reports
 * `invalid security level`). `halfdane` is an output-only level and is not
 * accepted.
 *
 * Not here: TLSA lookups (none yet: sealpost's DNS has no TLSA queries, so a
 * dane destination is a destination without TLSA records).
 */
import type { TlsDeferral, TlsLevel } from './types.ts';
import { NO_TLSA, NON_DNSSEC } from './reasons.ts';

/** tls_level.c order: none < may < encrypt < fingerprint < (halfdane) < dane < dane-only < verify < secure. */
const RANK: Readonly<Record<TlsLevel, number>> = Object.freeze({
  none: 0,
  may: 1,
  encrypt: 2,
  fingerprint: 3,
  dane: 5,
  'dane-only': 6,
  verify: 7,
  secure: 8,
});

export const LEVELS: readonly TlsLevel[] = Object.freeze(Object.keys(RANK) as TlsLevel[]);

export function levelRank(level: TlsLevel): number {
  return RANK[level];
}

/** tls_level_lookup(): case-insensitive; undefined for an unknown name. */
export function parseLevel(text: string): TlsLevel | undefined {
  const t = text.toLowerCase();
  return Object.prototype.hasOwnProperty.call(RANK, t) ? (t as TlsLevel) : undefined;
}

/** tls.h TLS_REQUIRED(l): l > may. */
export function tlsRequired(level: TlsLevel): boolean {
  return RANK[level] > RANK.may;
}

/** tls.h TLS_MUST_MATCH(l): l > encrypt (fingerprint, dane, dane-only, verify, secure). */
export function mustMatch(level: TlsLevel): boolean {
  return RANK[level] > RANK.encrypt;
}

/** tls.h TLS_MUST_PKIX(l): verify or secure (CA trust, tafile=). */
export function mustPkix(level: TlsLevel): boolean {
  return level === 'verify' || level === 'secure';
}

/** Levels that use the mandatory protocol/cipher settings (smtp_tls_policy.c set_cipher_grade). */
export function usesMandatorySettings(level: TlsLevel): boolean {
  return RANK[level] >= RANK.encrypt;
}

export type DaneOutcome =
  | { readonly kind: 'level'; readonly level: TlsLevel; readonly warning?: string }
  | { readonly kind: 'invalid'; readonly deferral: TlsDeferral; readonly warning?: string };

/**
 * smtp_tls_policy.c dane_init()/dane_incompat() for a destination without
 * usable TLSA records (sealpost has no TLSA lookups yet):
 * - DNSSEC lookups disabled (smtp_dns_support_level != dnssec): `dane` → `may`
 *   with the warning `NEXTHOP: dane configured with dnssec lookups disabled`;
 *   `dane-only` → the same warning and `client TLS configuration problem`;
 * - DNSSEC enabled, MX not validated: `dane` → `may`; `dane-only` → `non DNSSEC destination`;
 * - DNSSEC enabled, no TLSA: `dane` → `may`; `dane-only` → `no TLSA records found`.
 * `mxAuthenticated` undefined = not known yet (decided per next hop): treated as validated.
 */
export function daneWithoutTlsa(level: 'dane' | 'dane-only', nexthop: string, dnssecEnabled: boolean, mxAuthenticated?: boolean): DaneOutcome {
  if (!dnssecEnabled) {
    const warning = `${nexthop}: ${level} configured with dnssec lookups disabled`;
    if (level === 'dane') return { kind: 'level', level: 'may', warning };
    return { kind: 'invalid', deferral: { reason: 'client TLS configuration problem', dsn: '4.7.5' }, warning };
  }
  if (level === 'dane') return { kind: 'level', level: 'may' };
  if (mxAuthenticated === false) return { kind: 'invalid', deferral: NON_DNSSEC };
  return { kind: 'invalid', deferral: NO_TLSA };
}
