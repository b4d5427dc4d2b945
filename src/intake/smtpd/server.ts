/**
 * server.ts — the SMTP listener the daemon starts for each master.cf smtpd
 * service: accept connections, enforce smtpd_client_connection_count_limit,
 * run one session per connection, swap configuration on reload, and close
 * gracefully.
 *
 * Contract (fixed; the daemon codes against it):
 * - `startSmtpd(listen, ctx)` binds (`host` '' or '*' = all addresses; port 0
 *   = ephemeral) and resolves with the listener once it listens. A
 *   configuration Postfix's smtpd would refuse (TLS level encrypt without a
 *   certificate, no working reject_unauth_destination, bad mynetworks) is a
 *   ConfigError and nothing is bound.
 * - `update(ctx)`: new sessions use the new configuration; open sessions keep
 *   theirs. A broken new configuration throws ConfigError and the old one
 *   stays in use (sealpost reload refuses it).
 * - `close({graceful, timeoutMs})`: stop accepting; graceful lets sessions
 *   finish for up to timeoutMs, then cuts them; otherwise cuts at once.
 * - Per client address at most smtpd_client_connection_count_limit
 *   concurrent sessions (0 = no limit); clients matching
 *   smtpd_client_event_limit_exceptions (default $mynetworks) are exempt.
 *   Over the limit: `421 4.7.0 $myhostname Error: too many connections from
 *   ADDR`, and the warning Postfix's anvil gives.
 *
 * - `serveSession(socket, ctx)` runs one session on an accepted socket: what
 *   the listener does per connection, and the seam unit tests use to drive a
 *   session over a socket pair.
 *
 * Not here: the session (session.ts, command-loop.ts), master.cf parsing (config/master-cf.ts).
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import type { Config } from '../../config/types.ts';
import type { Spool } from '../../queue/spool.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { SmtpdHooks } from '../../reports/observe-hooks.ts';
import type { Publish } from '../../reports/received-event.ts';
import { SmtpConnection } from './connection.ts';
import { networkListFromText } from './match-list.ts';
import { runSession } from './command-loop.ts';
import { Session } from './session.ts';
import { smtpdSettings } from './settings.ts';
import type { SmtpdSettings } from './settings.ts';

export interface SmtpdContext {
  readonly config: Config;
  readonly spool: Spool;
  readonly log: MailLog;
  readonly serviceName: string;
  readonly onQueued?: (queueId: string) => void;
  /** The daemon's event bus: a `received` event per queued message (reports/received-event.ts). */
  readonly publish?: Publish;
  /** Connection accounting for the metrics (reports/observe-hooks.ts). */
  readonly hooks?: SmtpdHooks;
}

export interface SmtpdListener {
  readonly address: { readonly host: string; readonly port: number };
  update(ctx: SmtpdContext): void;
  close(opts: { readonly graceful: boolean; readonly timeoutMs: number }): Promise<void>;
}

interface Active {
  ctx: SmtpdContext;
  settings: SmtpdSettings;
}

/**
 * One SMTP session on an accepted socket, from the greeting to the disconnect
 * line (the listener calls it per connection; unit tests hand it one end of a
 * socket pair). `settings` from smtpdSettings(ctx.config) when omitted.
 */
export async function serveSession(socket: Socket, ctx: SmtpdContext, settings: SmtpdSettings = smtpdSettings(ctx.config), localAddress?: string): Promise<void> {
  const conn = new SmtpConnection(socket, settings.lineLengthLimit, settings.timeoutMs);
  const session = new Session(conn, {
    settings,
    spool: ctx.spool,
    log: ctx.log,
    serviceName: ctx.serviceName,
    onQueued: ctx.onQueued,
    publish: ctx.publish,
    clientAddress: plainAddress(socket.remoteAddress),
    clientPort: socket.remotePort ?? 0,
    // A listener bound to one address knows it; asking the socket costs a getsockname(2) per connection.
    localAddress: localAddress ?? plainAddress(socket.localAddress),
  });
  await runSession(session);
}

function prepare(ctx: SmtpdContext): Active {
  const settings = smtpdSettings(ctx.config);
  for (const w of settings.warnings) ctx.log.warn('smtpd', w);
  return { ctx, settings };
}

/** Strip the IPv4-mapped prefix Node reports on dual-stack sockets (Postfix shows plain IPv4). */
function plainAddress(a: string | undefined): string {
  const v = a ?? '0.0.0.0';
  return v.startsWith('::ffff:') && v.includes('.') ? v.slice(7) : v;
}

class Listener implements SmtpdListener {
  private active: Active;
  private readonly sockets = new Set<Socket>();
  private readonly sessions = new Set<Promise<void>>();
  private readonly perClient = new Map<string, number>();
  address: { host: string; port: number } = { host: '', port: 0 };

  constructor(
    private readonly server: Server,
    active: Active,
  ) {
    this.active = active;
    server.on('connection', (socket) => this.accept(socket));
  }

  /** The local address of every connection, when the listener is bound to one address (not a wildcard). */
  private boundAddress(): string | undefined {
    const h = this.address.host;
    return h === '' || h === '0.0.0.0' || h === '::' ? undefined : h;
  }

  update(ctx: SmtpdContext): void {
    this.active = prepare(ctx);
  }

  /** `existing`: the client's other sessions. */
  private async overLimit(active: Active, client: string, existing: number): Promise<boolean> {
    const limit = active.settings.connectionCountLimit;
    if (limit <= 0 || existing < limit) return false;
    const config = active.settings.config;
    const exceptions = networkListFromText('smtpd_client_event_limit_exceptions', config.get('smtpd_client_event_limit_exceptions'), active.settings.tables);
    return (await exceptions.match(client)).kind !== 'match';
  }

  private accept(socket: Socket): void {
    const active = this.active;
    const client = plainAddress(socket.remoteAddress);
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    const closed = active.ctx.hooks?.connectionOpened(active.ctx.serviceName);
    const run = (async () => {
      const count = (this.perClient.get(client) ?? 0) + 1;
      this.perClient.set(client, count);
      try {
        await this.serve(active, socket, client, count);
      } finally {
        const left = (this.perClient.get(client) ?? 1) - 1;
        if (left <= 0) this.perClient.delete(client);
        else this.perClient.set(client, left);
        this.sockets.delete(socket);
        socket.destroy();
        closed?.();
      }
    })();
    this.sessions.add(run);
    void run.finally(() => this.sessions.delete(run));
  }

  private async serve(active: Active, socket: Socket, client: string, count: number): Promise<void> {
    const s = active.settings;
    // This session is counted already: compare with the others.
    const refuse = await this.overLimit(active, client, count - 1);
    if (refuse) {
      active.ctx.log.warn('smtpd', `Connection concurrency limit exceeded: ${count} from unknown[${client}] for service ${active.ctx.serviceName}`);
      socket.end(`421 4.7.0 ${s.myhostname} Error: too many connections from ${client}\r\n`);
      return;
    }
    await serveSession(socket, active.ctx, s, this.boundAddress());
  }

  async close(opts: { readonly graceful: boolean; readonly timeoutMs: number }): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (opts.graceful && this.sessions.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, opts.timeoutMs);
      });
      await Promise.race([Promise.allSettled([...this.sessions]).then(() => undefined), timeout]);
      clearTimeout(timer);
    }
    for (const socket of this.sockets) socket.destroy();
    await Promise.allSettled([...this.sessions]);
    await closed;
  }
}

/** Start one SMTP listener; see the header. */
export async function startSmtpd(listen: { readonly host: string; readonly port: number }, ctx: SmtpdContext): Promise<SmtpdListener> {
  const active = prepare(ctx);
  // Replies are written whole; Nagle's algorithm would only hold them back behind an unacknowledged one.
  const server = createServer({ pauseOnConnect: false, noDelay: true });
  const listener = new Listener(server, active);
  const host = listen.host === '' || listen.host === '*' ? undefined : listen.host.replace(/^\[(.*)\]$/, '$1');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: listen.port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address();
  if (addr && typeof addr === 'object') listener.address = { host: plainAddress(addr.address), port: addr.port };
  return listener;
}
