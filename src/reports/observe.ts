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
 * Not here: the pieces themselves (metrics.ts, posture.ts, proof.ts,
 * http/server.ts), who publishes events (the queue manager).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { LoadedConfig } from '../config/load.ts';
import { UserError } from '../lib/errors.ts';
import { TableSet } from '../maps/registry.ts';
import type { Spool } from '../queue/spool.ts';
import type { EventBus, Subscriber } from './events.ts';
import { parseAuthFile, parseListen, type Credentials } from './http/access.ts';
import { ObservabilityServer, type StatusSources } from './http/server.ts';
import type { SealpostMetrics } from './metrics.ts';
import { NO_HOOKS, type ObservabilityHooks } from './observe-hooks.ts';
import { PostureStore, readPosture } from './posture.ts';
import { ProofStore } from './proof.ts';
import { SpoolQueueGauge } from './queue-gauge.ts';
import { takeSnapshot } from './queue-snapshot.ts';

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

function readParamFile(config: LoadedConfig, name: string): string {
  const file = config.get(name);
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${name} = ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function listenerSecrets(config: LoadedConfig): { credentials?: Credentials; tls?: { cert: string; key: string } } {
  const out: { credentials?: Credentials; tls?: { cert: string; key: string } } = {};
  if (config.get('sealpost_http_auth_file') !== '') out.credentials = parseAuthFile(readParamFile(config, 'sealpost_http_auth_file'), config.get('sealpost_http_auth_file'));
  const cert = config.get('sealpost_http_tls_cert_file');
  const key = config.get('sealpost_http_tls_key_file');
  if ((cert === '') !== (key === '')) throw new UserError('set both sealpost_http_tls_cert_file and sealpost_http_tls_key_file, or neither');
  if (cert !== '') out.tls = { cert: readParamFile(config, 'sealpost_http_tls_cert_file'), key: readParamFile(config, 'sealpost_http_tls_key_file') };
  return out;
}

function statusSources(o: ObservabilityOptions, gauge: SpoolQueueGauge, posture: PostureStore | undefined, storesOpen: () => boolean): StatusSources {
  const { config, spool } = o;
  return {
    hostname: config.get('myhostname') || hostname(),
    version: config.get('mail_version'),
    startedAt: o.startedAt ?? Date.now(),
    queues: () => gauge.read(),
    snapshot: () => takeSnapshot(spool),
    posture: async (w) => {
      // Before openStores() the counts stay in memory (the directory may not exist yet).
      if (storesOpen()) await posture?.flush();
      return readPosture(config.get('data_directory'), w);
    },
    explain: async (recipient) => {
      // tls-explain.ts is loaded only when a page asks (it pulls in the router and the policy engine).
      const { explainRecipient } = await import('../cli/tls-explain.ts');
      const tables = new TableSet({ baseDir: config.configDir, defaultType: config.get('default_database_type') || 'hash' });
      try {
        return await explainRecipient({ config, tables, recipient, sender: '' });
      } finally {
        await tables.close();
      }
    },
  };
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
    const listen = o.storesOnly ? undefined : parseListen(config.get('sealpost_http_listen'));
    if (!listen) return { hooks: NO_HOOKS, openStores, stop };
    const secrets = listenerSecrets(config);
    const gauge = new SpoolQueueGauge(config.get('queue_directory'));
    // prom-client is loaded only when metrics are on.
    const { SealpostMetrics } = await import('./metrics.ts');
    const metrics = new SealpostMetrics({
      destinations: config.getList('sealpost_metrics_destinations'),
      destinationLimit: config.getInt('sealpost_metrics_destination_limit'),
      queueGauge: gauge,
      version: config.get('mail_version'),
    });
    cleanups.push(bus.subscribe(metrics.subscriber));
    const server = new ObservabilityServer({ listen, ...secrets, metrics, status: statusSources(o, gauge, posture, stores.isOpen), onError: o.warn });
    const { url } = await server.start();
    cleanups.push(() => server.stop());
    return { hooks: metrics.hooks, metrics, url, openStores, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
