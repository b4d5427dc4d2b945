/**
 * names.ts — the two vocabularies every TLS record and policy shares:
 * Postfix's security level names and the trust words of its summary line.
 *
 * Contract: types only, no imports — a leaf that both the policy engine
 * (types.ts) and the plain-data session records (delivery/outcome.ts) can
 * import without importing each other.
 *
 * Not here: the order of the levels and what they imply (level.ts).
 */

/** postconf(5) smtp_tls_security_level, in Postfix's strength order (tls_level.c). */
export type TlsLevel = 'none' | 'may' | 'encrypt' | 'fingerprint' | 'dane' | 'dane-only' | 'verify' | 'secure';

/** Postfix's trust words in the TLS summary line (tls_misc.c). */
export type TlsTrust = 'Anonymous' | 'Untrusted' | 'Trusted' | 'Verified';
