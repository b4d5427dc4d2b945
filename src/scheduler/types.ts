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

/** scheduler/resolve.ts: where one recipient goes. */
export type Route =
  | {
      readonly kind: 'deliver';
      readonly transport: string;
      readonly nexthops: readonly string[];
      readonly fallbackRelays: readonly string[];
      readonly steps?: readonly unknown[];
    }
  | { readonly kind: 'bounce' | 'defer'; readonly dsn: string; readonly reason: string; readonly steps?: readonly unknown[] };

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
