/**
 * types.ts — the values the TLS policy engine hands the SMTP client.
 * Postfix's split: smtp_tls_policy.c decides, smtp_proto.c enforces. Here the
 * engine (delivery/tls/) turns main.cf + smtp_tls_policy_maps into a frozen
 * TlsPolicy before any connection is made; the SMTP session
 * (delivery/smtp/session.ts) only enforces it, asking enforce.ts what each
 * event (no STARTTLS, STARTTLS refused, handshake failed, peer evaluated)
 * means under the policy.
 *
 * Contract:
 * - A TlsPolicy is immutable (Object.freeze); callers that need a variant copy it.
 * - `level: 'invalid'` carries the deferral (`client TLS configuration
 *   problem` 4.7.5, `Temporary lookup error` 4.3.0): the client then makes no
 *   connection at all — never a downgrade.
 * - Every reason text is Postfix 3.11's wording (reasons.ts).
 *
 * Not here: sockets (the session owns them), table parsing (policy-table.ts).
 */
import type { ConnectionOptions, TLSSocket } from 'node:tls';

/** postconf(5) smtp_tls_security_level, in Postfix's strength order (tls_level.c). */
export type TlsLevel = 'none' | 'may' | 'encrypt' | 'fingerprint' | 'dane' | 'dane-only' | 'verify' | 'secure';

export interface TlsDeferral {
  readonly reason: string;
  /** RFC 3463 `4.7.5`, `4.3.0` ... */
  readonly dsn: string;
}

export interface TlsPolicy {
  readonly level: TlsLevel | 'invalid';
  /**
   * (Optional, engine C) The level configured before it was changed for this
   * destination (`dane` without TLSA records runs as `may`); absent when equal
   * to `level`. Used for the `tls=dane:may` feature status.
   */
  readonly configuredLevel?: TlsLevel;
  /** The next hop the policy was decided for, verbatim (`example.com`, `[mx.example.com]:587`). */
  readonly nexthop: string;
  /** The next-hop domain without brackets and port (for `nexthop`/`dot-nexthop` name checks). */
  readonly nexthopDomain: string;
  /** Set when level is 'invalid'. */
  readonly invalid?: TlsDeferral;
  /** verify/secure: name strategies and names (`hostname`, `nexthop`, `dot-nexthop`, `example.com`, `.example.com`); fingerprint: fingerprints. */
  readonly match: readonly string[];
  /** Protocol bounds after parsing smtp_tls_(mandatory_)protocols / protocols= (`TLSv1`..`TLSv1.3`). */
  readonly minProtocol?: string;
  readonly maxProtocol?: string;
  /** OpenSSL cipher list after grade + exclusions. */
  readonly ciphers: string;
  /** SNI to send: a name, or undefined for none (`hostname`/`nexthop` already resolved per server by connectOptions). */
  readonly servername?: string;
  /** tafile= / smtp_tls_trust_anchor_file. */
  readonly trustAnchorFiles: readonly string[];
  readonly connectionReuse: boolean;
  /** Where the level came from: `smtp_tls_security_level` or `hash:/etc/postfix/tls_policy` ... */
  readonly source: string;
  /** The table entry that matched (key and value as found), for `tls explain` and logs. */
  readonly matchedEntry?: { readonly table: string; readonly key: string; readonly value: string };
  /** RFC 8689: TLS-Required: No capped the level at `may`. */
  readonly tlsRequiredNo: boolean;
}

/** The server a session talks to. */
export interface ServerIdentity {
  /** MX host name, or the next-hop host for [host] and relayhosts. */
  readonly hostname: string;
  readonly address: string;
  readonly port: number;
  /** Were the MX records DNSSEC-validated (for dane)? */
  readonly mxAuthenticated: boolean;
}

/** Postfix's trust words in the TLS summary line (tls_misc.c). */
export type TlsTrust = 'Anonymous' | 'Untrusted' | 'Trusted' | 'Verified';

export interface TlsEvaluation {
  readonly trust: TlsTrust;
  /** TLSv1.3 ... */
  readonly protocol: string;
  readonly cipher: string;
  readonly cipherBits: number;
  readonly cipherAlgBits: number;
  /** Set when the policy's requirement is not met: the session must not send mail. */
  readonly failure?: TlsDeferral;
  /**
   * (Optional, engine C) What tls_log_summary() appends after the bits, as far
   * as Node exposes it: ` key-exchange X25519 server-signature ECDSA (prime256v1) server-digest SHA256` (TLS 1.3 only).
   */
  readonly summaryExtra?: string;
  /** Log lines (without the `warning:` prefix) such as `certificate verification failed for host[addr]:25: self-signed certificate`. */
  readonly logLines: readonly string[];
}

/** What the session does next after a TLS event (enforce.ts; smtp_proto.c's decisions as a table). */
export type TlsDecision =
  | { readonly action: 'continue' }
  | { readonly action: 'plaintext' }
  /** Start over on a new connection to the same server without STARTTLS (`may` after a handshake failure, when allowed). */
  | { readonly action: 'reconnect-plaintext' }
  | {
      readonly action: 'fail';
      readonly reason: string;
      readonly dsn: string;
      /** Try the next MX/address (true for every TLS failure at mandatory levels). */
      readonly nextHost: boolean;
      /** Throttle the destination (Postfix SMTP_MISC_FAIL_THROTTLE). */
      readonly throttle: boolean;
    };

export interface TlsEngine {
  /** Decide the policy for one next hop (table lookups happen here). Never rejects. */
  policyFor(nexthop: string, message: { readonly tlsRequiredNo: boolean; readonly requireTls: boolean }): Promise<TlsPolicy>;
  /** Options for tls.connect() over the plaintext socket after `220` to STARTTLS; SecureContexts are built once per policy shape. */
  connectOptions(policy: TlsPolicy, server: ServerIdentity): ConnectionOptions;
  /** Evaluate the peer after the handshake (certificate chain, names, fingerprints). */
  evaluate(policy: TlsPolicy, socket: TLSSocket, server: ServerIdentity): TlsEvaluation;
  /** `Verified TLS connection established to host[addr]:25: TLSv1.3 with cipher ... (256/256 bits)` (without the service prefix). */
  summaryLine(evaluation: TlsEvaluation, server: ServerIdentity, reused: boolean): string;
  /** Drop cached contexts and session tickets (reload). */
  reset(): void;
}
