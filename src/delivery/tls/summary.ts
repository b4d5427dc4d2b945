/**
 * summary.ts — the TLS summary line (tls_misc.c tls_log_summary()):
 *
 *   Verified TLS connection established to mx.example.com[192.0.2.25]:25: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits) key-exchange X25519 server-signature ECDSA (prime256v1) server-digest SHA256
 *
 * and smtp_tls_loglevel. Contract: pure except `summaryExtra(socket)`, which
 * reads what Node exposes: getEphemeralKeyInfo() (key exchange) and the
 * peer certificate's key (signature algorithm and size). OpenSSL's exact
 * signature scheme is not exposed by Node (getSharedSigalgs() is empty on a
 * client): the digest is inferred from the key (see below).
 *
 * Not here: deciding the trust word (verify.ts), writing the log (the mail
 * log subscriber, reports/maillog-subscriber.ts, from the session record).
 */
import type { TLSSocket } from 'node:tls';
import type { Config } from '../../config/types.ts';
import type { TlsSessionRecord } from '../outcome.ts';
import type { ServerIdentity, TlsEvaluation } from './types.ts';

/** SSL_CIPHER_get_bits() for the cipher names OpenSSL uses: (bits, algorithm bits). */
export function cipherBits(cipher: string): { cipherBits: number; cipherAlgBits: number } {
  const c = cipher.toUpperCase();
  let b: number;
  if (/NULL/.test(c) && !/AES|CHACHA|CAMELLIA|ARIA|DES|RC4|SEED/.test(c)) b = 0;
  else if (/AES_?256|CHACHA20|CAMELLIA_?256|ARIA_?256/.test(c)) b = 256;
  else if (/AES_?128|CAMELLIA_?128|ARIA_?128|SEED|RC4|IDEA/.test(c)) b = 128;
  else if (/DES-CBC3|3DES|DES_EDE3/.test(c)) return { cipherBits: 112, cipherAlgBits: 168 };
  else if (/DES/.test(c)) b = 56;
  else b = 0;
  return { cipherBits: b, cipherAlgBits: b };
}

/**
 * ` key-exchange ... server-signature ... server-digest ...` as far as Node
 * shows it. tls_misc.c tls_get_signature_params() fills these only for TLS
 * 1.3 ("if (SSL_version(ssl) < TLS1_3_VERSION) return;"), and names EC
 * groups as OpenSSL 3 does (EVP_PKEY_get_group_name(): `prime256v1`, not
 * `P-256`): `key-exchange X25519`, `key-exchange ECDHE (prime256v1)`,
 * `server-signature ECDSA (prime256v1)`. A resumed session names no server
 * key: Node shows no peer certificate then, and Postfix ≥ 3.10 says nothing
 * either ("Resumption makes no use of signature keys or digests",
 * tls_get_signature_params(); 3.7 still named the key kept in the session).
 */
export function summaryExtra(socket: TLSSocket): string {
  if (socket.getProtocol() !== 'TLSv1.3') return '';
  let out = '';
  const kex = socket.getEphemeralKeyInfo();
  if (kex && typeof kex === 'object' && 'type' in kex) {
    const k = kex as { type?: string; name?: string; size?: number };
    // X25519/X448 are key types of their own (OBJ_nid2sn); NIST curves are "ECDHE (group)".
    if (k.type === 'ECDH' && k.name) out += /^X(25519|448)$/.test(k.name) ? ` key-exchange ${k.name}` : ` key-exchange ECDHE (${k.name})`;
    else if (k.type === 'DH' && k.size) out += ` key-exchange DHE (${k.size} bits)`;
  }
  const cert = socket.getPeerCertificate();
  if (cert && cert.raw) {
    const c = cert as { nistCurve?: string; asn1Curve?: string; bits?: number; modulus?: string };
    // Node exposes neither the peer's signature scheme nor (client side) the
    // shared list: infer it — ECDSA signs with the curve's hash (RFC 8446
    // §4.2.3 ecdsa_secp256r1_sha256 ...), RSA with RSA-PSS/SHA256 (OpenSSL's
    // first preference since 1.1.1).
    const curve = c.asn1Curve ?? c.nistCurve;
    if (curve) {
      const hash = /384/.test(curve) ? 'SHA384' : /521/.test(curve) ? 'SHA512' : 'SHA256';
      out += ` server-signature ECDSA (${curve}) server-digest ${hash}`;
    } else if (c.modulus && c.bits) {
      out += ` server-signature RSA-PSS (${c.bits} bits) server-digest SHA256`;
    }
  }
  return out;
}

/** What the summary line says: an evaluation, or a session record's TLS facts. */
export type SummaryFacts = Pick<TlsEvaluation, 'trust' | 'protocol' | 'cipher' | 'cipherBits' | 'cipherAlgBits' | 'summaryExtra'>;

/** `%s TLS connection %s to %s: %s with cipher %s (%d/%d bits)` + extras. */
export function formatSummary(evaluation: SummaryFacts, server: Pick<ServerIdentity, 'hostname' | 'address' | 'port'>, reused: boolean): string {
  return (
    `${evaluation.trust} TLS connection ${reused ? 'reused' : 'established'} to ${server.hostname}[${server.address}]:${server.port}: ` +
    `${evaluation.protocol} with cipher ${evaluation.cipher} (${evaluation.cipherBits}/${evaluation.cipherAlgBits} bits)` +
    (evaluation.summaryExtra ?? '')
  );
}

/** The summary line of a session record (delivery/outcome.ts); undefined when no handshake completed. */
export function recordSummaryLine(record: TlsSessionRecord): string | undefined {
  return record.tls ? formatSummary(record.tls, record.server, record.tls.reused) : undefined;
}

/**
 * smtp_tls_loglevel as a number (Postfix ≥3.12 also allows `1,trace`: the
 * first number counts). The summary line is logged at ≥ 1.
 */
export function tlsLogLevel(config: Config, prefix = 'smtp'): number {
  const m = /^\s*(\d+)/.exec(config.get(`${prefix}_tls_loglevel`));
  return m ? Number(m[1]) : 0;
}
