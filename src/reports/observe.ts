/**
 * observe.ts — the daemon's observability, built from main.cf in one call:
 * the TLS posture store, the TLS proof store, and (when
 * `sealpost_http_listen` is set) the Prometheus metrics and the HTTP listener
 * with the status page, all subscribed to the delivery event bus.
 *
 * Contract:
 * - `startObservability()` throws a UserError (one line naming the
 *   parameter or file) for a bad listen value, an unreadable auth, certificate
 *   or key file, a non-loopback listener without credentials and TLS, or an
 *   address in use; nothing is left running then.
 * - The stores are on by default (`sealpost_tls_report_enable`,
 *   `sealpost_tls_proof_enable`) and write under data_directory; metrics and
 *   the listener are off unless `sealpost_http_listen` is set.
 * - `hooks` are the metrics' hooks (observe-hooks.ts), or NO_HOOKS when
 *   metrics are off: hand them to the DNS client, the MTA-STS cache, TLS-RPT
 *   and the SMTP listeners.
 * - With `deferStores` the stores count in memory from the start and
 *   touch the disk from `openStores()` on (the daemon calls it after the
 *   privilege drop); a store never opened is not flushed at stop.
 * - `stop()` unsubscribes, flushes the stores and closes the listener.
 *   A reload that changes any `sealpost_http_*`, `sealpost_metrics_*` or
 *   `sealpost_tls_*` value needs stop() and a new start (see `observabilityKey`).
 *
 * Not here: the listener with metrics and the status page
 * (observe-listener.ts, loaded only when sealpost_http_listen is set), the
 * pieces themselves (metrics.ts, posture.ts, proof.ts, http/server.ts), who
 * publishes events (intake, the queue manager).
 */
import type { LoadedConfig } from '../config/load.ts';
import type { Spool } from '../queue/spool.ts';
import type { EventBus, Subscriber } from './events.ts';
import type { SealpostMetrics } from './metrics.ts';
import { NO_HOOKS, type ObservabilityHooks } from './observe-hooks.ts';
import { PostureStore } from './posture.ts';
import { ProofStore } from './proof.ts';

export interface ObservabilityOptions {
  readonly config: LoadedConfig;
  readonly bus: EventBus;
  readonly spool: Spool;
  readonly warn: (message: string) => void;
  readonly startedAt?: number;
  /**
   * Subscribe the stores now but touch the disk only at `openStores()`: the
   * daemon binds the listener as root and opens the stores after it became
   * mail_owner, so their files belong to mail_owner.
   */
  readonly deferStores?: boolean;
  /** Stores only, whatever sealpost_http_listen says (the daemon's fallback when the listener cannot start on reload). */
  readonly storesOnly?: boolean;
}

export interface Observability {
  readonly hooks: ObservabilityHooks;
  readonly metrics?: SealpostMetrics;
  /** The listener's URL when it runs. */
  readonly url?: string;
  /** Open the stores (create their directories, compact, start the append timers); once. */
  openStores(): Promise<void>;
  stop(): Promise<void>;
}

/** The settings whose change needs a restart of the observability pieces. */
export function observabilityKey(config: LoadedConfig): string {
  const names = [
    'sealpost_http_listen', 'sealpost_http_auth_file', 'sealpost_http_tls_cert_file', 'sealpost_http_tls_key_file',
    'sealpost_metrics_destinations', 'sealpost_metrics_destination_limit', 'sealpost_tls_report_enable',
    'sealpost_tls_report_retention', 'sealpost_tls_proof_enable', 'sealpost_tls_proof_retention', 'data_directory',
  ];
  return JSON.stringify(names.map((n) => config.get(n)));
}

/** A store as observe.ts drives it. */
interface Store {
  readonly subscriber: Subscriber;
  open(): Promise<void>;
  close(): Promise<void>;
}

/** The enabled stores, subscribed at once; the disk is touched from `open()` on. */
function storesOf(o: ObservabilityOptions, posture: PostureStore | undefined, cleanups: Array<() => Promise<void> | void>): { open: () => Promise<void>; isOpen: () => boolean } {
  const { config, bus } = o;
  const dataDir = config.get('data_directory');
  const stores: Store[] = [];
  if (posture) stores.push(posture);
  if (config.getBool('sealpost_tls_proof_enable')) {
    stores.push(new ProofStore({ dataDir, retentionMs: config.getTime('sealpost_tls_proof_retention') * 1000, onError: o.warn }));
  }
  let opened: Promise<void> | undefined;
  let done = false;
  for (const store of stores) {
    cleanups.push(async () => {
      if (opened) await opened.then(() => store.close(), () => undefined);
    });
    cleanups.push(bus.subscribe(store.subscriber));
  }
  const open = () =>
    (opened ??= (async () => {
      for (const store of stores) await store.open();
      done = true;
    })());
  return { open, isOpen: () => done };
}

function postureStore(o: ObservabilityOptions): PostureStore | undefined {
  if (!o.config.getBool('sealpost_tls_report_enable')) return undefined;
  return new PostureStore({ dataDir: o.config.get('data_directory'), retentionMs: o.config.getTime('sealpost_tls_report_retention') * 1000, onError: o.warn });
}

export async function startObservability(o: ObservabilityOptions): Promise<Observability> {
  const { config, bus } = o;
  const cleanups: Array<() => Promise<void> | void> = [];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  };
  try {
    const posture = postureStore(o);
    const stores = storesOf(o, posture, cleanups);
    const openStores = stores.open;
    if (!o.deferStores) await openStores();
    if (o.storesOnly || config.get('sealpost_http_listen').trim() === '') return { hooks: NO_HOOKS, openStores, stop };
    // The listener, prom-client and the status page are loaded only when they run.
    const { startListener } = await import('./observe-listener.ts');
    const l = await startListener(o, posture, stores.isOpen);
    cleanups.push(() => l.stop());
    return { hooks: l.metrics.hooks, metrics: l.metrics, url: l.url, openStores, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
