/**
 * smtp-agent.ts — one smtp(8) delivery service's agent: the SMTP client
 * (delivery/smtp/agent.ts) with its DNS resolver (delivery/dns/resolver.ts)
 * and TLS policy engine (delivery/tls/engine.ts), all built from the
 * service's own configuration (main.cf + its master.cf `-o` overrides).
 *
 * Contract: loaded by wiring.ts on first use (a dynamic import), so the
 * queue manager does not pull in the SMTP client when master.cf runs none.
 *
 * Not here: scheduling, logging of outcomes (qmgr.ts).
 */
import { createResolver } from '../delivery/dns/resolver.ts';
import { createSmtpAgent } from '../delivery/smtp/agent.ts';
import { createTlsEngine } from '../delivery/tls/engine.ts';
import type { DeliveryAgent } from '../delivery/types.ts';
import type { AgentContext } from './wiring.ts';

export async function createSmtpServiceAgent(ctx: AgentContext): Promise<DeliveryAgent> {
  const { config, tables, log, service } = ctx;
  // The log already carries the service's syslog_name (wiring.ts programLog): the
  // agent and the engine name only the program, `smtp`.
  const tls = createTlsEngine({ config, tables, log, service: service.command });
  return createSmtpAgent({ config, resolver: createResolver(config), tls, tables, log, service: service.command });
}
