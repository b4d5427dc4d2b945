/**
 * reasons.ts — every deferral text and warning the TLS policy engine and the
 * SMTP client's TLS enforcement produce, worded exactly as Postfix 3.11 words
 * them (smtp_proto.c, smtp_tls_policy.c, tls_verify.c), in one place.
 *
 * Contract: pure functions and constants; hosts are passed already formatted
 * (`name[addr]` for smtp_proto.c texts, `name[addr]:port` for tls_verify.c).
 *
 * Not here: when each text applies (enforce.ts, policy.ts, verify.ts).
 */
import type { TlsDeferral } from './types.ts';

/** A deferral value (frozen). */
export function deferral(reason: string, dsn: string): TlsDeferral {
  return Object.freeze({ reason, dsn });
}

// smtp_tls_policy.c MARK_INVALID: dsb_simple(why, "4.7.5", "client TLS configuration problem").
export const CONFIG_PROBLEM = deferral('client TLS configuration problem', '4.7.5');
// smtp_tls_policy.c: policy/per-site table lookup error.
export const TEMP_LOOKUP_ERROR = deferral('Temporary lookup error', '4.3.0');
// smtp_tls_policy.c dane_init()/dane_incompat(): dane-only without usable TLSA.
export const NO_TLSA = deferral('no TLSA records found', '4.7.5');
export const NON_DNSSEC = deferral('non DNSSEC destination', '4.7.5');
// smtp_proto.c: certificate match required (TLS_MUST_MATCH) and not matched.
export const NOT_VERIFIED = deferral('Server certificate not verified', '4.7.5');
// smtp_proto.c: tls_client_start() failed.
export const HANDSHAKE_FAILURE = deferral('Cannot start TLS: handshake failure', '4.7.5');

/** smtp_proto.c: `TLS is required, but was not offered by host %s` (4.7.4); host = `name[addr]`. */
export function notOffered(namaddr: string): TlsDeferral {
  return deferral(`TLS is required, but was not offered by host ${namaddr}`, '4.7.4');
}

/** smtp_proto.c: `TLS is required, but host %s refused to start TLS: %s` with the server's DSN. */
export function refused(namaddr: string, replyText: string, dsn: string): TlsDeferral {
  // smtp_proto.c: translit(resp->str, "\n", " ").
  return deferral(`TLS is required, but host ${namaddr} refused to start TLS: ${replyText.replace(/[\r\n]+/g, ' ')}`, dsn);
}

/** smtp_connect.c: `TLS policy lookup for %s/%s: %s` (next hop / host). */
export function policyLookupWarning(nexthop: string, host: string, reason: string): string {
  return `TLS policy lookup for ${nexthop}/${host}: ${reason}`;
}

/** smtp_tls_policy.c WHERE: `smtp_tls_policy_maps, next-hop destination "example.com"`. */
export function policyWhere(title: string, nexthop: string): string {
  return `${title}, next-hop destination "${nexthop}"`;
}

/** Log lines of tls_verify.c / tls_client.c (without `warning:`); namaddrport = `name[addr]:port`. */
export const verifyLog = {
  selfSigned: (h: string) => `certificate verification failed for ${h}: self-signed certificate`,
  untrustedIssuer: (h: string, issuer: string) => `certificate verification failed for ${h}: untrusted issuer ${issuer}`,
  notTrusted: (h: string) => `certificate verification failed for ${h}: not trusted by local or TLSA policy`,
  expired: (h: string) => `server certificate verification failed for ${h}: certificate has expired`,
  notYetValid: (h: string) => `server certificate verification failed for ${h}: certificate not yet valid`,
  notServer: (h: string) => `certificate verification failed for ${h}: not designated for use as a server certificate`,
  chainTooLong: (h: string, depth: number) => `certificate verification failed for ${h}: certificate chain longer than limit(${depth})`,
  generic: (h: string, num: number, text: string) => `server certificate verification failed for ${h}: num=${num}:${text}`,
  // Postfix ≥ 3.x checks names and fingerprints inside OpenSSL (X509_VERIFY_PARAM host
  // names; fingerprints as DANE-EE digests), so a miss is a verification error
  // logged by tls_log_verify_error(): X509_V_ERR_HOSTNAME_MISMATCH (62),
  // X509_V_ERR_DANE_NO_MATCH (65). Seen from Debian's Postfix 3.7 (tls-diff-postfix.test.ts).
  nameMismatch: (h: string) => `server certificate verification failed for ${h}: num=62:hostname mismatch`,
  noFingerprintMatch: (h: string) => `server certificate verification failed for ${h}: num=65:no matching DANE TLSA records`,
  matchedPeername: (h: string, name: string) => `${h}: matched peername: ${name}`,
  matchedFingerprint: (h: string, fp: string) => `${h}: Matched fingerprint: ${fp}`,
} as const;
