/**
 * thread-main.ts — the worker-thread side of thread-pool.ts: one smtp(8)
 * service's SMTP client (smtp-service.ts: resolver, TLS engine, connection
 * cache) running in its own thread, so TLS handshakes and crypto, reply
 * parsing and DATA streaming use the second core while the master's thread
 * takes mail in and schedules.
 *
 * Protocol (structured-clone messages on parentPort):
 *   in:  {kind:'deliver', id, request}   {kind:'close'}
 *        {kind:'batch', items}              several of these, sent in one event-loop turn
 *   out: {kind:'ready'} | {kind:'failed', message}
 *        {kind:'log', service, text}      one mail-log line, written by the master
 *        {kind:'hook', calls}              the metrics hook calls of one turn (DNS lookups;
 *                                          only when sealpost_http_listen is set), replayed by the master
 *        {kind:'result', id, result}       {kind:'error', id, message}
 *        {kind:'closed'}
 *        {kind:'batch', items}              results and log lines of one turn, in order
 * The configuration is read again here from workerData (config directory +
 * the service's master.cf -o overrides): a LoadedConfig holds functions and
 * cannot cross threads. `stsPort`, when present, is this worker's end of a
 * channel to the daemon's MTA-STS policy service (mta-sts/rpc.ts): the TLS
 * engine asks it through an StsClient, so every worker shares one cache. Requests and results are plain data (delivery/types.ts),
 * session records included (delivery/outcome.ts).
 *
 * Not here: choosing a worker, restarting one (thread-pool.ts).
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { loadConfig } from '../../config/load.ts';
import type { DeliveryRequest } from '../types.ts';
import { forwardingHooks } from '../../reports/observe-hooks.ts';
import { TableSet } from '../../maps/registry.ts';
import type { MailLog } from '../../reports/maillog.ts';
import { StsClient } from '../mta-sts/rpc.ts';
import { createSmtpServiceAgent } from './smtp-service.ts';
import { Outbox } from './outbox.ts';

export interface ThreadData {
  readonly configDir: string;
  readonly overrides: Readonly<Record<string, string>>;
  readonly serviceName: string;
  /** The MTA-STS channel (transferred). */
  readonly stsPort?: MessagePort;
}

type Inbound =
  | { readonly kind: 'batch'; readonly items: readonly Inbound[] }
  | { readonly kind: 'deliver'; readonly id: number; readonly request: DeliveryRequest }
  | { readonly kind: 'close' };

const port = parentPort;
if (!port) throw new Error('thread-main.ts runs only as a worker thread');
const data = workerData as ThreadData;

/** Results and log lines, one message per event-loop turn (outbox.ts), in order. */
const outbox = new Outbox();
const post = (m: unknown): void => outbox.post(port, m);

const log: MailLog = {
  write: (service, text) => post({ kind: 'log', service, text }),
  warn: (service, text) => post({ kind: 'log', service, text: `warning: ${text}` }),
  close: () => undefined,
};

async function main(): Promise<void> {
  const config = loadConfig({ configDir: data.configDir, overrides: data.overrides, warn: () => undefined });
  const service = config.services.find((s) => s.name === data.serviceName);
  if (!service) throw new Error(`master.cf has no service "${data.serviceName}" any more`);
  const tables = new TableSet({ baseDir: config.configDir, defaultType: config.get('default_database_type') || 'hash', warn: (m) => log.warn('smtp', m) });
  const sts = data.stsPort ? new StsClient(data.stsPort) : undefined;
  // Metrics live in the master's registry: this thread's hook calls travel as messages (observe-hooks.ts).
  const hooks = config.get('sealpost_http_listen') !== '' ? { hooks: forwardingHooks((m) => port!.postMessage(m)) } : {};
  const agent = await createSmtpServiceAgent({ service, config, overrides: data.overrides, tables, log, ...(sts ? { sts } : {}), ...hooks });
  const onMessage = (m: Inbound): void => {
    if (m.kind === 'batch') {
      for (const item of m.items) onMessage(item);
    } else if (m.kind === 'deliver') {
      agent.deliver(m.request).then(
        (result) => post({ kind: 'result', id: m.id, result }),
        (err: unknown) => post({ kind: 'error', id: m.id, message: err instanceof Error ? err.message : String(err) }),
      );
    } else {
      void Promise.allSettled([agent.close()]).then(async () => {
        await tables.close();
        sts?.close();
        outbox.flush();
        port!.postMessage({ kind: 'closed' });
        port!.close();
      });
    }
  };
  port!.on('message', onMessage);
  port!.postMessage({ kind: 'ready' });
}

main().catch((err: unknown) => port.postMessage({ kind: 'failed', message: err instanceof Error ? err.message : String(err) }));
