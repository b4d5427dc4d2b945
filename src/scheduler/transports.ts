/**
 * transports.ts — master.cf delivery services as the queue manager sees
 * them: which services are delivery agents, each one's own configuration
 * (main.cf + its `-o` overrides), its process limit and its scheduling
 * parameters.
 *
 * Contract (pure apart from loadConfig reading main.cf):
 * - Time values are parsed as every time parameter is (config/params.ts
 *   parseTime); a bad one is a ConfigError naming the parameter, never 0.
 * - A transport(5) name is a master.cf service of type `unix` whose command
 *   is a delivery agent sealpost has: `smtp` (also for `relay` and any other
 *   name running smtp), `error` (the `error` and `retry` services) and
 *   `discard`.
 * - master(5) maxproc: `-` is default_process_limit, `0` is no limit; it caps
 *   the concurrent requests of that transport.
 * - The log program is `syslog_name/command` of the service's own
 *   configuration (`relay` with `-o syslog_name=sealpost/$service_name` logs
 *   as `sealpost/relay/smtp`, as Postfix does). `$service_name` in `-o` values
 *   is the service's name (master(8) sets it for the child).
 * - Scheduling parameters come from main.cf (qmgr(8) reads them, not the
 *   agent): `<transport>_destination_concurrency_limit` falls back to the
 *   `default_` parameter (postconf(5) "transport_..." parameters), and so on.
 *
 * Not here: creating agents (wiring.ts), scheduling (qmgr.ts).
 */
import { loadConfig, type LoadedConfig } from '../config/load.ts';
import type { MasterService } from '../config/master-cf.ts';
import type { Config } from '../config/types.ts';
import { parseTime } from '../config/params.ts';
import { ConfigError } from '../lib/errors.ts';
import { parseFeedback } from './concurrency.ts';
import type { DestinationSettings } from './destination-queue.ts';

export type AgentKind = 'smtp' | 'error' | 'retry' | 'discard';

/** The agent kind a master.cf service runs, or undefined when it is no delivery agent sealpost has. */
export function agentKind(s: MasterService): AgentKind | undefined {
  if (s.type !== 'unix') return undefined;
  if (s.command === 'smtp') return 'smtp';
  if (s.command === 'discard') return 'discard';
  // error(8) runs as `retry` too: "retry unix - - y - - error" defers instead of bouncing.
  if (s.command === 'error') return s.name === 'retry' ? 'retry' : 'error';
  return undefined;
}

export function deliveryServices(config: LoadedConfig): MasterService[] {
  return config.services.filter((s) => agentKind(s) !== undefined);
}

/** master(8): `$service_name` / `${service_name}` in `-o` values. */
export function serviceOverrides(s: MasterService): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of s.overrides) out[name] = value.replace(/\$\{service_name\}|\$service_name\b/g, s.name);
  return out;
}

/** main.cf + the service's `-o` overrides (the main config itself when there are none). */
export function serviceConfig(main: LoadedConfig, s: MasterService, warn?: (m: string) => void): LoadedConfig {
  if (s.overrides.length === 0) return main;
  return loadConfig({ configDir: main.configDir, overrides: serviceOverrides(s), ...(warn ? { warn } : {}) });
}

/** master(5) maxproc. */
export function serviceMaxproc(s: MasterService, main: Config): number {
  if (s.maxproc === '-') return intParam(main, 'default_process_limit', 100);
  return Number(s.maxproc);
}

export function logProgram(s: MasterService, serviceCfg: Config): string {
  return `${serviceCfg.get('syslog_name') || 'sealpost'}/${s.command}`;
}

function intParam(config: Config, name: string, fallback: number): number {
  const v = config.get(name).trim();
  return /^\d+$/.test(v) ? Number(v) : fallback;
}

/** `<transport>_<suffix>` when it exists and is set to something, else `defaultName`. */
function transportValue(config: Config, transport: string, suffix: string, defaultName: string): string {
  const own = config.raw(`${transport}_${suffix}`) !== undefined ? config.get(`${transport}_${suffix}`).trim() : '';
  return own !== '' ? own : config.get(defaultName).trim();
}

function transportInt(config: Config, transport: string, suffix: string, defaultName: string, fallback: number): number {
  const v = transportValue(config, transport, suffix, defaultName);
  return /^\d+$/.test(v) ? Number(v) : fallback;
}

/** A time parameter in ms, parsed as every time parameter is (config/params.ts parseTime); a bad value names the parameter. */
function transportTimeMs(config: Config, transport: string, suffix: string, defaultName: string): number {
  const text = transportValue(config, transport, suffix, defaultName);
  try {
    return parseTime(text) * 1000;
  } catch (err) {
    const name = config.raw(`${transport}_${suffix}`) !== undefined ? `${transport}_${suffix}` : defaultName;
    throw new ConfigError(`bad value for parameter "${name}": ${(err as Error).message}`);
  }
}

/** qmgr(8) scheduling settings of one transport. */
export function destinationSettings(main: Config, transport: string): DestinationSettings {
  return {
    limit: transportInt(main, transport, 'destination_concurrency_limit', 'default_destination_concurrency_limit', 20),
    initial: transportInt(main, transport, 'initial_destination_concurrency', 'initial_destination_concurrency', 5),
    positive: parseFeedback(transportValue(main, transport, 'destination_concurrency_positive_feedback', 'default_destination_concurrency_positive_feedback')) ?? 1,
    negative: parseFeedback(transportValue(main, transport, 'destination_concurrency_negative_feedback', 'default_destination_concurrency_negative_feedback')) ?? 1,
    failedCohortLimit: transportInt(main, transport, 'destination_concurrency_failed_cohort_limit', 'default_destination_concurrency_failed_cohort_limit', 1),
    rateDelayMs: transportTimeMs(main, transport, 'destination_rate_delay', 'default_destination_rate_delay'),
  };
}

/** <transport>_destination_recipient_limit (default_destination_recipient_limit, 50). */
export function recipientLimit(main: Config, transport: string): number {
  return transportInt(main, transport, 'destination_recipient_limit', 'default_destination_recipient_limit', 50);
}
