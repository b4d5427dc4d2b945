import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../../src/config/load.ts';
import { EventBus } from '../../../src/reports/events.ts';
import { NO_HOOKS } from '../../../src/reports/observe-hooks.ts';
import { observabilityKey, startObservability } from '../../../src/reports/observe.ts';
import { findProof } from '../../../src/reports/proof.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';
import { publishMessage } from '../../harness/delivery-events.ts';

test('by default the stores record under data_directory and no listener runs (metrics off: NO_HOOKS)', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), `queue_directory = ${t.dir}/queue\ndata_directory = ${t.dir}/data\n`);
    const config = loadConfig({ configDir: t.dir });
    const bus = new EventBus();
    const o = await startObservability({ config, bus, spool: await createSpool(join(t.dir, 'queue'), { fsync: false }), warn: (m) => assert.fail(m) });
    assert.equal(o.url, undefined);
    assert.equal(o.hooks, NO_HOOKS);
    publishMessage(bus, { queueId: 'W1', arrival: Date.now(), groups: [{ session: { domain: 'bank.example', time: Date.now(), source: 'dane', trust: 'Verified' }, recipients: ['a@bank.example'], status: 'sent' }] });
    await o.stop();
    assert.ok(existsSync(join(t.dir, 'data', 'tls-posture')));
    assert.equal((await findProof(join(t.dir, 'data'), 'W1'))[0]!.outcomes[0]!.session!.policy.source, 'dane');
    // After stop() nothing is subscribed any more.
    publishMessage(bus, { queueId: 'W2', arrival: Date.now(), groups: [{ session: { domain: 'x.example', time: Date.now(), trust: 'Trusted' }, recipients: ['a@x.example'], status: 'sent' }] });
    assert.deepEqual(await findProof(join(t.dir, 'data'), 'W2'), []);
  } finally {
    t.cleanup();
  }
});

test('bad listener settings are one clear error each, and a changed setting changes the reload key', async () => {
  const t = tempDir();
  try {
    const start = async (lines: string[]) => {
      writeFileSync(join(t.dir, 'main.cf'), [`queue_directory = ${t.dir}/queue`, `data_directory = ${t.dir}/data`, ...lines, ''].join('\n'));
      return startObservability({ config: loadConfig({ configDir: t.dir }), bus: new EventBus(), spool: await createSpool(join(t.dir, 'queue'), { fsync: false }), warn: () => undefined });
    };
    await assert.rejects(start(['sealpost_http_listen = 127.0.0.1:99999']), /bad port in sealpost_http_listen/);
    await assert.rejects(start(['sealpost_http_listen = 127.0.0.1:0', `sealpost_http_auth_file = ${t.dir}/missing`]), { message: `cannot read sealpost_http_auth_file = ${t.dir}/missing: ENOENT` });
    await assert.rejects(start(['sealpost_http_listen = 127.0.0.1:0', `sealpost_http_tls_cert_file = ${t.dir}/c.pem`]), /set both sealpost_http_tls_cert_file and sealpost_http_tls_key_file, or neither/);
    const a = observabilityKey(loadConfig({ configDir: t.dir }));
    writeFileSync(join(t.dir, 'main.cf'), `sealpost_metrics_destinations = bank.example\n`);
    assert.notEqual(observabilityKey(loadConfig({ configDir: t.dir })), a);
  } finally {
    t.cleanup();
  }
});
