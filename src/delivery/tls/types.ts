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
import type { TlsaRecord } from '../dns/tlsa.ts';
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

/**
 * DANE for one server (RFC 7672; dane.ts daneAfterLookup()): the usable TLSA
 * records the certificate chain must match, the TLSA base domain (SNI) and
 * the DANE-TA reference identifiers.
 */
export interface DanePlan {
  readonly level: 'dane' | 'dane-only';
  /** The MX RRset was insecure (smtp_tls_dane_insecure_mx_policy = dane): success is `Trusted`, `tls=dane:halfdane`. */
  readonly halfdane: boolean;
  readonly records: readonly TlsaRecord[];
  readonly baseDomain: string;
  readonly matchNames: readonly string[];
  /** dane-only with no usable record: the handshake goes ahead and verification fails (tls_client.c must_fail). */
  readonly mustFail: boolean;
  /** `_25._tcp.mx.example.com`, for texts. */
  readonly qname: string;
}

/**
 * MTA-STS for one MX host (RFC 8461 §4, §5): under `enforce` the policy's
 * own checks (level `secure`, the MX name, TLS 1.2, SNI = the MX name) are
 * the policy; under `testing` the connection runs under the level it would
 * have had and the same checks are evaluated and recorded, not enforced.
 */
export interface StsPlan {
  /** The policy domain. */
  readonly domain: string;
  readonly mode: 'enforce' | 'testing';
  readonly id: string;
  readonly mxHost: string;
  /** The MX host matched an `mx:` pattern (under enforce an unlisted host is never connected to). */
  readonly listed: boolean;
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
  /** DANE applies to this server: matchDane() decides, not the CA store (engine.ts evaluate()). */
  readonly dane?: DanePlan;
  /** An MTA-STS policy applies to this server. */
  readonly sts?: StsPlan;
  /** Trust the roots MTA-STS uses (smtp_tls_CAfile/CApath, or the system's roots when both are empty) instead of the CA bundle. */
  readonly trustRoots?: 'sts';
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
  | {
      readonly kind: 'defer';
      readonly deferral: TlsDeferral;
      readonly resultType?: TlsRptResultType;
      readonly applied: AppliedPolicy;
      /** No TLS was at stake (a configuration problem): no session record is kept for it. */
      readonly noRecord?: boolean;
    };

/** The server a session talks to. */
export interface ServerIdentity {
  /** MX host name, or the next-hop host for [host] and relayhosts. */
  readonly hostname: string;
  readonly address: string;
  readonly port: number;
  /** Were the MX records DNSSEC-validated (for dane)? */
  readonly mxAuthenticated: boolean;
  /** The AD bit of the host's own address lookup (RFC 7672 §2.2: TLSA only for secure hosts). */
  readonly addressAuthenticated?: boolean;
  /** The end of the host name's CNAME chain, when it is an alias (RFC 7672 §2.2.2). */
  readonly canonicalName?: string;
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
  /** MTA-STS `testing`: what would have failed under enforce (recorded with `enforced: false`, never enforced). */
  readonly stsTesting?: { readonly type: TlsRptResultType; readonly reason: string };
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
  /**
   * The server step for a hop policy and one server of its MX list. Never
   * rejects. An invalid hop policy defers every server, with Postfix's
   * per-server warning (smtp_connect.c: `TLS policy lookup for DEST/HOST`).
   * `quiet` logs nothing: the check of a cached connection before its reuse,
   * after which the server step proper (which warns) may still run.
   */
  serverPolicy(hop: TlsPolicy, server: ServerIdentity, opts?: { readonly quiet?: boolean }): Promise<ServerPolicy>;
  /** Options for tls.connect() over the plaintext socket after `220` to STARTTLS; SecureContexts are built once per policy shape. */
  connectOptions(policy: ConnectPolicy, server: ServerIdentity): ConnectionOptions;
  /** Evaluate the peer after the handshake (certificate chain, names, fingerprints). */
  evaluate(policy: ConnectPolicy, socket: TLSSocket, server: ServerIdentity): TlsEvaluation;
  /** `Verified TLS connection established to host[addr]:25: TLSv1.3 with cipher ... (256/256 bits)` (without the service prefix). */
  summaryLine(evaluation: TlsEvaluation, server: ServerIdentity, reused: boolean): string;
  /** Drop cached contexts and session tickets (reload). */
  reset(): void;
  /**
   * What the connection cache key must add for a hop policy so that a cached
   * session is never reused across a change of a published policy (an
   * MTA-STS policy with a new id may list other MX hosts). Empty when nothing.
   */
  reuseTag?(hop: ConnectPolicy): string;
}
