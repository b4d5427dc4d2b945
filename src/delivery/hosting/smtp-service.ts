/**
 * smtp-service.ts — one smtp(8) delivery service's agent in this thread:
 * the SMTP client (delivery/smtp/agent.ts) with its DNS resolver
 * (delivery/dns/resolver.ts) and TLS policy engine (delivery/tls/engine.ts),
 * all built from the service's own configuration (main.cf + its master.cf
 * `-o` overrides).
 *
 * Contract: loaded on first use (service-agent.ts, thread-main.ts: a dynamic
 * import), so the queue manager does not pull in the SMTP client when
 * master.cf runs none.
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
  const tls = createTlsEngine({ config, tables, log, service: service.command });
  return createSmtpAgent({ config, resolver: createResolver(config, undefined, ctx.hooks?.dns), tls, tables, log, service: service.command });
}
