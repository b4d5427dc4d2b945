/**
 * thread-pool.ts — an smtp(8) service's DeliveryAgent whose SMTP clients run
 * in worker threads (thread-main.ts), `sealpost_delivery_workers` of them.
 * A worker's metrics hook calls (DNS lookups) arrive as `hook` messages and
 * are replayed on `ctx.hooks` in this thread (reports/observe-hooks.ts).
 * Measured first (bench/relay.ts, bench/relay-tls.ts): with the client in
 * the master's thread, intake and delivery shared one core and TLS crypto
 * saturated it; a worker puts delivery on the second core. Threads, not
 * processes: requests and results are small plain values and the queue file
 * is read by path, so a structured-clone message is all a delivery costs.
 *
 * Contract:
 * - `deliver()` sends the request to the worker with the fewest deliveries
 *   in progress (the first on a tie). A single busy destination (a
 *   relayhost) so spreads over every worker; each worker keeps its own
 *   connection cache (smtp_connection_cache_on_demand, TLS connection
 *   reuse), which serves the requests it gets, so reuse still works.
 * - Requests to a worker (and its results and log lines back) made in the same
 *   event-loop turn travel as one message (`Outbox`): a postMessage wakes the
 *   other thread, so one per turn instead of one per request.
 * - Log lines from workers are written through the service's log in the
 *   master (one log, one order per worker). TLS lines travel in the results
 *   as session records (delivery/outcome.ts), plain data, and are logged by
 *   the queue manager's mail log subscriber next to the delivery's
 *   `status=` lines.
 * - A worker that dies (a bug, an out-of-memory) fails its pending requests
 *   with an Error — the queue manager defers those recipients — and is
 *   started again on the next request. Never a lost message: the queue
 *   file stays in active/ until the outcome is applied.
 * - `close()` asks every worker to close its cached connections and waits
 *   (at most 10 s) before terminating it.
 * - MTA-STS: with `ctx.sts` (the daemon's policy service, in this thread)
 *   each worker gets its own channel to it at start (mta-sts/rpc.ts
 *   openStsChannel(), the port transferred in the worker's start data); the
 *   channel is closed when the worker exits. A worker whose channel is gone
 *   defers MTA-STS destinations (fail closed), never delivers without the
 *   policy.
 *
 * Not here: the SMTP client (delivery/smtp/), scheduling (scheduler/qmgr.ts).
 */
import type { Worker } from 'node:worker_threads';
import { siblingScript, startWorker } from '../../lib/worker.ts';
import { openStsChannel } from '../mta-sts/rpc.ts';
import type { DeliveryAgent, DeliveryRequest, DeliveryResult } from '../types.ts';
import { applyHookMessage, type HookMessage } from '../../reports/observe-hooks.ts';
import type { AgentContext } from './context.ts';
import type { ThreadData } from './thread-main.ts';
import { Outbox } from './outbox.ts';

type Outbound =
  | { readonly kind: 'batch'; readonly items: readonly Outbound[] }
  | { readonly kind: 'ready' }
  | { readonly kind: 'failed'; readonly message: string }
  | { readonly kind: 'log'; readonly service: string; readonly text: string }
  | { readonly kind: 'result'; readonly id: number; readonly result: DeliveryResult }
  | { readonly kind: 'error'; readonly id: number; readonly message: string }
  | { readonly kind: 'closed' }
  | HookMessage;

interface Pending {
  resolve(r: DeliveryResult): void;
  reject(e: Error): void;
}

class AgentThread {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Deliveries handed over and not yet answered. */
  load = 0;
  private closedWaiter: (() => void) | undefined;
  private readonly outbox = new Outbox();

  constructor(private readonly ctx: AgentContext) {}

  private start(): Promise<void> {
    const channel = this.ctx.sts ? openStsChannel(this.ctx.sts) : undefined;
    const data: ThreadData = {
      configDir: this.ctx.config.configDir, overrides: this.ctx.overrides, serviceName: this.ctx.service.name,
      ...(channel ? { stsPort: channel.port } : {}),
    };
    const worker = startWorker(siblingScript(import.meta.url, 'thread-main'), data, channel ? [channel.port] : []);
    worker.once('exit', () => channel?.close());
    this.worker = worker;
    const ready = new Promise<void>((resolve, reject) => {
      const onMessage = (m: Outbound): void => {
        switch (m.kind) {
          case 'batch':
            for (const item of m.items) onMessage(item);
            return;
          case 'ready':
            return resolve();
          case 'failed':
            return reject(new Error(m.message));
          case 'log':
            return this.ctx.log.write(m.service, m.text);
          case 'result':
          case 'error': {
            const p = this.pending.get(m.id);
            this.pending.delete(m.id);
            if (!p) return;
            return m.kind === 'result' ? p.resolve(m.result) : p.reject(new Error(m.message));
          }
          case 'closed':
            return this.closedWaiter?.();
          case 'hook':
            return this.ctx.hooks && applyHookMessage(this.ctx.hooks, m);
        }
      };
      worker.on('message', onMessage);
      worker.on('error', (err) => {
        reject(err);
        this.ctx.log.warn('smtp', `delivery worker thread failed: ${err.message}`);
      });
      worker.on('exit', () => {
        if (this.worker === worker) {
          this.worker = undefined;
          this.ready = undefined;
        }
        reject(new Error('delivery worker thread exited'));
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          p.reject(new Error('delivery worker thread exited during the delivery'));
        }
        this.closedWaiter?.();
      });
    });
    // Avoid an unhandled rejection when nobody waits (a failed start is reported to the next caller).
    ready.catch(() => undefined);
    return ready;
  }

  async deliver(request: DeliveryRequest): Promise<DeliveryResult> {
    this.load++;
    try {
      this.ready ??= this.start();
      await this.ready;
      const worker = this.worker;
      if (!worker) throw new Error('delivery worker thread is not running');
      const id = this.nextId++;
      return await new Promise<DeliveryResult>((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.outbox.post(worker, { kind: 'deliver', id, request });
      });
    } finally {
      this.load--;
    }
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    await this.ready?.catch(() => undefined);
    const closed = new Promise<void>((resolve) => {
      this.closedWaiter = resolve;
      setTimeout(resolve, 10_000).unref();
    });
    this.outbox.flush();
    worker.postMessage({ kind: 'close' });
    await closed;
    await worker.terminate();
  }
}

export function createThreadPoolAgent(ctx: AgentContext, workers: number): DeliveryAgent {
  const threads = Array.from({ length: Math.max(1, workers) }, () => new AgentThread(ctx));
  return {
    deliver: (request) => {
      let best = threads[0]!;
      for (const t of threads) if (t.load < best.load) best = t;
      return best.deliver(request);
    },
    close: async () => {
      await Promise.allSettled(threads.map((t) => t.close()));
    },
  };
}
