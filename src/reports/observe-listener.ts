/**
 * observe-listener.ts — the observability listener of reports/observe.ts:
 * the Prometheus metrics (subscribed to the bus), the queue gauge and the
 * HTTP server with the status page, built from main.cf. Loaded only when
 * `sealpost_http_listen` is set, so a daemon without it never loads
 * prom-client, the HTTP server or the page renderers.
 *
 * Contract: `startListener()` throws a UserError (one line naming the
 * parameter or file) for a bad listen value, an unreadable auth, certificate
 * or key file, a non-loopback listener without credentials and TLS, or an
 * address in use; nothing is left running then. `stop()` unsubscribes the
 * metrics and closes the server.
 *
 * Not here: the stores and the reload key (observe.ts).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { LoadedConfig } from '../config/load.ts';
import { UserError } from '../lib/errors.ts';
import { TableSet } from '../maps/registry.ts';
import { parseAuthFile, parseListen, type Credentials } from './http/access.ts';
import { ObservabilityServer, type StatusSources } from './http/server.ts';
import { SealpostMetrics } from './metrics.ts';
import type { EventBus } from './events.ts';
import type { Spool } from '../queue/spool.ts';
import { readPosture, type PostureStore } from './posture.ts';
import { SpoolQueueGauge } from './queue-gauge.ts';
import { takeSnapshot } from './queue-snapshot.ts';

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

function statusSources(o: ListenerOptions, gauge: SpoolQueueGauge, posture: PostureStore | undefined, storesOpen: () => boolean): StatusSources {
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

/** What the listener needs of observe.ts's options. */
export interface ListenerOptions {
  readonly config: LoadedConfig;
  readonly bus: EventBus;
  readonly spool: Spool;
  readonly warn: (message: string) => void;
  readonly startedAt?: number;
}

export async function startListener(
  o: ListenerOptions, posture: PostureStore | undefined, storesOpen: () => boolean,
): Promise<{ metrics: SealpostMetrics; url: string; stop: () => Promise<void> }> {
  const { config, bus } = o;
  const listen = parseListen(config.get('sealpost_http_listen'));
  if (!listen) throw new UserError(`sealpost_http_listen = ${config.get('sealpost_http_listen')}: give PORT, HOST:PORT or [IPv6]:PORT`);
  const secrets = listenerSecrets(config);
  const gauge = new SpoolQueueGauge(config.get('queue_directory'));
  const metrics = new SealpostMetrics({
    destinations: config.getList('sealpost_metrics_destinations'),
    destinationLimit: config.getInt('sealpost_metrics_destination_limit'),
    queueGauge: gauge,
    version: config.get('mail_version'),
  });
  const unsubscribe = bus.subscribe(metrics.subscriber);
  const server = new ObservabilityServer({ listen, ...secrets, metrics, status: statusSources(o, gauge, posture, storesOpen), onError: o.warn });
  try {
    const { url } = await server.start();
    return {
      metrics,
      url,
      stop: async () => {
        unsubscribe();
        await server.stop();
      },
    };
  } catch (err) {
    unsubscribe();
    throw err;
  }
}
