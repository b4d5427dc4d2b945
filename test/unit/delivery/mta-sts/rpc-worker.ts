/**
 * rpc-worker.ts — the worker-thread side of rpc.test.ts (not a test file):
 * receives a MessagePort, asks the main thread's MTA-STS service through an
 * StsClient for the given domains, all at once, and posts the answers back.
 */
import { parentPort } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { StsClient } from '../../../../src/delivery/mta-sts/rpc.ts';

const parent = parentPort;
if (!parent) throw new Error('rpc-worker.ts runs only as a worker thread');
parent.once('message', (m: { port: MessagePort; domains: string[] }) => {
  const client = new StsClient(m.port, 5000);
  void Promise.all(m.domains.map((d) => client.lookup(d))).then((answers) => {
    parent.postMessage(answers);
    client.close();
  });
});
