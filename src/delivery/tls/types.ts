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
 * - `TlsPolicy` is a union: a `ConnectPolicy` (connect and enforce this level)
 *   or an `InvalidPolicy` (`level: 'invalid'`, which always carries its
 *   deferral — `client TLS configuration problem` 4.7.5, or `Temporary lookup
 *   error` 4.3.0 for the obsolete smtp_tls_per_site): the client then makes no
 *   connection at all — never a downgrade. `invalidPolicy()` (policy.ts) is
 *   the one place that builds one.
 * - Every policy says which source decided it, in RFC 8460 terms (`applied`).
 * - Every reason text is Postfix 3.11's wording (reasons.ts).
 *
 * Not here: sockets (the session owns them), table parsing (policy-table.ts),
 * the policy sources and the combiner (sources/, combine.ts).
 */
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { AppliedPolicy, TlsFacts, TlsRptResultType } from '../outcome.ts';
import type { TlsLevel, TlsTrust } from './names.ts';

export type { TlsLevel, TlsTrust } from './names.ts';

export interface TlsDeferral {
  readonly reason: string;
  /** RFC 3463 `4.7.5`, `4.3.0` ... */
  readonly dsn: string;
}

/** What every policy carries, valid or not. */
interface PolicyBase {
  /** The next hop the policy was decided for, verbatim (`example.com`, `[mx.example.com]:587`). */
  readonly nexthop: string;
  /** The next-hop domain without brackets and port (for `nexthop`/`dot-nexthop` name checks). */
  readonly nexthopDomain: string;
  /** Where the level came from: `smtp_tls_security_level` or `hash:/etc/postfix/tls_policy` ... */
  readonly source: string;
  /** The table entry that matched (key and value as found), for `tls explain` and logs. */
  readonly matchedEntry?: { readonly table: string; readonly key: string; readonly value: string };
  /** RFC 8689: TLS-Required: No capped the level at `may`. */
  readonly tlsRequiredNo: boolean;
  /** The deciding source and the RFC 8460 policy facts, for the session records (outcome.ts). */
  readonly applied: AppliedPolicy;
}

/** Connect, and enforce this level. */
export interface ConnectPolicy extends PolicyBase {
  readonly level: TlsLevel;
  /**
   * The level configured before it was changed for this destination (`dane`
   * without TLSA records runs as `may`); absent when equal to `level`. Used
   * for the `tls=dane:may` feature status.
   */
  readonly configuredLevel?: TlsLevel;
  /** Only on the invalid variant. */
  readonly invalid?: undefined;
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
}

/** Make no connection: defer every recipient with `invalid` (fail closed, never a downgrade). */
export interface InvalidPolicy extends PolicyBase {
  readonly level: 'invalid';
  readonly invalid: TlsDeferral;
  readonly configuredLevel?: undefined;
}

export type TlsPolicy = ConnectPolicy | InvalidPolicy;

/**
 * The per-server step (after the MX list is known, before connecting): connect
 * to this server with this policy, skip it (a policy that does not list it),
 * or defer it (a per-server lookup failed). Skipped and deferred servers get
 * a session record of their own (outcome.ts) and count as a soft failure:
 * the next server is tried.
 */
export type ServerPolicy =
  | { readonly kind: 'connect'; readonly policy: ConnectPolicy }
  | { readonly kind: 'skip'; readonly reason: string; readonly dsn: string; readonly resultType?: TlsRptResultType; readonly applied: AppliedPolicy }
  | { readonly kind: 'defer'; readonly deferral: TlsDeferral; readonly resultType?: TlsRptResultType; readonly applied: AppliedPolicy };

/** The server a session talks to. */
export interface ServerIdentity {
  /** MX host name, or the next-hop host for [host] and relayhosts. */
  readonly hostname: string;
  readonly address: string;
  readonly port: number;
  /** Were the MX records DNSSEC-validated (for dane)? */
  readonly mxAuthenticated: boolean;
}

export interface TlsEvaluation {
  readonly trust: TlsTrust;
  /** TLSv1.3 ... */
  readonly protocol: string;
  readonly cipher: string;
  readonly cipherBits: number;
  readonly cipherAlgBits: number;
  /** Set when the policy's requirement is not met: the session must not send mail. */
  readonly failure?: TlsDeferral;
  /** RFC 8460 result type of `failure`, decided where the failure is (verify.ts). */
  readonly failureType?: TlsRptResultType;
  /** The peer's leaf certificate facts for the session record (absent for an anonymous cipher). */
  readonly peer?: TlsFacts['peer'];
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
      /** RFC 8460 result type of this failure. */
      readonly type: TlsRptResultType;
    };

export interface TlsEngine {
  /** The hop step: decide the policy for one next hop (table lookups happen here), before MX resolution. Never rejects. */
  policyFor(nexthop: string, message: { readonly tlsRequiredNo: boolean; readonly requireTls: boolean }): Promise<TlsPolicy>;
  /** The server step for a connectable hop policy and one server of its MX list. Never rejects. */
  serverPolicy(hop: ConnectPolicy, server: ServerIdentity): Promise<ServerPolicy>;
  /** Options for tls.connect() over the plaintext socket after `220` to STARTTLS; SecureContexts are built once per policy shape. */
  connectOptions(policy: ConnectPolicy, server: ServerIdentity): ConnectionOptions;
  /** Evaluate the peer after the handshake (certificate chain, names, fingerprints). */
  evaluate(policy: ConnectPolicy, socket: TLSSocket, server: ServerIdentity): TlsEvaluation;
  /** `Verified TLS connection established to host[addr]:25: TLSv1.3 with cipher ... (256/256 bits)` (without the service prefix). */
  summaryLine(evaluation: TlsEvaluation, server: ServerIdentity, reused: boolean): string;
  /** Drop cached contexts and session tickets (reload). */
  reset(): void;
}
