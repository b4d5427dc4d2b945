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
 */
import { execFileSync } from 'node:child_process';
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

function sanConfig(dir: string, name: string, names: readonly string[]): string {
  const file = join(dir, `${name}.ext`);
  writeFileSync(file, `subjectAltName=${names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',')}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`);
  return file;
}

function signed(dir: string, name: string, names: readonly string[], ca: { cert: string; key: string }, days: { start?: string; end?: string }): ServerCert {
  const key = newKey(dir, name);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${names[0]}`, '-out', csr], dir);
  if (days.start || days.end) {
    // `openssl x509` (3.0) cannot back-date; `openssl ca` can (-startdate/-enddate).
    const cnf = join(dir, 'ca.cnf');
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(
      cnf,
      '[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n',
    );
    openssl(['ca', '-batch', '-notext', '-config', cnf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert, '-extfile', sanConfig(dir, name, names), '-startdate', days.start ?? '20200101000000Z', '-enddate', days.end ?? '20200201000000Z'], dir);
  } else {
    openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '30', '-out', cert, '-extfile', sanConfig(dir, name, names)], dir);
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
