/**
 * agent.ts — the SMTP client delivery agent (Postfix smtp(8)) as a
 * DeliveryAgent: the settings, the TLS engine, the resolver and the
 * connection cache one smtp(8) service shares between its deliveries; each
 * DeliveryRequest runs as one DeliveryAttempt (attempt.ts).
 *
 * Contract:
 * - `deliver()` never rejects for a delivery problem (attempt.ts); `close()`
 *   QUITs the cached connections.
 * - The outside world is injected: the resolver, the TLS engine, the clock,
 *   randomness, and the socket factory (`openSocket`, connect.ts by
 *   default), so tests drive the client over a socket pair.
 *
 * Not here: the steps of a delivery (attempt.ts), routing (scheduler/),
 * policy decisions (delivery/tls/).
 */
import type { Config } from '../../config/types.ts';
import type { TableSet } from '../../maps/registry.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { Resolver } from '../dns/resolver.ts';
import type { TlsEngine } from '../tls/types.ts';
import type { DeliveryAgent } from '../types.ts';
import { DeliveryAttempt, clientSettings, type ClientEnv } from './attempt.ts';
import { connectSettings, openSocket, type SocketFactory } from './connect.ts';
import { loopSettings } from './loop.ts';
import { ConnectionCache, cacheLimits } from './reuse.ts';
import { sessionSettings } from './session.ts';

export interface SmtpAgentContext {
  /** The service's effective config (main.cf + master.cf -o overrides). */
  readonly config: Config;
  readonly resolver: Resolver;
  readonly tls: TlsEngine;
  /** For smtp_sasl_password_maps. */
  readonly tables: TableSet;
  readonly log: MailLog;
  /** Syslog service tag: `smtp`, `relay/smtp`. */
  readonly service: string;
  readonly now?: () => number;
  readonly random?: () => number;
  /** The TCP connection to a server (default: connect.ts openSocket). */
  readonly openSocket?: SocketFactory;
}

export function createSmtpAgent(ctx: SmtpAgentContext): DeliveryAgent {
  const now = ctx.now ?? Date.now;
  const warn = (t: string): void => ctx.log.warn(ctx.service, t);
  // loop.ts: our own listeners (master.cf, as the loaded configuration carries it) and myhostname.
  const connect = { ...connectSettings(ctx.config, ctx.random, warn), loop: loopSettings(ctx.config) };
  const cache = new ConnectionCache(cacheLimits(ctx.config), now);
  const env: ClientEnv = {
    config: ctx.config,
    settings: clientSettings(ctx.config),
    session: {
      config: ctx.config,
      settings: sessionSettings(ctx.config),
      connect,
      openSocket: ctx.openSocket ?? openSocket,
      tls: ctx.tls,
      log: ctx.log,
      service: ctx.service,
      now,
    },
    connect,
    resolver: ctx.resolver,
    tls: ctx.tls,
    tables: ctx.tables,
    cache,
    log: ctx.log,
    service: ctx.service,
    now,
  };
  return {
    deliver: (request) => new DeliveryAttempt(env, request).run(),
    close: () => cache.closeAll(),
  };
}
