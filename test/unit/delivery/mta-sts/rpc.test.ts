/**
 * rpc.test.ts — the MTA-STS policy service shared across real worker
 * threads: two workers ask at once, the main thread's service fetches each
 * domain once, every worker gets the same plain-data answer; a client whose
 * service does not answer, or is gone, gets `error` (the caller defers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import type { Worker } from 'node:worker_threads';
import { siblingScript, startWorker } from '../../../../src/lib/worker.ts';
import { openStsChannel, StsClient } from '../../../../src/delivery/mta-sts/rpc.ts';
import { StsService } from '../../../../src/delivery/mta-sts/service.ts';
import type { StsLookup } from '../../../../src/delivery/mta-sts/service.ts';
import { MemoryStsCache } from '../../../../src/delivery/mta-sts/cache.ts';
import type { HttpsGetRequest } from '../../../../src/delivery/mta-sts/fetch.ts';

function askFromWorker(service: StsService, domains: string[]): { worker: Worker; answers: Promise<StsLookup[]>; close: () => void } {
  const channel = openStsChannel(service);
  const worker = startWorker(siblingScript(import.meta.url, 'rpc-worker'), {});
  const answers = new Promise<StsLookup[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  worker.postMessage({ port: channel.port, domains }, [channel.port]);
  return { worker, answers, close: channel.close };
}

test('two worker threads share one service: each domain fetched once, the same answers everywhere', async () => {
  const requests: HttpsGetRequest[] = [];
  let open!: () => void;
  const gate = new Promise<void>((r) => { open = r; });
  const service = new StsService({
    resolver: { txt: async (name) => ({ status: 'found', records: [`v=STSv1; id=${name.includes('example.net') ? 'n1' : 'c1'}`], authenticated: false }) },
    getter: async (req) => {
      requests.push(req);
      await gate;
      return { kind: 'response', status: 200, contentType: 'text/plain', body: Buffer.from(`version: STSv1\nmode: enforce\nmx: *.${req.host.slice(8)}\nmax_age: 86400\n`), address: '192.0.2.1' };
    },
    store: new MemoryStsCache(),
  });
  const domains = ['example.com', 'example.com', 'example.net', 'EXAMPLE.com', 'example.com'];
  const a = askFromWorker(service, domains);
  const b = askFromWorker(service, domains);
  try {
    // Let both workers start and ask before the policy host answers.
    await new Promise((r) => setTimeout(r, 300));
    open();
    const [ra, rb] = await Promise.all([a.answers, b.answers]);
    assert.deepEqual(requests.map((r) => r.host).sort(), ['mta-sts.example.com', 'mta-sts.example.net']);
    assert.equal(service.fetchCount, 2);
    for (const answers of [ra, rb]) {
      assert.deepEqual(answers.map((x) => (x.kind === 'policy' ? `${x.policy.domain} ${x.policy.id} ${x.policy.mx.join(',')}` : x.kind)),
        ['example.com c1 *.example.com', 'example.com c1 *.example.com', 'example.net n1 *.example.net', 'example.com c1 *.example.com', 'example.com c1 *.example.com']);
    }
  } finally {
    a.close();
    b.close();
    await Promise.all([a.worker.terminate(), b.worker.terminate()]);
  }
});

test('no answer in time, or the service gone: error (fail closed), never "no policy"', async () => {
  const silent = new MessageChannel();
  const client = new StsClient(silent.port2, 100);
  assert.deepEqual(await client.lookup('example.com'), { kind: 'error', detail: 'no answer from the MTA-STS policy service within 100 ms' });
  const pending = client.lookup('example.com');
  silent.port1.close();
  assert.equal((await pending).kind, 'error');
  assert.equal((await client.lookup('example.com')).kind, 'error');
  client.close();
});
