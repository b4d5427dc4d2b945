/**
 * types.ts — what the queue manager (qmgr.ts) needs from its collaborators,
 * as narrow interfaces so that each can be injected (tests use fakes):
 * the router (resolve.ts), the delivery agents per transport (transports.ts),
 * the delivery-line formatter and the bounce builder (reports/).
 *
 * Contract: these mirror the shapes the other modules export
 * (scheduler/resolve.ts `Router`/`Route`); wiring.ts plugs the
 * real ones in, and the type checker verifies they fit.
 *
 * Not here: behaviour.
 */
import type { LoadedConfig } from '../config/load.ts';
import type { DeliveryAgent } from '../delivery/types.ts';
import type { DestinationSettings } from './destination-queue.ts';
import type { Route as ResolvedRoute } from './resolve.ts';

type Optional<T, K extends keyof T> = Omit<T, K> & Partial<Pick<T, K>>;

/** scheduler/resolve.ts Route (where one recipient goes), the explain-only fields optional so tests can fake a router. */
export type Route =
  | Optional<Extract<ResolvedRoute, { kind: 'deliver' }>, 'domainClass' | 'steps'>
  | Optional<Extract<ResolvedRoute, { kind: 'bounce' | 'defer' }>, 'steps'>;

export interface RouterLike {
  resolve(recipient: string, sender: string): Promise<Route>;
}

/** One master.cf delivery service as the queue manager uses it. */
export interface TransportHandle {
  readonly name: string;
  readonly agent: DeliveryAgent;
  /** master.cf maxproc (or default_process_limit); 0 = no limit. */
  readonly maxproc: number;
  /** The log program for its outcome lines: `sealpost/smtp`, `sealpost/relay/smtp`. */
  readonly logProgram: string;
  /** The service's smtp_tls_loglevel (the TLS summary line is logged at ≥ 1); default 1. */
  readonly tlsLogLevel?: number;
  /** <transport>_destination_recipient_limit. */
  readonly recipientLimit: number;
  readonly destination: DestinationSettings;
}

/** Everything that changes on reload. */
export interface QmgrRuntime {
  readonly config: LoadedConfig;
  readonly router: RouterLike;
  /** The handle for a transport name, or undefined when master.cf has no such delivery service. */
  transport(name: string): TransportHandle | undefined;
  /** Close agents and tables. */
  close(): Promise<void>;
}

export type RuntimeFactory = (config: LoadedConfig) => Promise<QmgrRuntime>;
