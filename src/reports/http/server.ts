/**
 * server.ts — the observability listener (`sealpost_http_listen`): Prometheus
 * metrics at `/metrics`, the status page at `/`, the posture picture at
 * `/posture.svg`, a destination's `tls explain` at `/explain?domain=D`.
 *
 * Contract:
 * - Read-only: GET and HEAD only (anything else is 405); no request changes
 *   the mail system. Unknown paths are 404.
 * - Access (access.ts): with credentials, every path needs them (401 with a
 *   Basic challenge otherwise; Prometheus sends basic auth or a bearer
 *   token); `start()` refuses a non-loopback address without credentials
 *   and TLS. With a certificate and key the listener speaks HTTPS only.
 * - Pages are built per request from the injected sources; the queue
 *   snapshot is shared for `snapshotTtlMs` (default 5 s) so reloads and
 *   several viewers cost one spool walk. Responses are not cached by clients
 *   (`Cache-Control: no-store`) and load nothing from elsewhere (CSP).
 * - `start()` resolves once listening (UserError `bind HOST port PORT: ...`
 *   when it cannot); `stop()` closes the listener and every open connection.
 *
 * Not here: the daemon's wiring (observe.ts builds this from main.cf), the
 * HTML (status-page.ts), the metrics (metrics.ts).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseTime } from '../../config/params.ts';
import { UserError } from '../../lib/errors.ts';
import type { MessageQueue } from '../../queue/spool.ts';
import type { SealpostMetrics } from '../metrics.ts';
import { postureRows, renderPostureSvg } from '../posture-render.ts';
import type { PostureCounts, PostureWindow } from '../posture.ts';
import type { QueueFigures } from '../queue-gauge.ts';
import type { QueueSnapshot } from '../queue-snapshot.ts';
import { authorized, checkAccess, type Credentials, type ListenAddress } from './access.ts';
import { renderExplainPage, renderStatusPage } from './status-page.ts';

export interface StatusSources {
  readonly hostname: string;
  readonly version: string;
  readonly startedAt: number;
  queues(): Promise<Readonly<Record<MessageQueue, QueueFigures>>>;
  snapshot(): Promise<QueueSnapshot>;
  posture(w: PostureWindow): Promise<ReadonlyMap<string, PostureCounts>>;
  explain(recipient: string): Promise<string[]>;
}

export interface ObservabilityServerOptions {
  readonly listen: ListenAddress;
  readonly credentials?: Credentials;
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  readonly metrics?: SealpostMetrics;
  readonly status?: StatusSources;
  readonly snapshotTtlMs?: number;
  readonly now?: () => number;
  readonly onError?: (message: string) => void;
}

const HEADERS = {
  'Cache-Control': 'no-store',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'",
};

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class ObservabilityServer {
  private server: Server | undefined;
  private snap: { at: number; value: Promise<QueueSnapshot> } | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: ObservabilityServerOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Listen; resolves with the bound address (port 0 picks one). */
  async start(): Promise<{ host: string; port: number; url: string }> {
    const { listen, credentials, tls } = this.opts;
    checkAccess(listen, credentials !== undefined, tls !== undefined);
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    const server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, handler) : createHttpServer(handler);
    server.requestTimeout = 30_000;
    server.headersTimeout = 10_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new UserError(`bind ${listen.host} port ${listen.port}: ${err.code === 'EADDRINUSE' ? 'Address already in use' : err.message}: fix sealpost_http_listen`)),
      );
      server.listen(listen.port, listen.host, () => resolve());
    });
    server.on('error', (err) => this.opts.onError?.(`http listener: ${err.message}`));
    this.server = server;
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return { host: a.address, port: a.port, url: `${tls ? 'https' : 'http'}://${host}:${a.port}/` };
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      if (this.opts.credentials && !authorized(req.headers.authorization, this.opts.credentials)) {
        res.writeHead(401, { ...HEADERS, 'WWW-Authenticate': 'Basic realm="sealpost", charset="UTF-8"', 'Content-Type': 'text/plain; charset=utf-8' });
        res.end('authentication required\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'this listener is read-only: GET and HEAD only');
      const url = new URL(req.url ?? '/', 'http://localhost');
      const { type, body } = await this.route(url);
      res.writeHead(200, { ...HEADERS, 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 500) this.opts.onError?.(`http listener: ${req.method} ${req.url}: ${(err as Error).message}`);
      res.writeHead(status, { ...HEADERS, 'Content-Type': 'text/plain; charset=utf-8', ...(status === 405 ? { Allow: 'GET, HEAD' } : {}) });
      res.end(`${status === 500 ? 'internal error' : (err as Error).message}\n`);
    }
  }

  private async route(url: URL): Promise<{ type: string; body: string }> {
    const { metrics, status } = this.opts;
    if (url.pathname === '/metrics' && metrics) return { type: metrics.contentType, body: await metrics.text() };
    if (status) {
      if (url.pathname === '/') return { type: 'text/html; charset=utf-8', body: await this.page(status, url) };
      if (url.pathname === '/posture.svg') {
        const w = this.window(url);
        return { type: 'image/svg+xml; charset=utf-8', body: renderPostureSvg(postureRows(await status.posture(w.window)), w.window) };
      }
      if (url.pathname === '/explain') return { type: 'text/html; charset=utf-8', body: await this.explain(status, url) };
    }
    throw new HttpError(404, 'not found');
  }

  private window(url: URL): { window: PostureWindow; label: string } {
    const since = url.searchParams.get('since') ?? '24h';
    let seconds: number;
    try {
      seconds = parseTime(since, 'h');
    } catch {
      throw new HttpError(400, `bad since value "${since}": e.g. 24h, 7d`);
    }
    const now = this.now();
    return { window: { from: now - seconds * 1000, to: now }, label: `last ${since}` };
  }

  private snapshot(status: StatusSources): Promise<QueueSnapshot> {
    const now = this.now();
    if (!this.snap || now - this.snap.at > (this.opts.snapshotTtlMs ?? 5000)) {
      const value = status.snapshot();
      value.catch(() => (this.snap = undefined));
      this.snap = { at: now, value };
    }
    return this.snap.value;
  }

  private async page(status: StatusSources, url: URL): Promise<string> {
    const w = this.window(url);
    const [queues, snapshot, posture] = await Promise.all([status.queues(), this.snapshot(status), status.posture(w.window)]);
    return renderStatusPage({
      hostname: status.hostname,
      version: status.version,
      now: this.now(),
      startedAt: status.startedAt,
      queues,
      snapshot,
      posture,
      window: w.window,
      windowLabel: w.label,
      metrics: this.opts.metrics !== undefined,
    });
  }

  private async explain(status: StatusSources, url: URL): Promise<string> {
    const domain = (url.searchParams.get('domain') ?? '').toLowerCase();
    if (!/^[a-z0-9_-][a-z0-9_.-]{0,252}$/.test(domain)) throw new HttpError(400, 'bad or missing domain');
    const snapshot = await this.snapshot(status);
    const recipient = snapshot.sampleRecipients.get(domain) ?? `postmaster@${domain}`;
    return renderExplainPage(domain, recipient, await status.explain(recipient));
  }
}
