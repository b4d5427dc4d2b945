/**
 * pki.ts (test harness) — a throw-away PKI made at test time with the
 * `openssl` CLI: a CA, server certificates for given names (signed by the
 * CA), an expired one, a self-signed one, and one for the wrong name.
 * Reusable by every TLS test (intake and delivery).
 *
 * Contract: `makePki(dir, names)` writes PEM files under `dir` and returns
 * their paths; each server entry has `key`, `cert` and `chain` (key followed
 * by the certificate and the CA, the smtpd_tls_chain_files layout). Keys are
 * EC P-256 so generation takes milliseconds. Throws when openssl fails.
 *
 * For chains and arbitrary names (DANE-TA needs the trust anchor in the
 * presented chain; MTA-STS needs `mta-sts.<domain>` and MX names):
 *   - `makeCa(dir, name, issuer?)` a root CA, or an intermediate CA signed by
 *     `issuer`;
 *   - `mintCert(dir, name, { names, issuer, chain, ... })` a server
 *     certificate for any names (or a self-signed one without `issuer`), whose
 *     `chain` file is key + leaf + the given CA certificates in order, with
 *     optional validity dates, EKU and CA flag;
 *   - `tlsaFor(certFile, usage, selector, matchingType)` the TLSA record that
 *     matches a certificate, in the lab DNS server's zone format.
 * File names are derived from `name`: use a distinct name per certificate.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ServerCert {
  readonly key: string;
  readonly cert: string;
  /** key + cert + CA, for smtpd_tls_chain_files. */
  readonly chain: string;
}

export interface TestPki {
  readonly caCert: string;
  readonly caKey: string;
  /** Valid, CA-signed, SAN = the given names. */
  readonly server: ServerCert;
  readonly expired: ServerCert;
  readonly selfSigned: ServerCert;
  readonly wrongName: ServerCert;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function newKey(dir: string, name: string): string {
  const key = join(dir, `${name}.key`);
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], dir);
  return key;
}

function sanConfig(dir: string, name: string, names: readonly string[], eku = 'serverAuth', keyUsage = 'digitalSignature'): string {
  const file = join(dir, `${name}.ext`);
  const san = names.length > 0 ? `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\n` : '';
  writeFileSync(file, `${san}basicConstraints=CA:FALSE\n${keyUsage ? `keyUsage=${keyUsage}\n` : ''}${eku ? `extendedKeyUsage=${eku}\n` : ''}`);
  return file;
}

function signed(dir: string, name: string, names: readonly string[], ca: { cert: string; key: string }, days: { start?: string; end?: string }, ext?: string, cn?: string): ServerCert {
  const key = newKey(dir, name);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn ?? names[0]}`, '-out', csr], dir);
  if (days.start || days.end) {
    // `openssl x509` (3.0) cannot back-date; `openssl ca` can (-startdate/-enddate).
    const cnf = join(dir, 'ca.cnf');
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(
      cnf,
      '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n',
    );
    openssl(['ca', '-batch', '-notext', '-config', cnf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert, '-extfile', ext ?? sanConfig(dir, name, names), '-startdate', days.start ?? '20200101000000Z', '-enddate', days.end ?? '20200201000000Z'], dir);
  } else {
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '30', '-out', cert, '-extfile', ext ?? sanConfig(dir, name, names)], dir);
  }
  return finish(dir, name, key, cert, ca.cert);
}

function finish(dir: string, name: string, key: string, cert: string, caCert: string | undefined): ServerCert {
  const chain = join(dir, `${name}.chain.pem`);
  writeFileSync(chain, readFileSync(key, 'utf8') + readFileSync(cert, 'utf8') + (caCert ? readFileSync(caCert, 'utf8') : ''));
  return { key, cert, chain };
}

/** Make the PKI under `dir` for server names `names` (first = CN). */
export function makePki(dir: string, names: readonly string[] = ['localhost', '127.0.0.1']): TestPki {
  const caKey = newKey(dir, 'ca');
  const caCert = join(dir, 'ca.crt');
  openssl(['req', '-x509', '-new', '-key', caKey, '-subj', '/CN=sealpost test CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caCert], dir);
  const ca = { cert: caCert, key: caKey };
  const server = signed(dir, 'server', names, ca, {});
  const wrongName = signed(dir, 'wrong-name', ['wrong.invalid'], ca, {});
  const expired = signed(dir, 'expired', names, ca, { start: '20200101000000Z', end: '20200201000000Z' });
  const ssKey = newKey(dir, 'self-signed');
  const ssCert = join(dir, 'self-signed.crt');
  openssl(['req', '-x509', '-new', '-key', ssKey, '-subj', `/CN=${names[0]}`, '-days', '30', '-addext', `subjectAltName=DNS:${names[0]}`, '-out', ssCert], dir);
  const selfSigned = finish(dir, 'self-signed', ssKey, ssCert, undefined);
  return { caCert, caKey, server, expired, selfSigned, wrongName };
}

// ------------------------------------------------------- chains and names

export interface CertAuthority {
  readonly cert: string;
  readonly key: string;
  /** The subject CN. */
  readonly name: string;
}

/** A root CA (no issuer) or an intermediate CA signed by `issuer`. */
export function makeCa(dir: string, name: string, issuer?: CertAuthority): CertAuthority {
  const cn = `sealpost test ${name}`;
  if (!issuer) {
    const key = newKey(dir, name);
    const cert = join(dir, `${name}.crt`);
    openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${cn}`, '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', cert], dir);
    return { cert, key, name: cn };
  }
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  const c = signed(dir, name, [], issuer, {}, ext, cn);
  return { cert: c.cert, key: c.key, name: cn };
}

export interface MintOptions {
  /** subjectAltName DNS names (IP addresses become IP SANs); the first is the CN unless `cn` is given. */
  readonly names: readonly string[];
  readonly cn?: string;
  /** The signing CA; without it the certificate is self-signed. */
  readonly issuer?: CertAuthority;
  /** CA certificates appended to the chain file after the leaf, in order (intermediates, then a root if wanted). */
  readonly chain?: readonly CertAuthority[];
  /** Validity as openssl ca takes it (`20200101000000Z`): back-dated or expired certificates. */
  readonly start?: string;
  readonly end?: string;
  /** extendedKeyUsage value (`serverAuth` by default; '' for none, `clientAuth` for the wrong purpose). */
  readonly eku?: string;
  /** keyUsage value (`digitalSignature` by default; '' for none). */
  readonly keyUsage?: string;
}

/** A server certificate for any names; `chain` = key + leaf + `chain` CAs (smtpd_tls_chain_files layout). */
export function mintCert(dir: string, name: string, opts: MintOptions): ServerCert {
  const cn = opts.cn ?? opts.names[0] ?? name;
  if (!opts.issuer) {
    const key = newKey(dir, name);
    const cert = join(dir, `${name}.crt`);
    const san = opts.names.length > 0 ? ['-addext', `subjectAltName=${opts.names.map((n) => `DNS:${n}`).join(',')}`] : [];
    openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${cn}`, '-days', '30', ...san, '-out', cert], dir);
    return finishChain(dir, name, key, cert, []);
  }
  const ext = sanConfig(dir, name, opts.names, opts.eku ?? 'serverAuth', opts.keyUsage ?? 'digitalSignature');
  const dates = opts.start || opts.end ? { ...(opts.start ? { start: opts.start } : {}), ...(opts.end ? { end: opts.end } : {}) } : {};
  const c = signed(dir, name, opts.names, opts.issuer, dates, ext, cn);
  return finishChain(dir, name, c.key, c.cert, (opts.chain ?? []).map((a) => a.cert));
}

function finishChain(dir: string, name: string, key: string, cert: string, cas: readonly string[]): ServerCert {
  const chain = join(dir, `${name}.chain.pem`);
  writeFileSync(chain, [key, cert, ...cas].map((f) => readFileSync(f, 'utf8')).join(''));
  return { key, cert, chain };
}

/** The TLSA record matching `certFile` (`[usage, selector, matchingType, hex]`, the lab DNS zone format). */
export function tlsaFor(certFile: string, usage: number, selector: 0 | 1, matchingType: 0 | 1 | 2): [number, number, number, string] {
  const x = new X509Certificate(readFileSync(certFile));
  const subject = selector === 0 ? x.raw : x.publicKey.export({ type: 'spki', format: 'der' });
  const data = matchingType === 0 ? subject : createHash(matchingType === 1 ? 'sha256' : 'sha512').update(subject).digest();
  return [usage, selector, matchingType, data.toString('hex')];
}
