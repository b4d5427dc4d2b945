/**
 * smtp-service.ts — one smtp(8) delivery service's agent in this thread:
 * the SMTP client (delivery/smtp/agent.ts) with its DNS resolver
 * (delivery/dns/resolver.ts) and TLS policy engine (delivery/tls/engine.ts),
 * all built from the service's own configuration (main.cf + its master.cf
 * `-o` overrides). The one resolver serves the route (MX, addresses) and the
 * DANE source (TLSA, with the AD bit of sealpost_dns_resolvers); the engine
 * asks the daemon's MTA-STS service (`ctx.sts`) when there is one.
 *
 * Contract: loaded on first use (service-agent.ts, thread-main.ts: a dynamic
 * import), so the queue manager does not pull in the SMTP client when
 * master.cf runs none. `close()` closes the cached connections, then saves
 * the TLS session cache (smtp_tls_session_cache_database): in this thread
 * and in every delivery worker thread alike, the sessions learned since the
 * last periodic save survive a stop or a reload (session-cache.ts merges
 * the saves of several threads).
 *
 * Not here: scheduling, logging of outcomes (scheduler/qmgr.ts), threads
 * (thread-pool.ts).
 */
import { createResolver } from '../dns/resolver.ts';
import { createSmtpAgent } from '../smtp/agent.ts';
import { createTlsEngine } from '../tls/engine.ts';
import type { DeliveryAgent } from '../types.ts';
import type { AgentContext } from './context.ts';

export async function createSmtpServiceAgent(ctx: AgentContext): Promise<DeliveryAgent> {
  const { config, tables, log, service } = ctx;
  // The log already carries the service's syslog_name (reports/program-log.ts): the
  // agent and the engine name only the program, `smtp`.
  const resolver = createResolver(config, undefined, ctx.hooks?.dns);
  const tls = createTlsEngine({ config, tables, log, service: service.command, resolver, ...(ctx.sts ? { sts: ctx.sts } : {}) });
  const agent = createSmtpAgent({ config, resolver, tls, tables, log, service: service.command });
  return {
    deliver: (request) => agent.deliver(request),
    close: async () => {
      try {
        await agent.close();
      } finally {
        tls.flush();
      }
    },
  };
}
