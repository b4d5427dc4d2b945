/**
 * context.ts — what hosting one master.cf delivery service needs: the
 * service, its effective configuration, the lookup tables and its log.
 *
 * Contract: a plain record built by the queue manager's wiring
 * (scheduler/wiring.ts) for each delivery service at start and at every
 * reload; the hosting modules (service-agent.ts, smtp-service.ts,
 * thread-pool.ts) only read it. `overrides` are the service's master.cf `-o`
 * values with `$service_name` expanded, so a worker thread can load the same
 * configuration again.
 *
 * `sts` is the daemon's one MTA-STS policy service (mta-sts/service.ts,
 * created in the master's thread by daemon/main.ts): an agent in this thread
 * asks it directly, a worker thread through a channel (thread-pool.ts).
 * Absent (tests, tools): no MTA-STS lookups.
 *
 * Not here: building agents (service-agent.ts).
 */
import type { LoadedConfig } from '../../config/load.ts';
import type { MasterService } from '../../config/master-cf.ts';
import type { ObservabilityHooks } from '../../reports/observe-hooks.ts';
import type { TableSet } from '../../maps/registry.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { StsPolicySource } from '../mta-sts/service.ts';
import type { DeliveryAgent } from '../types.ts';

export interface AgentContext {
  readonly service: MasterService;
  /** main.cf + the service's -o overrides. */
  readonly config: LoadedConfig;
  /** The service's -o overrides, `$service_name` expanded. */
  readonly overrides: Readonly<Record<string, string>>;
  readonly tables: TableSet;
  /** Metrics hooks (DNS lookups); a worker thread forwards its calls to these (thread-pool.ts). */
  readonly hooks?: ObservabilityHooks;
  /** Logs as `syslog_name/service` of the service's configuration. */
  readonly log: MailLog;
  /** The daemon's MTA-STS policy service (see the header). */
  readonly sts?: StsPolicySource;
}

/** How an smtp(8) service's agent is made (tests inject their own). */
export type SmtpAgentFactory = (ctx: AgentContext) => Promise<DeliveryAgent>;
