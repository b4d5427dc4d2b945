/**
 * tls.ts — the SMTP server's TLS settings: smtpd_tls_security_level, the
 * certificate and key (smtpd_tls_chain_files, or smtpd_tls_cert_file +
 * smtpd_tls_key_file), protocol and cipher-grade mapping from Postfix syntax
 * to Node's secure context, and the session summary used in logs and the
 * Received: header.
 *
 * Contract:
 * - `serverTlsSettings(config)` reads the files synchronously and builds one
 *   SecureContext per configuration (reused by every session). Problems are
 *   ConfigErrors naming the parameter and the file. With level `may` and no
 *   certificate, TLS is off and a warning is returned (Postfix logs a warning
 *   and does not offer STARTTLS); with `encrypt` or wrapper mode a missing
 *   certificate is an error.
 * - Protocols (`smtpd_tls_protocols`, or `smtpd_tls_mandatory_protocols` at
 *   level encrypt): `>=TLSv1.2`, `<=TLSv1.3`, and exclusions `!SSLv2, !SSLv3,
 *   !TLSv1, !TLSv1.1` become a Node minVersion/maxVersion (exclusions must
 *   leave a contiguous range; SSLv2/SSLv3 are never available).
 * - Cipher grades (`smtpd_tls_ciphers` / `smtpd_tls_mandatory_ciphers`):
 *   `high` → OpenSSL `HIGH:!aNULL:!MD5`; `medium`, `low`, `export`, `null`
 *   → Node's default list (deliberate: we never enable weaker ciphers);
 *   `smtpd_tls_exclude_ciphers` items are appended as `!item`.
 *
 * Not here: the STARTTLS command and the buffer discard (session.ts), client
 * certificates (smtpd_tls_ask_ccert: not implemented).
 */
import { readSecretFileSync } from '../../lib/secret-files.ts';
import { createSecureContext, DEFAULT_CIPHERS } from 'node:tls';
import type { SecureContext, SecureVersion, TLSSocket } from 'node:tls';
import { ConfigError } from '../../lib/errors.ts';
import type { Config } from '../../config/types.ts';

export type ServerTlsLevel = 'none' | 'may' | 'encrypt';

export interface ServerTls {
  readonly level: ServerTlsLevel;
  /** smtpd_tls_wrappermode: TLS from the first byte (port 465). */
  readonly wrapperMode: boolean;
  /** undefined when TLS cannot be offered (level none, or may without a certificate). */
  readonly context: SecureContext | undefined;
  readonly receivedHeader: boolean;
  readonly warnings: readonly string[];
}

const VERSIONS: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** postconf(5) smtpd_tls_security_level; the obsolete smtpd_use_tls/smtpd_enforce_tls when it is empty. */
export function tlsLevel(config: Config): ServerTlsLevel {
  const v = config.get('smtpd_tls_security_level').trim().toLowerCase();
  if (v === '') {
    if (config.get('smtpd_enforce_tls') === 'yes') return 'encrypt';
    return config.get('smtpd_use_tls') === 'yes' ? 'may' : 'none';
  }
  if (v === 'none' || v === 'may' || v === 'encrypt') return v;
  throw new ConfigError(`invalid smtpd_tls_security_level value "${v}": use none, may or encrypt`);
}

/** Map Postfix protocol syntax to a Node version range. */
export function parseProtocols(text: string, param = 'smtpd_tls_protocols'): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  let lo = 0;
  let hi = VERSIONS.length - 1;
  const excluded = new Set<number>();
  const items = text.split(/[\s,:]+/).filter((s) => s !== '');
  const index = (name: string): number => {
    const i = VERSIONS.findIndex((v) => v.toLowerCase() === name.toLowerCase());
    if (i < 0 && !/^sslv[23]$/i.test(name)) throw new ConfigError(`${param}: unknown protocol "${name}": use SSLv3, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3`);
    return i;
  };
  const included: number[] = [];
  for (const item of items) {
    if (item.startsWith('>=')) lo = Math.max(lo, index(item.slice(2)));
    else if (item.startsWith('<=')) {
      const i = index(item.slice(2));
      if (i >= 0) hi = Math.min(hi, i);
    } else if (item.startsWith('!')) {
      const i = index(item.slice(1));
      if (i >= 0) excluded.add(i);
    } else {
      const i = index(item);
      if (i >= 0) included.push(i);
    }
  }
  // A plain list ("TLSv1.2 TLSv1.3") means exactly those.
  if (included.length > 0) {
    lo = Math.max(lo, Math.min(...included));
    hi = Math.min(hi, Math.max(...included));
  }
  while (excluded.has(lo) && lo <= hi) lo++;
  while (excluded.has(hi) && hi >= lo) hi--;
  for (let i = lo; i <= hi; i++) {
    if (excluded.has(i)) throw new ConfigError(`${param} = ${text}: exclusions must leave a contiguous range of TLS versions`);
  }
  if (lo > hi) throw new ConfigError(`${param} = ${text}: no TLS protocol version is left enabled`);
  return { minVersion: VERSIONS[lo]!, maxVersion: VERSIONS[hi]! };
}

/** Map a Postfix cipher grade to an OpenSSL cipher list. */
export function cipherList(grade: string, exclude: readonly string[], param = 'smtpd_tls_ciphers'): string {
  const g = grade.trim().toLowerCase();
  let base: string;
  if (g === 'high') base = 'HIGH:!aNULL:!MD5';
  else if (g === 'medium' || g === 'low' || g === 'export' || g === 'null' || g === '') base = DEFAULT_CIPHERS;
  else throw new ConfigError(`${param}: unknown cipher grade "${grade}": use high, medium, low, export or null`);
  return [base, ...exclude.map((e) => `!${e}`)].join(':');
}

function readPem(path: string, param: string): string {
  try {
    // Root-only keys: read through the master's root helper once it runs as mail_owner.
    return readSecretFileSync(path);
  } catch (e) {
    throw new ConfigError(`${param}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; check the file name and its permissions`);
  }
}

function pemBlocks(text: string, kind: 'key' | 'cert'): string[] {
  const re = kind === 'key' ? /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/g : /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
  return text.match(re) ?? [];
}

/** Key and certificate chain from smtpd_tls_chain_files, or smtpd_tls_cert_file/key_file. */
function keyAndChain(config: Config): { key: string; cert: string; source: string } | undefined {
  const chain = config.getList('smtpd_tls_chain_files');
  if (chain.length > 0) {
    const text = chain.map((f) => readPem(f, 'smtpd_tls_chain_files')).join('\n');
    const keys = pemBlocks(text, 'key');
    const certs = pemBlocks(text, 'cert');
    if (keys.length === 0 || certs.length === 0) {
      throw new ConfigError(`smtpd_tls_chain_files: ${chain.join(', ')} must hold a private key followed by its certificate chain (PEM)`);
    }
    return { key: keys[0]!, cert: certs.join('\n'), source: 'smtpd_tls_chain_files' };
  }
  const certFile = config.get('smtpd_tls_cert_file');
  if (certFile === '') return undefined;
  const keyFile = config.get('smtpd_tls_key_file') || certFile;
  const certs = pemBlocks(readPem(certFile, 'smtpd_tls_cert_file'), 'cert');
  const keys = pemBlocks(readPem(keyFile, 'smtpd_tls_key_file'), 'key');
  if (certs.length === 0) throw new ConfigError(`smtpd_tls_cert_file: no PEM certificate in ${certFile}`);
  if (keys.length === 0) throw new ConfigError(`smtpd_tls_key_file: no PEM private key in ${keyFile}`);
  return { key: keys[0]!, cert: certs.join('\n'), source: 'smtpd_tls_cert_file' };
}

/** Build the server's TLS settings for one configuration. */
export function serverTlsSettings(config: Config): ServerTls {
  const level = tlsLevel(config);
  const wrapperMode = config.getBool('smtpd_tls_wrappermode');
  const receivedHeader = config.getBool('smtpd_tls_received_header');
  const warnings: string[] = [];
  if (level === 'none' && !wrapperMode) return { level, wrapperMode, context: undefined, receivedHeader, warnings };
  const material = keyAndChain(config);
  if (!material) {
    if (level === 'encrypt' || wrapperMode) {
      throw new ConfigError(
        `smtpd_tls_security_level = ${level}${wrapperMode ? ' with smtpd_tls_wrappermode = yes' : ''} needs a server certificate: set smtpd_tls_chain_files (or smtpd_tls_cert_file and smtpd_tls_key_file)`,
      );
    }
    warnings.push('No server certs available. TLS won\'t be enabled: set smtpd_tls_chain_files or smtpd_tls_cert_file');
    return { level: 'none', wrapperMode, context: undefined, receivedHeader, warnings };
  }
  const mandatory = level === 'encrypt' || wrapperMode;
  const protoParam = mandatory ? 'smtpd_tls_mandatory_protocols' : 'smtpd_tls_protocols';
  const cipherParam = mandatory ? 'smtpd_tls_mandatory_ciphers' : 'smtpd_tls_ciphers';
  const excludes = [...config.getList('smtpd_tls_exclude_ciphers'), ...(mandatory ? config.getList('smtpd_tls_mandatory_exclude_ciphers') : [])];
  const { minVersion, maxVersion } = parseProtocols(config.get(protoParam), protoParam);
  let context: SecureContext;
  try {
    context = createSecureContext({ key: material.key, cert: material.cert, minVersion, maxVersion, ciphers: cipherList(config.get(cipherParam), excludes, cipherParam) });
  } catch (e) {
    throw new ConfigError(`${material.source}: cannot use the key and certificate: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { level, wrapperMode, context, receivedHeader, warnings };
}

export interface TlsSummary {
  readonly protocol: string;
  readonly cipher: string;
  readonly bits: number;
  readonly algBits: number;
}

/** Secret bits of a cipher suite, from its name (Node does not report them). */
function cipherBits(name: string): number {
  if (/CHACHA20|AES_?256|AES256|CAMELLIA256/i.test(name)) return 256;
  if (/AES_?128|AES128|CAMELLIA128/i.test(name)) return 128;
  if (/3DES|DES-CBC3/i.test(name)) return 112;
  return 0;
}

/** What an established TLS session negotiated. */
export function tlsSummary(socket: TLSSocket): TlsSummary {
  const c = socket.getCipher();
  const name = c.standardName ?? c.name;
  const bits = cipherBits(name);
  return { protocol: socket.getProtocol() ?? 'unknown', cipher: c.name, bits, algBits: bits };
}

/** Postfix's log line: `Anonymous TLS connection established from host[addr]: TLSv1.3 with cipher X (256/256 bits)`. */
export function tlsEstablishedLine(namaddr: string, t: TlsSummary): string {
  return `Anonymous TLS connection established from ${namaddr}: ${t.protocol} with cipher ${t.cipher} (${t.bits}/${t.algBits} bits)`;
}
