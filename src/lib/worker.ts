/**
 * worker.ts — start a worker thread from a script next to the caller, the
 * same way from compiled JavaScript (dist/) and from TypeScript sources
 * (tests, development, under tsx).
 *
 * Contract: `siblingScript(import.meta.url, 'name')` is the URL of `name.js`
 * or `name.ts`, whichever matches the caller's own extension;
 * `startWorker(url, workerData, transferList)` starts it (MessagePorts in
 * `workerData` must be listed in `transferList`). Node 20 does not apply the
 * parent's `--import tsx` hooks to worker threads, so for a `.ts` script a
 * two-line bootstrap registers tsx's ESM hooks inside the worker first.
 *
 * Not here: any protocol between the threads (each caller has its own).
 */
import { Worker, type TransferListItem } from 'node:worker_threads';

export function siblingScript(callerUrl: string, name: string): URL {
  const ext = callerUrl.endsWith('.ts') ? '.ts' : '.js';
  return new URL(`./${name}${ext}`, callerUrl);
}

export function startWorker(url: URL, workerData: unknown, transferList: readonly TransferListItem[] = []): Worker {
  const transfer = transferList.length > 0 ? { transferList: [...transferList] } : {};
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData, ...transfer });
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(boot, { eval: true, workerData, ...transfer });
}
