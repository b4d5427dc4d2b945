/**
 * https.ts — the HTTPS side of report delivery (RFC 8460 §5.4): one POST of a
 * gzip'd report with `Content-Type: application/tlsrpt+gzip`.
 *
 * Contract:
 * - The server certificate is verified (name and chain) against the roots
 *   MTA-STS policy hosts are verified against: `smtp_tls_CAfile` and the
 *   certificates in `smtp_tls_CApath` when either is set, else Node's
 *   built-in (system) roots. No certificate check is ever switched off.
 * - Redirects are not followed (a 3xx is a failure, like any non-2xx status);
 *   every request has a deadline.
 * - `post()` never rejects: it resolves to the HTTP status or an error text.
 *
 * Not here: retries and backoff (send.ts).
 */
import { request } from 'node:https';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/types.ts';

export type PostResult = { readonly ok: true; readonly status: number } | { readonly ok: false; readonly error: string };

export interface HttpsPoster {
  post(url: string, body: Buffer): Promise<PostResult>;
}

const PEM = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The CA bundle from smtp_tls_CAfile / smtp_tls_CApath; undefined = Node's built-in roots. */
export function trustRoots(config: Config): string[] | undefined {
  const out: string[] = [];
  const file = config.get('smtp_tls_CAfile');
  if (file !== '') out.push(...(readFileSync(file, 'utf8').match(PEM) ?? []));
  const dir = config.get('smtp_tls_CApath');
  if (dir !== '') {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      try {
        if (statSync(path).isFile()) out.push(...(readFileSync(path, 'utf8').match(PEM) ?? []));
      } catch {
        // An unreadable entry in a hashed CA directory is skipped, as OpenSSL does.
      }
    }
  }
  return file === '' && dir === '' ? undefined : out;
}

export function createHttpsPoster(ca: string[] | undefined, timeoutMs = 30_000): HttpsPoster {
  return {
    post: (url, body) =>
      new Promise<PostResult>((resolve) => {
        let settled = false;
        const done = (r: PostResult): void => {
          if (!settled) {
            settled = true;
            resolve(r);
          }
        };
        let req: ReturnType<typeof request>;
        try {
          req = request(url, {
            method: 'POST',
            headers: { 'content-type': 'application/tlsrpt+gzip', 'content-length': String(body.length) },
            ...(ca ? { ca } : {}),
            rejectUnauthorized: true,
            timeout: timeoutMs,
          });
        } catch (err) {
          done({ ok: false, error: (err as Error).message });
          return;
        }
        req.on('response', (res) => {
          res.resume();
          const status = res.statusCode ?? 0;
          // RFC 8460 §5.4: a 2xx means the report was accepted; redirects are not followed.
          done(status >= 200 && status < 300 ? { ok: true, status } : { ok: false, error: `HTTP status ${status}` });
        });
        req.on('timeout', () => {
          req.destroy();
          done({ ok: false, error: `timed out after ${timeoutMs} ms` });
        });
        req.on('error', (err) => done({ ok: false, error: err.message }));
        req.end(body);
      }),
  };
}
