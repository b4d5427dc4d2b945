/**
 * rpc.ts — the MTA-STS policy source across threads: the daemon's one
 * StsService (main thread) answers the SMTP clients in the delivery worker
 * threads over a MessagePort, so every worker shares one cache and one
 * fetch per domain.
 *
 * Protocol (structured-clone messages, plain data only):
 *   worker → main  {t:'sts-lookup', id, domain}
 *   main → worker  {t:'sts-answer', id, answer: StsLookup}
 * Contract:
 * - `openStsChannel(source)` (main thread) makes a MessageChannel, serves one
 *   end and returns the other, to be handed to a worker in `workerData`
 *   with `transferList: [port]`; `close()` detaches it.
 * - `StsClient` (worker thread) implements StsPolicySource over the port.
 *   A lookup that gets no answer within `timeoutMs`, or whose port closes,
 *   answers `{kind: 'error'}` — the caller defers (fail closed: the cache it
 *   cannot reach may hold an enforce policy). The port keeps the worker's
 *   event loop alive only while a lookup is waiting.
 * - `serveStsLookups(source, port)` is the serving half for a port made
 *   elsewhere.
 *
 * Not here: the policy logic (service.ts), starting workers
 * (scheduler/worker-agent.ts passes the port; see docs/tls.md).
 */
import { MessageChannel } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import type { StsLookup, StsPolicySource } from './service.ts';

interface LookupRequest {
  readonly t: 'sts-lookup';
  readonly id: number;
  readonly domain: string;
}

interface LookupAnswer {
  readonly t: 'sts-answer';
  readonly id: number;
  readonly answer: StsLookup;
}

/** Serve lookups arriving on `port`; returns the detach function. */
export function serveStsLookups(source: StsPolicySource, port: MessagePort): () => void {
  const onMessage = (m: LookupRequest): void => {
    if (!m || m.t !== 'sts-lookup' || typeof m.id !== 'number' || typeof m.domain !== 'string') return;
    void source.lookup(m.domain).then(
      (answer) => port.postMessage({ t: 'sts-answer', id: m.id, answer } satisfies LookupAnswer),
      (err: unknown) => port.postMessage({ t: 'sts-answer', id: m.id, answer: { kind: 'error', detail: `MTA-STS policy lookup failed: ${String(err)}` } } satisfies LookupAnswer),
    );
  };
  port.on('message', onMessage);
  // The serving end never holds the main thread's event loop open by itself.
  port.unref();
  return () => {
    port.off('message', onMessage);
    port.close();
  };
}

/** A channel for one worker: `port` goes to the worker (transferList), the other end is served here. */
export function openStsChannel(source: StsPolicySource): { readonly port: MessagePort; close(): void } {
  const channel = new MessageChannel();
  const detach = serveStsLookups(source, channel.port1);
  return { port: channel.port2, close: detach };
}

interface Waiting {
  readonly resolve: (a: StsLookup) => void;
  readonly timer: NodeJS.Timeout;
}

export class StsClient implements StsPolicySource {
  private readonly waiting = new Map<number, Waiting>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly port: MessagePort,
    private readonly timeoutMs = 60_000,
  ) {
    port.on('message', (m: LookupAnswer) => {
      if (!m || m.t !== 'sts-answer') return;
      this.settle(m.id, m.answer);
    });
    port.on('close', () => this.failAll('the MTA-STS policy service is gone'));
    port.unref();
  }

  lookup(domain: string): Promise<StsLookup> {
    if (this.closed) return Promise.resolve({ kind: 'error', detail: 'the MTA-STS policy service is gone' });
    const id = this.nextId++;
    return new Promise<StsLookup>((resolve) => {
      const timer = setTimeout(() => this.settle(id, { kind: 'error', detail: `no answer from the MTA-STS policy service within ${this.timeoutMs} ms` }), this.timeoutMs);
      this.waiting.set(id, { resolve, timer });
      if (this.waiting.size === 1) this.port.ref();
      this.port.postMessage({ t: 'sts-lookup', id, domain } satisfies LookupRequest);
    });
  }

  private settle(id: number, answer: StsLookup): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (this.waiting.size === 0) this.port.unref();
    w.resolve(answer);
  }

  private failAll(detail: string): void {
    this.closed = true;
    for (const id of [...this.waiting.keys()]) this.settle(id, { kind: 'error', detail });
  }

  close(): void {
    this.failAll('the MTA-STS client was closed');
    this.port.close();
  }
}
