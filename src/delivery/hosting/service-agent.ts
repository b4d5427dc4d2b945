/**
 * service-agent.ts — the delivery agent for one master.cf delivery service:
 * smtp(8) (the SMTP client, in worker threads or in this thread), error(8)
 * and its `retry` form, discard(8).
 *
 * Contract: `createServiceAgent(kind, ctx)` returns a DeliveryAgent; the SMTP
 * client is loaded on first use (a dynamic import), so a configuration
 * without smtp services never loads it. sealpost_delivery_workers > 0 runs
 * the client in that many worker threads (thread-pool.ts), 0 in this thread
 * (smtp-service.ts).
 *
 * Not here: which services are delivery services and their scheduling
 * parameters (scheduler/transports.ts), the agents themselves (builtin.ts,
 * smtp/).
 */
import { createDiscardAgent, createErrorAgent } from '../builtin.ts';
import type { DeliveryAgent } from '../types.ts';
import type { AgentContext, SmtpAgentFactory } from './context.ts';

export type ServiceAgentKind = 'smtp' | 'error' | 'retry' | 'discard';

/** The smtp(8) agent: worker threads or this thread, as sealpost_delivery_workers says. */
export async function defaultSmtpAgent(ctx: AgentContext): Promise<DeliveryAgent> {
  const workers = ctx.config.getInt('sealpost_delivery_workers');
  if (workers > 0) {
    const { createThreadPoolAgent } = await import('./thread-pool.ts');
    return createThreadPoolAgent(ctx, workers);
  }
  const { createSmtpServiceAgent } = await import('./smtp-service.ts');
  return createSmtpServiceAgent(ctx);
}

export async function createServiceAgent(kind: ServiceAgentKind, ctx: AgentContext, smtpAgent: SmtpAgentFactory = defaultSmtpAgent): Promise<DeliveryAgent> {
  if (kind === 'smtp') return smtpAgent(ctx);
  return kind === 'discard' ? createDiscardAgent() : createErrorAgent(kind);
}
