/**
 * verify.ts — judge the server's certificate the way Postfix does
 * (tls_verify.c, tls_client.c): trust word, name checks, fingerprints, and
 * the verification log lines.
 *
 * - Chain trust comes from OpenSSL via Node (`authorized`/`authorizationError`
 *   computed against our own CA store — see context.ts), never from Node's
 *   checkServerIdentity (its wildcard rules are looser than Postfix's).
 * - Names (match_servername()): the certificate's DNS subjectAltNames, or its
 *   CommonName(s) when it has none; case-insensitive; a wildcard only as the
 *   whole leftmost label (`*.example.com` matches `mx.example.com`, never
 *   `example.com`, `a.b.example.com`, nor `f*.example.com`). Strategies:
 *   `hostname` (the MX host), `nexthop` (the next-hop domain), `dot-nexthop`
 *   (any subdomain of it), `example.com` (exact) and `.example.com` (at least
 *   one more label).
 * - Fingerprints: digest (smtp_tls_fingerprint_digest) of the DER certificate
 *   or of its DER public key (SubjectPublicKeyInfo), hex with or without colons.
 * - Trust words (tls_log_summary): Anonymous (no certificate), Untrusted
 *   (chain not trusted, or a required name or fingerprint did not match —
 *   Postfix checks both inside OpenSSL's verification), Trusted (chain
 *   trusted, no match required), Verified (matched at a level that requires
 *   matching).
 *
 * Contract: `evaluatePeer` is pure over PeerFacts (tests build them without a
 * socket); `peerFacts(socket)` extracts them from a connected TLSSocket.
 *
 * Not here: deciding what a failure means for delivery (enforce.ts).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { TlsFacts, TlsRptResultType } from '../outcome.ts';
import type { ServerIdentity, TlsEvaluation, ConnectPolicy, TlsTrust } from './types.ts';
import { mustMatch, mustPkix } from './level.ts';
import { NOT_VERIFIED, verifyLog } from './reasons.ts';
import { cipherBits, summaryExtra } from './summary.ts';

/** One certificate of the presented chain, leaf first. */
export interface CertFacts {
  readonly der: Buffer;
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer;
  readonly dnsNames: readonly string[];
  readonly commonNames: readonly string[];
  /** X509_NAME_oneline() form: `/C=US/O=Example/CN=Example CA`. */
  readonly issuer: string;
  readonly subject: string;
  readonly validFrom: number;
  readonly validTo: number;
}

export interface PeerFacts {
  readonly protocol: string;
  readonly cipher: string;
  /** The presented chain, leaf first; empty for an anonymous cipher. */
  readonly chain: readonly CertFacts[];
  /** OpenSSL's verdict against our CA store (Node: socket.authorized). */
  readonly authorized: boolean;
  /** Node's authorizationError code (`DEPTH_ZERO_SELF_SIGNED_CERT` ...). */
  readonly authorizationError?: string;
  readonly summaryExtra?: string;
}

export interface VerifyOptions {
  /** smtp_tls_fingerprint_digest. */
  readonly digest: string;
  /** smtp_tls_scert_verifydepth. */
  readonly maxDepth: number;
  /** smtp_tls_loglevel (the first number). */
  readonly logLevel: number;
  /** Extra facts from the policy entry (policy_failure=, mx_host_pattern=). */
  readonly policyFailure?: string;
  readonly mxHostPatterns?: readonly string[];
  readonly now?: number;
}

/** Does one certificate name match one expected name (Postfix match_servername() core)? */
export function nameMatches(certName: string, expected: string): boolean {
  const peer = certName.toLowerCase().replace(/\.$/, '');
  const want = expected.toLowerCase().replace(/\.$/, '');
  if (peer === '' || want === '') return false;
  if (want.startsWith('.')) {
    // `.example.com`: the peer name is in the domain with at least one more label.
    return want.length > 1 && peer.length > want.length && peer.endsWith(want);
  }
  if (peer === want) return true;
  // Wildcard: `*.` as the whole leftmost label matches any single-label host in the domain.
  if (peer.startsWith('*.') && peer.length > 2) {
    const dot = want.indexOf('.');
    return dot > 0 && want.slice(dot) === peer.slice(1);
  }
  return false;
}

/** The names a certificate is checked under: DNS SANs, else the CommonName(s). */
export function certNames(cert: Pick<CertFacts, 'dnsNames' | 'commonNames'>): readonly string[] {
  return cert.dnsNames.length > 0 ? cert.dnsNames : cert.commonNames;
}

/** Expand the match strategies of a policy for one server. */
export function expectedNames(match: readonly string[], nexthopDomain: string, hostname: string): string[] {
  return match.map((m) => {
    const l = m.toLowerCase();
    if (l === 'hostname') return hostname;
    if (l === 'nexthop') return nexthopDomain;
    if (l === 'dot-nexthop') return `.${nexthopDomain}`;
    return m;
  });
}

/** The first certificate name matching one of the expected names, or undefined. */
export function matchServerName(cert: Pick<CertFacts, 'dnsNames' | 'commonNames'>, expected: readonly string[]): string | undefined {
  for (const name of certNames(cert)) {
    if (expected.some((e) => nameMatches(name, e))) return name;
  }
  return undefined;
}

/** Colon-separated upper-case hex, as Postfix prints fingerprints. */
export function formatFingerprint(digest: Buffer): string {
  return [...digest].map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');
}

/** Fingerprint of the certificate and of its public key with `digest` (md5, sha1, sha256, sha512 ...). */
export function fingerprints(cert: Pick<CertFacts, 'der' | 'spki'>, digest: string): { cert: string; pkey: string } {
  return {
    cert: formatFingerprint(createHash(digest).update(cert.der).digest()),
    pkey: formatFingerprint(createHash(digest).update(cert.spki).digest()),
  };
}

/** Postfix ≥3.6: colons between the hex pairs are optional; case-insensitive. */
export function normalizeFingerprint(text: string): string {
  return text.replace(/:/g, '').toLowerCase();
}

/** The matched fingerprint (as configured), or undefined. */
export function matchFingerprint(cert: Pick<CertFacts, 'der' | 'spki'>, wanted: readonly string[], digest: string): string | undefined {
  const fp = fingerprints(cert, digest);
  const have = [normalizeFingerprint(fp.cert), normalizeFingerprint(fp.pkey)];
  return wanted.find((w) => have.includes(normalizeFingerprint(w)));
}

/** MTA-STS mx_host_pattern: exact, or `*.example.com` for one extra label (RFC 8461 §4.1). */
export function mxPatternMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase().replace(/\.$/, '');
  const h = host.toLowerCase().replace(/\.$/, '');
  if (p.startsWith('*.')) {
    const dot = h.indexOf('.');
    return dot > 0 && h.slice(dot) === p.slice(1);
  }
  return p === h;
}

/** OpenSSL verify error numbers and texts for Node's authorizationError codes. */
const OPENSSL_ERRORS: Readonly<Record<string, readonly [number, string]>> = {
  UNABLE_TO_GET_ISSUER_CERT: [2, 'unable to get issuer certificate'],
  UNABLE_TO_DECRYPT_CERT_SIGNATURE: [4, "unable to decrypt certificate's signature"],
  UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: [6, 'unable to decode issuer public key'],
  CERT_SIGNATURE_FAILURE: [7, 'certificate signature failure'],
  CERT_NOT_YET_VALID: [9, 'certificate is not yet valid'],
  CERT_HAS_EXPIRED: [10, 'certificate has expired'],
  ERROR_IN_CERT_NOT_BEFORE_FIELD: [13, "format error in certificate's notBefore field"],
  ERROR_IN_CERT_NOT_AFTER_FIELD: [14, "format error in certificate's notAfter field"],
  DEPTH_ZERO_SELF_SIGNED_CERT: [18, 'self-signed certificate'],
  SELF_SIGNED_CERT_IN_CHAIN: [19, 'self-signed certificate in certificate chain'],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: [20, 'unable to get local issuer certificate'],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: [21, 'unable to verify the first certificate'],
  CERT_CHAIN_TOO_LONG: [22, 'certificate chain too long'],
  CERT_REVOKED: [23, 'certificate revoked'],
  INVALID_CA: [24, 'invalid CA certificate'],
  PATH_LENGTH_EXCEEDED: [25, 'path length constraint exceeded'],
  INVALID_PURPOSE: [26, 'unsupported certificate purpose'],
  CERT_UNTRUSTED: [27, 'certificate not trusted'],
  CERT_REJECTED: [28, 'certificate rejected'],
};

/** tls_verify.c tls_log_verify_error(): the one line for the first verification error. */
export function verifyErrorLine(code: string, chain: readonly CertFacts[], where: string, now: number): string {
  const top = chain[chain.length - 1];
  switch (code) {
    case 'CERT_UNTRUSTED':
      return verifyLog.notTrusted(where);
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
      return verifyLog.selfSigned(where);
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
      // "There is no difference between issuing cert not provided and provided, but not found."
      return verifyLog.untrustedIssuer(where, top?.issuer ?? '<unknown>');
    case 'CERT_NOT_YET_VALID':
    case 'ERROR_IN_CERT_NOT_BEFORE_FIELD': {
      const i = chain.findIndex((c) => c.validFrom > now);
      return `${i > 0 ? 'CA' : 'server'} certificate verification failed for ${where}: certificate not yet valid`;
    }
    case 'CERT_HAS_EXPIRED':
    case 'ERROR_IN_CERT_NOT_AFTER_FIELD': {
      const i = chain.findIndex((c) => c.validTo < now);
      return `${i > 0 ? 'CA' : 'server'} certificate verification failed for ${where}: certificate has expired`;
    }
    case 'INVALID_PURPOSE':
      return verifyLog.notServer(where);
    default: {
      const [num, text] = OPENSSL_ERRORS[code] ?? [0, code];
      return verifyLog.generic(where, num, text);
    }
  }
}

/** The leaf's facts for the session record (outcome.ts TlsFacts.peer): SHA-256 fingerprints in Postfix's form. */
export function peerRecord(leaf: CertFacts, matchedName?: string): NonNullable<TlsFacts['peer']> {
  const sha = (b: Buffer): string => formatFingerprint(createHash('sha256').update(b).digest());
  return Object.freeze({
    certSha256: sha(leaf.der),
    pkeySha256: sha(leaf.spki),
    subject: leaf.subject,
    issuer: leaf.issuer,
    validTo: leaf.validTo,
    ...(matchedName !== undefined ? { matchedName } : {}),
  });
}

/** RFC 8460 §4.3 result type of an untrusted chain: expired, or not trusted. */
function chainFailureType(code: string | undefined): TlsRptResultType {
  return code === 'CERT_HAS_EXPIRED' || code === 'ERROR_IN_CERT_NOT_AFTER_FIELD' ? 'certificate-expired' : 'certificate-not-trusted';
}

const RESULT_TYPES = new Set<string>(['sts-policy-fetch-error', 'sts-policy-invalid', 'sts-webpki-invalid', 'validation-failure']);

/** Evaluate the peer under the policy. */
export function evaluatePeer(policy: ConnectPolicy, facts: PeerFacts, server: ServerIdentity, opts: VerifyOptions): TlsEvaluation {
  const where = `${server.hostname}[${server.address}]:${server.port}`;
  const now = opts.now ?? Date.now();
  const lines: string[] = [];
  const level = policy.level;
  const leaf = facts.chain[0];
  const base = {
    protocol: facts.protocol,
    cipher: facts.cipher,
    ...cipherBits(facts.cipher),
    ...(facts.summaryExtra ? { summaryExtra: facts.summaryExtra } : {}),
  };
  // tls_client.c: verification errors are logged when matching is required, or at loglevel ≥ 2.
  const logErrors = mustMatch(level) || opts.logLevel >= 2;
  const done = (trust: TlsTrust, failed: TlsRptResultType | false, matchedName?: string): TlsEvaluation =>
    Object.freeze({
      ...base, trust, logLines: Object.freeze(lines),
      ...(failed ? { failure: NOT_VERIFIED, failureType: failed } : {}),
      ...(leaf ? { peer: peerRecord(leaf, matchedName) } : {}),
    });

  if (!leaf) {
    // Anonymous cipher: nothing to verify; fails wherever a match is required.
    return done('Anonymous', mustMatch(level) ? 'certificate-not-trusted' : false);
  }

  // Chain trust (OpenSSL's verdict against our store) and depth.
  let trusted = facts.authorized;
  let untrustedBecause: TlsRptResultType = chainFailureType(facts.authorizationError);
  if (trusted && facts.chain.length - 1 > opts.maxDepth) {
    trusted = false;
    untrustedBecause = 'certificate-not-trusted';
    if (logErrors) lines.push(verifyLog.chainTooLong(where, opts.maxDepth));
  } else if (!trusted && logErrors && level !== 'fingerprint') {
    lines.push(verifyErrorLine(facts.authorizationError ?? 'CERT_UNTRUSTED', facts.chain, where, now));
  }

  // MTA-STS via a policy plugin: policy_failure= forces failure (Postfix ≥3.10).
  if (opts.policyFailure) {
    lines.push(`certificate verification failed for ${where}: external policy failure (${opts.policyFailure})`);
    return done('Untrusted', RESULT_TYPES.has(opts.policyFailure) ? (opts.policyFailure as TlsRptResultType) : 'validation-failure');
  }

  if (level === 'fingerprint') {
    // Fingerprint level: no CA trust, no expiry; the certificate or key digest must match.
    const fp = matchFingerprint(leaf, policy.match, opts.digest);
    if (fp === undefined) {
      // tls_client.c verify_extract_name(): the match is part of OpenSSL's verification,
      // so a miss leaves the peer untrusted (SSL_get_verify_result() != X509_V_OK).
      lines.push(verifyLog.noFingerprintMatch(where));
      return done('Untrusted', 'certificate-not-trusted');
    }
    if (opts.logLevel >= 2) lines.push(verifyLog.matchedFingerprint(where, fp));
    return done('Verified', false);
  }

  if (mustPkix(level)) return evaluatePkix(policy, leaf, server, opts, { trusted, untrustedBecause, where, lines, done });
  // may / encrypt: nothing required; the word reports what the chain is worth.
  return done(trusted ? 'Trusted' : 'Untrusted', false);
}

/** verify / secure: a trusted chain and a matching name (or MX pattern). */
function evaluatePkix(
  policy: ConnectPolicy, leaf: CertFacts, server: ServerIdentity, opts: VerifyOptions,
  s: { trusted: boolean; untrustedBecause: TlsRptResultType; where: string; lines: string[]; done: (t: TlsTrust, f: TlsRptResultType | false, m?: string) => TlsEvaluation },
): TlsEvaluation {
  if (!s.trusted) return s.done('Untrusted', s.untrustedBecause);
  // MTA-STS mx_host_pattern (smtp_tls_enforce_sts_mx_patterns): the MX must match a pattern and the cert the MX name.
  const patterns = opts.mxHostPatterns ?? [];
  if (patterns.length > 0 && !patterns.some((p) => mxPatternMatches(p, server.hostname))) {
    s.lines.push(`${s.where}: MX host name does not match any STS mx_host_pattern`);
    return s.done('Trusted', 'validation-failure');
  }
  const expected = patterns.length > 0 ? [server.hostname] : expectedNames(policy.match, policy.nexthopDomain, server.hostname);
  const name = matchServerName(leaf, expected);
  if (name === undefined) {
    // tls_client.c verify_extract_name(): "Any required name checks are now performed
    // internally in OpenSSL": a mismatch fails verification (num=62), the peer is Untrusted.
    s.lines.push(verifyLog.nameMismatch(s.where));
    return s.done('Untrusted', 'certificate-host-mismatch');
  }
  if (opts.logLevel >= 2) s.lines.push(verifyLog.matchedPeername(s.where, name));
  return s.done('Verified', false, name);
}

/** X509_NAME_oneline() of Node's `C=US\nCN=x` form. */
export function onelineName(text: string): string {
  return text
    .split('\n')
    .filter((s) => s !== '')
    .map((s) => `/${s}`)
    .join('');
}

/** CertFacts of one DER certificate. */
export function certFactsFromDer(der: Buffer): CertFacts {
  const x = new X509Certificate(der);
  const dnsNames = (x.subjectAltName ?? '')
    .split(/,\s*/)
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4));
  const commonNames = x.subject
    .split('\n')
    .filter((l) => l.startsWith('CN='))
    .map((l) => l.slice(3));
  return {
    der: x.raw,
    spki: x.publicKey.export({ type: 'spki', format: 'der' }),
    dnsNames,
    commonNames,
    issuer: onelineName(x.issuer),
    subject: onelineName(x.subject),
    validFrom: Date.parse(x.validFrom),
    validTo: Date.parse(x.validTo),
  };
}

/** The presented chain, leaf first (Node links issuerCertificate; a self-signed top links to itself). */
function peerChain(socket: TLSSocket): CertFacts[] {
  const leaf = socket.getPeerCertificate(true) as PeerCertificate & { issuerCertificate?: PeerCertificate };
  if (!leaf || !leaf.raw) return [];
  const out: CertFacts[] = [];
  const seen = new Set<string>();
  let c: (PeerCertificate & { issuerCertificate?: PeerCertificate }) | undefined = leaf;
  while (c && c.raw && !seen.has(c.fingerprint256) && out.length < 32) {
    seen.add(c.fingerprint256);
    out.push(certFactsFromDer(c.raw));
    c = c.issuerCertificate as typeof c;
  }
  return out;
}

/** The peer as remembered with a resumable session (see session-cache.ts). */
export interface RememberedPeer {
  readonly chain: readonly string[];
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

/**
 * Extract PeerFacts from a connected client TLSSocket. A resumed session has
 * no chain in Node: `remembered` (stored with the session) supplies it.
 */
export function peerFacts(socket: TLSSocket, remembered?: RememberedPeer): PeerFacts {
  const cipher = socket.getCipher();
  const base = { protocol: socket.getProtocol() ?? 'unknown', cipher: cipher?.name ?? 'unknown', summaryExtra: summaryExtra(socket) };
  const chain = peerChain(socket);
  if (chain.length === 0 && remembered && socket.isSessionReused()) {
    return {
      ...base,
      chain: remembered.chain.map((b64) => certFactsFromDer(Buffer.from(b64, 'base64'))),
      authorized: remembered.authorized,
      ...(remembered.authorizationError ? { authorizationError: remembered.authorizationError } : {}),
    };
  }
  const authErr = socket.authorizationError as unknown;
  return {
    ...base,
    chain,
    authorized: socket.authorized,
    ...(authErr ? { authorizationError: String((authErr as { code?: string }).code ?? authErr) } : {}),
  };
}

/** What to remember about the peer with its session. */
export function rememberPeer(facts: PeerFacts): RememberedPeer {
  return {
    chain: facts.chain.map((c) => c.der.toString('base64')),
    authorized: facts.authorized,
    ...(facts.authorizationError ? { authorizationError: facts.authorizationError } : {}),
  };
}
