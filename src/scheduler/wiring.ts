/**
 * wiring.ts — the queue manager's runtime built from a configuration: the
 * lookup tables, the router (resolve.ts) and one delivery agent per master.cf
 * delivery service (smtp → delivery/smtp/agent.ts with its resolver and TLS
 * engine; error/retry/discard → delivery/builtin.ts).
 *
 * Contract: `createRuntimeFactory(log)` returns the RuntimeFactory the
 * QueueManager calls at start and on every reload; each call opens its own
 * tables and agents, and the runtime's close() closes them (after the
 * deliveries still running on them, which qmgr.ts waits for). The SMTP agent
 * is loaded on first use (smtp-agent.ts), so a configuration without smtp
 * services never loads the SMTP client.
 *
 * Not here: scheduling (qmgr.ts), service parameters (transports.ts).
 */
import type { LoadedConfig } from '../config/load.ts';
import type { MasterService } from '../config/master-cf.ts';
import { createDiscardAgent, createErrorAgent } from '../delivery/builtin.ts';
import type { DeliveryAgent } from '../delivery/types.ts';
import { TableSet } from '../maps/registry.ts';
import type { MailLog } from '../reports/maillog.ts';
import { Router } from './resolve.ts';
import { agentKind, deliveryServices, destinationSettings, logProgram, recipientLimit, serviceConfig, serviceMaxproc } from './transports.ts';
import type { QmgrRuntime, RuntimeFactory, TransportHandle } from './types.ts';

export interface AgentContext {
  readonly service: MasterService;
  /** main.cf + the service's -o overrides. */
  readonly config: LoadedConfig;
  readonly tables: TableSet;
  /** Logs as `syslog_name/service` of the service's configuration. */
  readonly log: MailLog;
}

export type SmtpAgentFactory = (ctx: AgentContext) => Promise<DeliveryAgent>;

/** Log with a service's own syslog_name (`-o syslog_name=sealpost/relay` → `sealpost/relay/smtp`). */
export function programLog(base: MailLog, syslogName: string): MailLog {
  const program = (service: string): string => (service.includes('/') ? service : `${syslogName}/${service}`);
  return {
    write: (s, t) => base.write(program(s), t),
    warn: (s, t) => base.warn(program(s), t),
    close: () => undefined,
  };
}

async function defaultSmtpAgent(ctx: AgentContext): Promise<DeliveryAgent> {
  // sealpost_delivery_workers: the SMTP client in worker threads (worker-agent.ts), or here.
  const workers = ctx.config.getInt('sealpost_delivery_workers');
  if (workers > 0) {
    const { createWorkerSmtpAgent } = await import('./worker-agent.ts');
    return createWorkerSmtpAgent(ctx, workers);
  }
  const { createSmtpServiceAgent } = await import('./smtp-agent.ts');
  return createSmtpServiceAgent(ctx);
}

export function createRuntimeFactory(log: MailLog, smtpAgent: SmtpAgentFactory = defaultSmtpAgent): RuntimeFactory {
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
        const kind = agentKind(s)!;
        const scfg = serviceConfig(config, s, (m) => log.warn('qmgr', m));
        const ctx: AgentContext = { service: s, config: scfg, tables, log: programLog(log, scfg.get('syslog_name') || 'sealpost') };
        const agent = kind === 'smtp' ? await smtpAgent(ctx) : kind === 'discard' ? createDiscardAgent() : createErrorAgent(kind);
        agents.push(agent);
        handles.set(s.name, {
          name: s.name,
          agent,
          maxproc: serviceMaxproc(s, config),
          logProgram: logProgram(s, scfg),
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
