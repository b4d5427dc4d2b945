/**
 * sts-server.ts — a lab MTA-STS policy host for tests: one HTTPS server on
 * port 443 (RFC 8461 §3.3) of a loopback address of its own, serving
 * `/.well-known/mta-sts.txt` for any number of policy hosts, each with its
 * own certificate (chosen by SNI) from the test PKI (pki.ts).
 *
 * Contract:
 * - `startStsServer({ sites })` binds 443 on a free address in 127.0.0.0/8
 *   (it tries addresses in 127.83.0.0/16 until one binds; `port: 0` binds an
 *   ephemeral port instead) and returns the lab; point the policy hosts'
 *   A records (dns-server.ts) at `lab.address`.
 * - `sites` is keyed by host name (`mta-sts.example.com`) and live: tests
 *   change a site between fetches. A site has `cert` (key, cert, chain
 *   files), `policy` (the body) and `behavior`:
 *     ok          200, `contentType` (default `text/plain`), the policy
 *     status      `status` (404, 500 ...) with a short body
 *     redirect    301 to `location` (default another https URL)
 *     oversized   200 text/plain, `size` bytes (default 70 KiB) with a
 *                 Content-Length; `chunked: true` sends it without one
 *     binary      200 text/plain, bytes that are not UTF-8
 *     wrong-type  200 text/html, the policy
 *     slow        answers after `delayMs` (default: never)
 *     down        the TLS handshake is refused (no certificate for the name)
 * - A host name not in `sites` gets the first site's certificate (a name
 *   mismatch for the client to find).
 * - `requests` records every request (SNI, Host, path). `pause()` stops
 *   listening (connection refused), `resume()` listens again on the same
 *   address. `close()` ends every connection and the server.
 *
 * Not here: DNS (dns-server.ts), certificates (pki.ts).
 */
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import type { ServerCert } from './pki.ts';

export type StsBehavior = 'ok' | 'status' | 'redirect' | 'oversized' | 'binary' | 'wrong-type' | 'slow' | 'down';

export interface StsSite {
  cert: ServerCert;
  policy?: string;
  behavior?: StsBehavior;
  contentType?: string;
  status?: number;
  location?: string;
  size?: number;
  chunked?: boolean;
  delayMs?: number;
}

export interface StsLab {
  readonly address: string;
  readonly port: number;
  readonly sites: Record<string, StsSite>;
  readonly requests: Array<{ sni: string | undefined; host: string | undefined; path: string | undefined }>;
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

export interface StsServerOptions {
  sites: Record<string, StsSite>;
  /** 443 by default (RFC 8461); 0 for an ephemeral port. */
  port?: number;
  /** A fixed loopback address instead of a free one. */
  address?: string;
}

function contextFor(site: StsSite, cache: Map<string, SecureContext>): SecureContext {
  const key = `${site.cert.key}|${site.cert.chain}`;
  let c = cache.get(key);
  if (!c) {
    // The chain file is key + leaf + CAs; a context takes the key and the certificates.
    const pem = readFileSync(site.cert.chain, 'utf8');
    c = createSecureContext({ key: readFileSync(site.cert.key), cert: pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----')) });
    cache.set(key, c);
  }
  return c;
}

function findSite(sites: Record<string, StsSite>, name: string | undefined): StsSite | undefined {
  if (!name) return undefined;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(sites)) if (k.toLowerCase() === want) return v;
  return undefined;
}

function respond(site: StsSite | undefined, res: import('node:http').ServerResponse): void {
  if (!site) {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('no such site\n');
    return;
  }
  const policy = site.policy ?? '';
  switch (site.behavior ?? 'ok') {
    case 'status':
      res.writeHead(site.status ?? 404, { 'Content-Type': 'text/plain' }).end('not here\n');
      return;
    case 'redirect':
      res.writeHead(301, { Location: site.location ?? 'https://elsewhere.example/.well-known/mta-sts.txt', 'Content-Type': 'text/plain' }).end();
      return;
    case 'oversized': {
      const line = 'x-padding: ' + 'a'.repeat(100) + '\n';
      const body = Buffer.from((policy + line.repeat(Math.ceil((site.size ?? 70 * 1024) / line.length))).slice(0, site.size ?? 70 * 1024));
      res.writeHead(200, site.chunked ? { 'Content-Type': 'text/plain' } : { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
      res.end(body);
      return;
    }
    case 'binary':
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end(Buffer.from([0x76, 0x65, 0x72, 0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a]));
      return;
    case 'wrong-type':
      res.writeHead(200, { 'Content-Type': 'text/html' }).end(policy);
      return;
    case 'slow':
      if (site.delayMs !== undefined) setTimeout(() => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(policy), site.delayMs);
      return;
    default:
      res.writeHead(200, { 'Content-Type': site.contentType ?? 'text/plain' }).end(policy);
  }
}

async function listenOn(server: Server, port: number, fixed?: string): Promise<string> {
  const tryListen = (address: string): Promise<boolean> => new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE' && !fixed) resolve(false);
      else reject(err);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve(true);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, address);
  });
  if (fixed) {
    await tryListen(fixed);
    return fixed;
  }
  for (let i = 0; i < 50; i++) {
    const address = `127.83.${randomInt(0, 256)}.${randomInt(1, 255)}`;
    if (await tryListen(address)) return address;
  }
  throw new Error('sts-server: no free loopback address for port 443');
}

export async function startStsServer(opts: StsServerOptions): Promise<StsLab> {
  const contexts = new Map<string, SecureContext>();
  const sockets = new Set<Socket>();
  const requests: StsLab['requests'] = [];
  const sites = opts.sites;
  const first = (): StsSite => {
    const s = Object.values(sites)[0];
    if (!s) throw new Error('sts-server: no sites');
    return s;
  };
  const server = createServer({
    SNICallback: (name, cb) => {
      const site = findSite(sites, name);
      if (site?.behavior === 'down') return cb(new Error(`${name} is down`));
      cb(null, contextFor(site ?? first(), contexts));
    },
    ...(() => {
      const pem = readFileSync(first().cert.chain, 'utf8');
      return { key: readFileSync(first().cert.key), cert: pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----')) };
    })(),
  }, (req, res) => {
    const sni = (req.socket as TLSSocket).servername || undefined;
    requests.push({ sni, host: req.headers.host, path: req.url });
    respond(findSite(sites, sni), res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  const port = opts.port ?? 443;
  const address = await listenOn(server, port, opts.address);
  const boundPort = (server.address() as { port: number }).port;
  const stop = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  };
  return {
    address,
    port: boundPort,
    sites,
    requests,
    pause: stop,
    resume: async () => {
      await listenOn(server, boundPort, address);
    },
    close: async () => {
      if (server.listening) await stop();
    },
  };
}
