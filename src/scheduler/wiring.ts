/**
 * wiring.ts — the queue manager's runtime built from a configuration: the
 * lookup tables, the router (resolve.ts) and one transport handle per
 * master.cf delivery service (its agent from delivery/hosting/, its process
 * limit, log program and scheduling parameters from transports.ts).
 *
 * Contract: `createRuntimeFactory(log)` returns the RuntimeFactory the
 * QueueManager calls at start and on every reload; each call opens its own
 * tables and agents, and the runtime's close() closes them (after the
 * deliveries still running on them, which qmgr.ts waits for).
 *
 * Not here: scheduling (qmgr.ts), service parameters (transports.ts),
 * hosting agents (delivery/hosting/).
 */
import type { LoadedConfig } from '../config/load.ts';
import type { AgentContext, SmtpAgentFactory } from '../delivery/hosting/context.ts';
import { createServiceAgent, defaultSmtpAgent } from '../delivery/hosting/service-agent.ts';
import { tlsLogLevel } from '../delivery/tls/summary.ts';
import type { DeliveryAgent } from '../delivery/types.ts';
import { TableSet } from '../maps/registry.ts';
import type { MailLog } from '../reports/maillog.ts';
import type { ObservabilityHooks } from '../reports/observe-hooks.ts';
import { programLog } from '../reports/program-log.ts';
import { Router } from './resolve.ts';
import { agentKind, deliveryServices, destinationSettings, logProgram, recipientLimit, serviceConfig, serviceMaxproc, serviceOverrides } from './transports.ts';
import type { QmgrRuntime, RuntimeFactory, TransportHandle } from './types.ts';

export type { AgentContext, SmtpAgentFactory } from '../delivery/hosting/context.ts';

/** `hooks`: the daemon's metrics hooks (reports/observe-hooks.ts HookRelay), handed to every agent. */
export function createRuntimeFactory(log: MailLog, smtpAgent: SmtpAgentFactory = defaultSmtpAgent, hooks?: ObservabilityHooks): RuntimeFactory {
  return async (config: LoadedConfig): Promise<QmgrRuntime> => {
    const tables = new TableSet({
      baseDir: config.configDir,
      defaultType: config.get('default_database_type') || 'hash',
      warn: (m) => log.warn('qmgr', m),
    });
    const router = new Router({ config, tables });
    const handles = new Map<string, TransportHandle>();
    const agents: DeliveryAgent[] = [];
    try {
      for (const s of deliveryServices(config)) {
        const scfg = serviceConfig(config, s, (m) => log.warn('qmgr', m));
        const ctx: AgentContext = { service: s, config: scfg, overrides: serviceOverrides(s), tables, log: programLog(log, scfg.get('syslog_name') || 'sealpost'), ...(hooks ? { hooks } : {}) };
        const agent = await createServiceAgent(agentKind(s)!, ctx, smtpAgent);
        agents.push(agent);
        handles.set(s.name, {
          name: s.name,
          agent,
          maxproc: serviceMaxproc(s, config),
          logProgram: logProgram(s, scfg),
          tlsLogLevel: tlsLogLevel(scfg),
          recipientLimit: recipientLimit(config, s.name),
          destination: destinationSettings(config, s.name),
        });
      }
    } catch (err) {
      await Promise.allSettled(agents.map((a) => a.close()));
      await tables.close();
      throw err;
    }
    return {
      config,
      router,
      transport: (name) => handles.get(name),
      close: async () => {
        await Promise.allSettled(agents.map((a) => a.close()));
        await tables.close();
      },
    };
  };
}
