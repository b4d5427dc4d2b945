/**
 * access.ts — who may use the observability listener: the listen address
 * (`sealpost_http_listen`), the credentials file (`sealpost_http_auth_file`)
 * and the rule that ties them to TLS.
 *
 * Contract:
 * - `parseListen()`: `PORT` binds 127.0.0.1; `HOST:PORT`, `[IPv6]:PORT`, or a
 *   bare `HOST` (port 9154). Pure; a bad value throws a ConfigError-shaped
 *   message naming the parameter.
 * - `parseAuthFile()`: one credential per line, `#` comments and blank lines
 *   ignored: `user:password` for HTTP basic authentication (RFC 7617), or a
 *   token without `:` or blanks for `Authorization: Bearer` (RFC 6750).
 *   Pure (text in).
 * - `checkAccess()` refuses (UserError, one line naming the parameters to
 *   set) a listener that is not on a loopback address unless it has both
 *   credentials and a certificate and key: the page and the metrics never
 *   travel a network in clear or unauthenticated.
 * - `authorized()` compares in constant time (SHA-256 digests, timingSafeEqual).
 *
 * Not here: the server (server.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { UserError } from '../../lib/errors.ts';

export const DEFAULT_HTTP_PORT = 9154;

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListen(value: string): ListenAddress | undefined {
  const v = value.trim();
  if (v === '') return undefined;
  let host: string;
  let port = String(DEFAULT_HTTP_PORT);
  let m: RegExpExecArray | null;
  if (/^\d+$/.test(v)) {
    host = '127.0.0.1';
    port = v;
  } else if ((m = /^\[([^\]]+)\](?::(\d+))?$/.exec(v))) {
    host = m[1]!;
    port = m[2] ?? port;
  } else if ((m = /^([^:\s]+)(?::(\d+))?$/.exec(v))) {
    host = m[1]!;
    port = m[2] ?? port;
  } else {
    throw new UserError(`bad sealpost_http_listen value "${value}": use PORT, HOST:PORT or [IPv6]:PORT (e.g. 127.0.0.1:${DEFAULT_HTTP_PORT})`);
  }
  const p = Number(port);
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new UserError(`bad port in sealpost_http_listen = ${value}: 0..65535`);
  return { host, port: p };
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

export interface Credentials {
  readonly basic: ReadonlyArray<{ readonly user: string; readonly password: string }>;
  readonly tokens: readonly string[];
}

export function parseAuthFile(text: string, file: string): Credentials {
  const basic: Array<{ user: string; password: string }> = [];
  const tokens: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    if (colon > 0) basic.push({ user: line.slice(0, colon), password: line.slice(colon + 1) });
    else if (/^\S+$/.test(line) && colon < 0) tokens.push(line);
    else throw new UserError(`${file}, line ${i + 1}: expected "user:password" or a token without blanks`);
  });
  if (basic.length === 0 && tokens.length === 0) throw new UserError(`${file} holds no credentials: add a "user:password" line or a token line`);
  return { basic, tokens };
}

/** Refuse an exposed listener without credentials and TLS (see the header). */
export function checkAccess(listen: ListenAddress, hasCredentials: boolean, hasTls: boolean): void {
  if (isLoopback(listen.host)) return;
  const missing = [hasCredentials ? '' : 'sealpost_http_auth_file', hasTls ? '' : 'sealpost_http_tls_cert_file and sealpost_http_tls_key_file'].filter((x) => x !== '');
  if (missing.length > 0) {
    throw new UserError(`sealpost_http_listen = ${listen.host}:${listen.port} is not a loopback address: set ${missing.join(' and ')} (the status page and metrics are served only with authentication over TLS off loopback), or listen on 127.0.0.1`);
  }
}

function same(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** Whether an Authorization header value matches one of the credentials. */
export function authorized(header: string | undefined, creds: Credentials): boolean {
  if (!header) return false;
  const m = /^(\S+)\s+(\S+)$/.exec(header.trim());
  if (!m) return false;
  const scheme = m[1]!.toLowerCase();
  if (scheme === 'bearer') return creds.tokens.some((t) => same(t, m[2]!));
  if (scheme !== 'basic') return false;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const user = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  let ok = false;
  for (const c of creds.basic) ok = (same(c.user, user) && same(c.password, password)) || ok;
  return ok;
}
