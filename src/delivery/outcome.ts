/**
 * outcome.ts — the plain-data records that leave a delivery attempt: which
 * TLS policy applied and where it came from, and what every TLS session
 * (or attempt at one) gave. They cross the worker-thread boundary by
 * structured clone, so they hold no functions, no sockets, no class
 * instances — only strings, numbers, booleans, arrays and plain objects.
 *
 * Consumers subscribe to them (reports/events.ts); none of them parses log
 * text:
 *   - the mail log derives the `Verified TLS connection established to ...`
 *     summary line and the `tls=` field from a record (maillog subscriber);
 *   - TLS-RPT (RFC 8460) counts sessions per policy domain and result type;
 *   - metrics, the posture report and `tls proof` read the same fields.
 *
 * Contract:
 * - One `TlsSessionRecord` per connection the SMTP client opened or reused
 *   for a delivery, and one for every server it decided not to connect to
 *   for a policy reason (an MTA-STS enforce policy that does not list the MX,
 *   a TLSA lookup failure): `tls` is absent then, `result` says why.
 * - `result` is decided where the failure is decided (the policy engine,
 *   enforce.ts, the DANE and MTA-STS sources) and never re-derived from a
 *   reason text.
 * - A failure recorded under an MTA-STS `testing` policy (or at `may`) does
 *   not mean the mail was not sent: `enforced` says whether the failure
 *   stopped delivery to that server.
 *
 * Not here: recipient outcomes (delivery/types.ts RecipientOutcome, which
 * points at its session by index), the policy decision itself (delivery/tls/).
 */
import type { TlsLevel, TlsTrust } from './tls/names.ts';

/** RFC 8460 §4.3 result types (§4.3.1 negotiation, §4.3.2 policy, §4.3.2.1 DANE, §4.3.2.2 MTA-STS). */
export type TlsRptResultType =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'tlsa-invalid'
  | 'dnssec-invalid'
  | 'dane-required'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

export const TLSRPT_RESULT_TYPES: readonly TlsRptResultType[] = Object.freeze([
  'starttls-not-supported', 'certificate-host-mismatch', 'certificate-expired', 'certificate-not-trusted',
  'validation-failure', 'tlsa-invalid', 'dnssec-invalid', 'dane-required',
  'sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid',
]);

/**
 * Which source decided the effective policy (the winner of the combiner):
 * `default` = main.cf smtp_tls_security_level; `table` = an
 * smtp_tls_policy_maps entry; `per-site` = the obsolete smtp_tls_per_site;
 * `dane` = usable TLSA records; `mta-sts` = a published RFC 8461 policy;
 * `tls-required-no` = the message's `TLS-Required: No` header (RFC 8689 §5).
 */
export type PolicySourceName = 'default' | 'table' | 'per-site' | 'dane' | 'mta-sts' | 'tls-required-no';

/** RFC 8460 §4.4 policy-type. */
export type TlsRptPolicyType = 'sts' | 'tlsa' | 'no-policy-found';

/** The policy a session ran under, as a report names it. */
export interface AppliedPolicy {
  readonly source: PolicySourceName;
  /** RFC 8460 policy-type: `tlsa` when DANE applied, `sts` when MTA-STS did, else `no-policy-found`. */
  readonly type: TlsRptPolicyType;
  /** RFC 8460 policy-domain: the domain that published (or would publish) the policy — the next-hop domain, lower case, A-label form. */
  readonly domain: string;
  /** RFC 8460 policy-string: the MTA-STS policy lines, or the TLSA records in presentation form (`3 1 1 ab12...`); empty otherwise. */
  readonly strings: readonly string[];
  /** RFC 8460 mx-host: the MTA-STS `mx:` patterns; empty otherwise. */
  readonly mxHostPatterns: readonly string[];
  /** The level the connection enforced (`may` for `dane` without TLSA). */
  readonly level: TlsLevel;
  /** The level configured before a source changed it (the `dane` of `tls=dane:may`); equal to `level` otherwise. */
  readonly configuredLevel: TlsLevel;
  /** The smtp_tls_policy_maps / per-site entry that decided, as found. */
  readonly tableEntry?: { readonly table: string; readonly key: string; readonly value: string };
  /** The MTA-STS mode when `source` is `mta-sts` (`testing`: failures are recorded, delivery proceeds). */
  readonly stsMode?: 'enforce' | 'testing';
  /** The MTA-STS policy id (the TXT record's `id=`), when `source` is `mta-sts`. */
  readonly stsId?: string;
  /** DANE with an insecure MX RRset (smtp_tls_dane_insecure_mx_policy = dane): Postfix's `halfdane`, `tls=dane:halfdane`. */
  readonly halfDane?: boolean;
}

/** What a completed handshake gave. */
export interface TlsFacts {
  /** `TLSv1.3`. */
  readonly protocol: string;
  /** OpenSSL name: `TLS_AES_256_GCM_SHA384`. */
  readonly cipher: string;
  readonly cipherBits: number;
  readonly cipherAlgBits: number;
  /** Postfix's trust word (tls_misc.c tls_log_summary). */
  readonly trust: TlsTrust;
  /** The connection was reused from the connection cache (`... TLS connection reused to ...`). */
  readonly reused: boolean;
  /** tls_log_summary's tail after the bits: ` key-exchange X25519 server-signature ...`. */
  readonly summaryExtra?: string;
  /** The peer's leaf certificate, when it sent one. */
  readonly peer?: {
    /** SHA-256 of the DER certificate, colon-separated upper-case hex (Postfix's form). */
    readonly certSha256: string;
    /** SHA-256 of the DER SubjectPublicKeyInfo, same form. */
    readonly pkeySha256: string;
    /** `/CN=mx.example.com` (X509_NAME_oneline form). */
    readonly subject: string;
    readonly issuer: string;
    /** The certificate name that satisfied the policy's name check, when one was required and matched. */
    readonly matchedName?: string;
    /** The TLSA record (presentation form) that matched, when DANE applied. */
    readonly matchedTlsa?: string;
    /** Not-after, ms since the epoch. */
    readonly validTo: number;
  };
}

export type SessionResult =
  | { readonly kind: 'success' }
  /** No TLS and none was required (`none`, or `may` where STARTTLS was not offered/failed and plaintext was allowed). */
  | { readonly kind: 'plaintext'; readonly type?: TlsRptResultType }
  | {
      readonly kind: 'failure';
      readonly type: TlsRptResultType;
      /** Postfix's reason text (`Server certificate not verified`, `TLS is required, but was not offered by host ...`). */
      readonly reason: string;
      /** The failure stopped delivery to this server (false under MTA-STS `testing`). */
      readonly enforced: boolean;
    };

/**
 * RFC 8689 REQUIRETLS on one session (added with issue 12; optional): the
 * `smtp_requiretls_policy` action that applied and where the `requiretls`
 * feature of the tls= field ended (Postfix pol_stats: `requiretls`,
 * `requiretls:nocertmatch`, `!requiretls:nostarttls`, `requiretls?` ...).
 * Plain facts, never the formatted text (delivery/tls/requiretls.ts formats).
 */
export interface RequireTlsStatus {
  readonly policy: 'enforce' | 'opportunistic+starttls' | 'opportunistic';
  /** What the feature was downgraded to; absent when fully met or undecided. */
  readonly final?: 'nocertmatch' | 'nostarttls' | 'noencryption' | 'none';
  /** `violation`: REQUIRETLS stopped delivery on this session; `undecided`: the session ended before it was decided. */
  readonly status: 'undecided' | 'compliant' | 'violation';
  /** `REQUIRETLS` went out on MAIL FROM (the server offered it inside TLS). */
  readonly sent: boolean;
}

/** One TLS session, or one decision not to open one. */
export interface TlsSessionRecord {
  /** When the session's outcome was known, ms since the epoch. */
  readonly time: number;
  /** The next hop the session served, verbatim. */
  readonly nexthop: string;
  readonly policy: AppliedPolicy;
  readonly server: {
    /** MX host name (or the [host] of the next hop). */
    readonly hostname: string;
    readonly address: string;
    readonly port: number;
    /** The host name from the server's greeting, when one was read (RFC 8460 receiving-mx-helo). */
    readonly helo?: string;
  };
  /** Our local address on the connection (RFC 8460 sending-mta-ip). */
  readonly sendingIp?: string;
  /** Absent when no handshake completed. */
  readonly tls?: TlsFacts;
  readonly result: SessionResult;
  /** REQUIRETLS on this session; absent when the message did not ask for it (or it was disabled for this next hop). */
  readonly requireTls?: RequireTlsStatus;
  /**
   * Certificate verification lines in Postfix's words, as smtp_tls_loglevel
   * selects them, logged before the summary line (`certificate verification
   * failed for mx[1.2.3.4]:25: self-signed certificate`); for a failed
   * handshake, tls_client.c's `SSL_connect error to mx[1.2.3.4]:25: ...`
   * (with OpenSSL's `warning: TLS library problem: ...` lines) and, before a
   * plaintext retry at `may`, the `QUEUEID: Cannot start TLS: handshake
   * failure` note. The summary line itself is derived from `tls` +
   * `server`, not stored.
   */
  readonly logLines: readonly string[];
}
