/**
 * fetch.ts — getting an MTA-STS policy over HTTPS (RFC 8461 §3.3): the
 * policy host's certificate verified, no redirects, a deadline, a size
 * limit, status 200 and `text/plain` only; each failure classified with its
 * RFC 8460 §4.3.2.2 result type.
 *
 * Contract:
 * - `HttpsGetter` is the injected outside world: one GET, never throws,
 *   answers a value. `createHttpsGetter(opts)` is the real one:
 *     resolves the policy host with the daemon's resolver (so labs and tests
 *     steer it), connects to each address in turn (next address only on a
 *     connect error), TLS 1.2 or later (§7.2 asks it of SMTP; we ask it of
 *     the policy host too) with SNI, verifies the chain against `roots` and
 *     the name with Postfix/RFC 6125 rules (verify.ts: a wildcard only as
 *     the whole leftmost label) *before* the request is written, sends one
 *     HTTP/1.1 GET (no cache validators: §3.3 "HTTP caching MUST NOT be
 *     used"), never follows a redirect, stops reading at `maxBytes`, and
 *     gives up at the deadline (the whole exchange, DNS included).
 * - `fetchStsPolicy(domain, getter, limits)` turns the answer into a policy
 *   or a failure:
 *     certificate not trusted / wrong name          → sts-webpki-invalid
 *     DNS, connect, handshake, timeout, HTTP error,
 *     a 3xx (§3.3: MUST NOT be followed), not 200  → sts-policy-fetch-error
 *     not text/plain, over the size limit, not
 *     UTF-8, does not parse (policy.ts)            → sts-policy-invalid
 * - `stsTrustRoots(config)`: the roots `secure` uses — smtp_tls_CAfile and
 *   smtp_tls_CApath; when both are empty, Node's bundled roots
 *   (tls.rootCertificates: the system's default roots of a Node build).
 *
 * Not here: discovery, caching, when to fetch (service.ts).
 */
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, createSecureContext } from 'node:tls';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Config } from '../../config/types.ts';
import type { AddressRecord, LookupResult } from '../dns/resolver.ts';
import type { TlsRptResultType } from '../outcome.ts';
import { ContextCache } from '../tls/context.ts';
import { certFactsFromDer, matchServerName } from '../tls/verify.ts';
import { decodePolicyBody, parseStsPolicy } from './policy.ts';
import type { StsPolicy } from './policy.ts';

export const STS_POLICY_PATH = '/.well-known/mta-sts.txt';
/** RFC 8461 §3.3 (and Google's guidance): policies are small; 64 KiB is plenty. */
export const DEFAULT_STS_MAX_BYTES = 65536;

export function stsPolicyHost(domain: string): string {
  return `mta-sts.${domain.replace(/\.$/, '')}`;
}

export interface HttpsGetRequest {
  readonly host: string;
  readonly path: string;
  readonly timeoutMs: number;
  readonly maxBytes: number;
}

export type HttpsGetResult =
  | { readonly kind: 'response'; readonly status: number; readonly contentType: string; readonly location?: string; readonly body: Buffer; readonly address: string }
  | { readonly kind: 'too-large'; readonly status: number; readonly contentType: string; readonly address: string }
  | { readonly kind: 'error'; readonly stage: 'dns' | 'connect' | 'tls' | 'certificate' | 'http' | 'timeout'; readonly message: string };

export type HttpsGetter = (req: HttpsGetRequest) => Promise<HttpsGetResult>;

export type StsFailureType = Extract<TlsRptResultType, 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid'>;

export interface StsFailure {
  readonly type: StsFailureType;
  readonly detail: string;
}

export type StsFetch =
  | { readonly ok: true; readonly policy: StsPolicy }
  | { readonly ok: false; readonly failure: StsFailure };

const fetchError = (detail: string): StsFetch => ({ ok: false, failure: { type: 'sts-policy-fetch-error', detail } });
const invalid = (detail: string): StsFetch => ({ ok: false, failure: { type: 'sts-policy-invalid', detail } });

/** `text/plain; charset=utf-8` → `text/plain`. */
export function mediaType(contentType: string): string {
  return contentType.split(';')[0]!.trim().toLowerCase();
}

/** Fetch and judge `https://mta-sts.<domain>/.well-known/mta-sts.txt`. */
export async function fetchStsPolicy(domain: string, getter: HttpsGetter, limits: { timeoutMs: number; maxBytes: number }): Promise<StsFetch> {
  const host = stsPolicyHost(domain);
  const url = `https://${host}${STS_POLICY_PATH}`;
  const r = await getter({ host, path: STS_POLICY_PATH, timeoutMs: limits.timeoutMs, maxBytes: limits.maxBytes });
  if (r.kind === 'error') {
    if (r.stage === 'certificate') return { ok: false, failure: { type: 'sts-webpki-invalid', detail: `${url}: ${r.message}` } };
    return fetchError(`${url}: ${r.message}`);
  }
  if (r.status >= 300 && r.status < 400) {
    // RFC 8461 §3.3: "HTTP 3xx redirects MUST NOT be followed".
    return fetchError(`${url}: redirect (HTTP ${r.status}${r.kind === 'response' && r.location ? ` to ${r.location}` : ''}) not followed`);
  }
  if (r.status !== 200) return fetchError(`${url}: HTTP status ${r.status}`);
  // RFC 8461 §3.2: the policy is a text/plain resource.
  if (mediaType(r.contentType) !== 'text/plain') return invalid(`${url}: media type "${r.contentType || 'none'}" is not text/plain`);
  if (r.kind === 'too-large') return invalid(`${url}: policy larger than ${limits.maxBytes} bytes`);
  const text = decodePolicyBody(r.body);
  if (!text.ok) return invalid(`${url}: ${text.error}`);
  const p = parseStsPolicy(text.text);
  if (!p.ok) return invalid(`${url}: ${p.error}`);
  return { ok: true, policy: p.policy };
}

/** The roots `secure` uses (see the header): PEM strings. Throws a one-line Error when a file cannot be read. */
export function stsTrustRoots(config: Config): string[] {
  return new ContextCache(config).stsRoots();
}

// -------------------------------------------------------- the real getter

export interface HttpsGetterOptions {
  /** PEM trust roots (stsTrustRoots). */
  readonly roots: readonly string[];
  /** Address lookup of the policy host (the daemon's resolver). */
  readonly addresses: (host: string) => Promise<LookupResult<AddressRecord>>;
  /** 443 (RFC 8461 §3.3); tests may use another port. */
  readonly port?: number;
  readonly userAgent?: string;
}

type Settle = (r: HttpsGetResult) => void;

export function createHttpsGetter(opts: HttpsGetterOptions): HttpsGetter {
  // One SecureContext for every fetch: building one with a CA bundle costs ~20 ms.
  let context: SecureContext | undefined;
  const ctx = (): SecureContext => (context ??= createSecureContext({ ca: [...opts.roots], minVersion: 'TLSv1.2' }));
  return (req) => new Promise<HttpsGetResult>((resolve) => {
    let done = false;
    let cleanup: () => void = () => undefined;
    const settle: Settle = (r) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      resolve(r);
    };
    const timer = setTimeout(() => settle({ kind: 'error', stage: 'timeout', message: `no answer within ${req.timeoutMs} ms` }), req.timeoutMs);
    void (async () => {
      const a = await opts.addresses(req.host);
      if (done) return;
      if (a.status !== 'found') {
        return settle({ kind: 'error', stage: 'dns', message: a.status === 'tempfail' ? `cannot resolve ${req.host}: ${a.reason}` : `${req.host}: host not found (${a.reason})` });
      }
      let lastError = 'no address';
      for (const addr of a.records) {
        if (done) return;
        const step = await tryAddress(addr.address, req, opts, ctx(), (c) => { cleanup = c; });
        if (typeof step === 'string') {
          lastError = step;
          continue;
        }
        return settle(step);
      }
      settle({ kind: 'error', stage: 'connect', message: `cannot connect to ${req.host}: ${lastError}` });
    })().catch((err: unknown) => settle({ kind: 'error', stage: 'http', message: String(err) }));
  });
}

/** One address: connect, verify, GET. A string = connect failure text (try the next address). */
function tryAddress(address: string, req: HttpsGetRequest, opts: HttpsGetterOptions, context: SecureContext, onCleanup: (c: () => void) => void): Promise<HttpsGetResult | string> {
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host: address, port: opts.port ?? 443, servername: req.host, secureContext: context,
      rejectUnauthorized: false, minVersion: 'TLSv1.2', ALPNProtocols: ['http/1.1'],
      // The name check is ours (certificateProblem): Node's would fold a name mismatch into `authorized`.
      checkServerIdentity: () => undefined,
    });
    onCleanup(() => socket.destroy());
    let connected = false;
    socket.once('connect', () => { connected = true; });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      resolve(connected ? { kind: 'error', stage: 'tls', message: `TLS handshake with ${req.host}[${address}] failed: ${err.code ?? err.message}` } : `${address}: ${err.code ?? err.message}`);
    });
    let secured = false;
    // Closed before the handshake (the deadline destroyed it, or the peer hung up): settle this promise too.
    socket.once('close', () => {
      if (!secured) resolve(`${address}: connection closed during the TLS handshake`);
    });
    socket.once('secureConnect', () => {
      secured = true;
      const bad = certificateProblem(socket, req.host);
      if (bad) return resolve({ kind: 'error', stage: 'certificate', message: `${req.host}[${address}]: ${bad}` });
      get(socket, address, req, opts).then(resolve);
    });
  });
}

/** PKIX (OpenSSL's verdict against our roots) and our own name check. */
function certificateProblem(socket: TLSSocket, host: string): string | undefined {
  if (!socket.authorized) {
    const e = socket.authorizationError as unknown;
    return `certificate not trusted (${String((e as { code?: string })?.code ?? e)})`;
  }
  const raw = socket.getPeerCertificate().raw;
  if (!raw || matchServerName(certFactsFromDer(raw), [host]) === undefined) return `certificate does not name ${host}`;
  return undefined;
}

function get(socket: TLSSocket, address: string, req: HttpsGetRequest, opts: HttpsGetterOptions): Promise<HttpsGetResult> {
  return new Promise((resolve) => {
    const r = httpRequest({
      createConnection: () => socket,
      method: 'GET', path: req.path, host: req.host,
      headers: { Host: req.host, Accept: 'text/plain', 'User-Agent': opts.userAgent ?? 'sealpost', Connection: 'close' },
    });
    r.once('error', (err: Error) => resolve({ kind: 'error', stage: 'http', message: `HTTP exchange with ${req.host}[${address}] failed: ${err.message}` }));
    r.once('response', (res) => {
      const status = res.statusCode ?? 0;
      const contentType = String(res.headers['content-type'] ?? '');
      if (status !== 200) {
        const location = res.headers.location;
        resolve({ kind: 'response', status, contentType, ...(location ? { location } : {}), body: Buffer.alloc(0), address });
        res.destroy();
        return;
      }
      const declared = Number(res.headers['content-length'] ?? NaN);
      if (declared > req.maxBytes) {
        resolve({ kind: 'too-large', status, contentType, address });
        res.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > req.maxBytes) {
          // Settle first: destroying the response emits 'aborted' at once.
          resolve({ kind: 'too-large', status, contentType, address });
          res.destroy();
          return;
        }
        chunks.push(c);
      });
      res.once('end', () => resolve({ kind: 'response', status, contentType, body: Buffer.concat(chunks), address }));
      res.once('error', (err: Error) => resolve({ kind: 'error', stage: 'http', message: `reading the policy from ${req.host}[${address}] failed: ${err.message}` }));
      res.once('aborted', () => resolve({ kind: 'error', stage: 'http', message: `${req.host}[${address}] closed the connection mid-body` }));
    });
    r.end();
  });
}
