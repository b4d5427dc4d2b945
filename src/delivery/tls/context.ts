/**
 * context.ts — SecureContexts for the SMTP client, built once per policy
 * shape (protocol range, cipher string, trust anchors) and cached: building
 * one with a CA bundle costs ~20 ms, so never per connection.
 *
 * Trust material (postconf(5)): smtp_tls_CAfile, the certificates in
 * smtp_tls_CApath, and Node's default roots only with
 * `tls_append_default_CA = yes` (Postfix's default is no: without any CA
 * configured nothing is "Trusted"). At verify/secure, `tafile=` /
 * smtp_tls_trust_anchor_file replace that trust (Postfix ≥2.11). A policy
 * with `trustRoots: 'sts'` (MTA-STS, RFC 8461 §4.2) trusts the roots
 * `secure` uses for MTA-STS: smtp_tls_CAfile / smtp_tls_CApath, or the
 * system's roots (Node's bundled roots) when both are empty. Client
 * certificate: smtp_tls_chain_files (keys and certificates, in order), else
 * smtp_tls_cert_file + smtp_tls_key_file.
 *
 * Contract: `get(policy)` returns the cached context or builds it; it throws
 * an Error with a one-line message when OpenSSL rejects the cipher string or
 * a file cannot be read — policy decisions turn that into `client TLS
 * configuration problem`. `clear()` drops everything (reload).
 * Node's own checks are never used to decide (rejectUnauthorized is false
 * in connect options; verify.ts decides).
 *
 * Not here: per-connection options (engine.ts), session tickets (session-cache.ts).
 */
import { createSecureContext, rootCertificates, type SecureContext } from 'node:tls';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { Config } from '../../config/types.ts';
import type { ConnectPolicy } from './types.ts';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/**
 * Key-exchange groups, cheapest first (bench/relay-tls.ts measures them: an X25519 key
 * share costs the client about half of a P-256 one). The set is OpenSSL 3's default
 * set — nothing a server may need is dropped — in Postfix's tls_eecdh_auto_curves order,
 * FFDHE last. Signature algorithms keep OpenSSL's order (ECDSA before RSA-PSS): an RSA
 * signature is cheaper for the client to verify but costs the receiver ~9× an ECDSA one
 * to make, and with connection reuse a full handshake is rare.
 */
export const CLIENT_GROUPS = 'X25519:prime256v1:X448:secp521r1:secp384r1:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192';

/** Split PEM text into certificate and private-key blocks. */
export function pemBlocks(text: string): { certs: string[]; keys: string[] } {
  const certs: string[] = [];
  const keys: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] === 'CERTIFICATE' || m[1] === 'TRUSTED CERTIFICATE') certs.push(m[0]);
    else if (m[1]!.endsWith('PRIVATE KEY')) keys.push(m[0]);
  }
  return { certs, keys };
}

/** The cache key of a policy's context. */
export function contextKey(policy: ConnectPolicy): string {
  return [policy.minProtocol ?? '', policy.maxProtocol ?? '', policy.ciphers, policy.trustAnchorFiles.join('\n'), legacyAllowed(policy) ? 'legacy' : '', policy.trustRoots ?? ''].join('|');
}

/**
 * OpenSSL 3 refuses TLSv1/TLSv1.1 (and SHA-1 signatures, small keys) at its
 * default security level. Postfix's `>=TLSv1` says they are allowed; sealpost
 * lowers the level only where any encryption beats none — may and encrypt —
 * and keeps OpenSSL's floor wherever the peer must be authenticated.
 */
function legacyAllowed(policy: ConnectPolicy): boolean {
  return (policy.level === 'may' || policy.level === 'encrypt') && (policy.minProtocol === 'TLSv1' || policy.minProtocol === 'TLSv1.1');
}

export class ContextCache {
  private contexts = new Map<string, SecureContext>();
  private caCerts: string[] | undefined;
  private clientCred: { key: string[]; cert: string[] } | undefined | null;

  constructor(
    private readonly config: Config,
    private readonly prefix = 'smtp',
  ) {}

  private path(p: string): string {
    return isAbsolute(p) ? p : resolve(this.config.configDir, p);
  }

  /** CAfile + CApath (+ Node's roots with tls_append_default_CA), read once. */
  caBundle(): string[] {
    if (this.caCerts) return this.caCerts;
    const out: string[] = [];
    const cafile = this.config.get(`${this.prefix}_tls_CAfile`).trim();
    if (cafile !== '') out.push(...readPemCerts(this.path(cafile), `${this.prefix}_tls_CAfile`));
    const capath = this.config.get(`${this.prefix}_tls_CApath`).trim();
    if (capath !== '') {
      const dir = this.path(capath);
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch (err) {
        throw new Error(`${this.prefix}_tls_CApath: cannot read directory ${dir}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      for (const n of names) {
        const f = join(dir, n);
        try {
          if (!statSync(f).isFile()) continue;
        } catch {
          continue;
        }
        out.push(...pemBlocks(readFileSync(f, 'utf8')).certs);
      }
    }
    if (this.config.getBool('tls_append_default_CA')) out.push(...rootCertificates);
    this.caCerts = out;
    return out;
  }

  /** The MTA-STS roots: CAfile + CApath when either is set, else the system's roots (Node's bundle). */
  stsRoots(): string[] {
    const configured = this.config.get(`${this.prefix}_tls_CAfile`).trim() !== '' || this.config.get(`${this.prefix}_tls_CApath`).trim() !== '';
    return configured ? this.caBundle() : [...rootCertificates];
  }

  /** The client certificate and key, or null when none is configured. */
  private clientCredentials(): { key: string[]; cert: string[] } | null {
    if (this.clientCred !== undefined) return this.clientCred;
    const p = this.prefix;
    const chainFiles = this.config.getList(`${p}_tls_chain_files`);
    let cred: { key: string[]; cert: string[] } | null = null;
    if (chainFiles.length > 0) {
      const key: string[] = [];
      const cert: string[] = [];
      for (const f of chainFiles) {
        const b = pemBlocks(readText(this.path(f), `${p}_tls_chain_files`));
        key.push(...b.keys);
        cert.push(...b.certs);
      }
      if (key.length === 0 || cert.length === 0) throw new Error(`${p}_tls_chain_files: no private key and certificate found in ${chainFiles.join(', ')}`);
      // Node pairs one key with one chain; the first key and its chain (leaf first) are used.
      cred = { key: [key[0]!], cert: [cert.join('\n')] };
    } else {
      const certFile = this.config.get(`${p}_tls_cert_file`).trim();
      if (certFile !== '') {
        const keyFile = this.config.get(`${p}_tls_key_file`).trim() || certFile;
        const cert = pemBlocks(readText(this.path(certFile), `${p}_tls_cert_file`)).certs;
        const key = pemBlocks(readText(this.path(keyFile), `${p}_tls_key_file`)).keys;
        if (cert.length === 0) throw new Error(`${p}_tls_cert_file: no certificate found in ${certFile}`);
        if (key.length === 0) throw new Error(`${p}_tls_key_file: no private key found in ${keyFile}`);
        cred = { key: [key[0]!], cert: [cert.join('\n')] };
      }
    }
    this.clientCred = cred;
    return cred;
  }

  /** The context for a policy (cached by shape). Throws a one-line Error when it cannot be built. */
  get(policy: ConnectPolicy): SecureContext {
    const key = contextKey(policy);
    const hit = this.contexts.get(key);
    if (hit) return hit;
    const ca = policy.trustAnchorFiles.length > 0 ? policy.trustAnchorFiles.flatMap((f) => readPemCerts(f, 'tafile'))
      : policy.trustRoots === 'sts' ? this.stsRoots() : this.caBundle();
    const cred = this.clientCredentials();
    let ciphers = policy.ciphers;
    if (legacyAllowed(policy)) ciphers += ':@SECLEVEL=0';
    let ctx: SecureContext;
    try {
      ctx = createSecureContext({
        // An empty array (not undefined) keeps Node from adding its default roots.
        ca,
        ciphers,
        ecdhCurve: CLIENT_GROUPS,
        ...(policy.minProtocol ? { minVersion: policy.minProtocol as 'TLSv1' } : {}),
        ...(policy.maxProtocol ? { maxVersion: policy.maxProtocol as 'TLSv1.3' } : {}),
        ...(cred ? { key: cred.key, cert: cred.cert } : {}),
      });
    } catch (err) {
      throw new Error(`cannot set up the TLS client context (ciphers "${policy.ciphers}"): ${(err as Error).message}`);
    }
    this.contexts.set(key, ctx);
    return ctx;
  }

  /** Number of contexts built (tests: one per shape). */
  get size(): number {
    return this.contexts.size;
  }

  clear(): void {
    this.contexts.clear();
    this.caCerts = undefined;
    this.clientCred = undefined;
  }
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

function readPemCerts(file: string, what: string): string[] {
  const certs = pemBlocks(readText(file, what)).certs;
  if (certs.length === 0) throw new Error(`${what}: no certificate found in ${file}`);
  return certs;
}
