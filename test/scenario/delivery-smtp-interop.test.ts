import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { tempDir } from '../harness/cli.ts';
import { closedPort, deliveryLab, outcomeOf } from '../harness/smtp-receiver.ts';

const ZONE = {
  'sink.example': { MX: [[10, 'mx.sink.example']] as Array<[number, string]> },
  'mx.sink.example': { A: ['127.0.0.2'] },
};

async function waitForPort(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 50; i++) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.2', () => {
        s.destroy();
        r(true);
      });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('smtp-sink did not start');
}

test('interop: Postfix smtp-sink receives 30 pipelined messages over reused connections, content intact', async () => {
  const t = tempDir('sealpost-sink-');
  const port = await closedPort(['127.0.0.2']);
  // smtp-sink -d: dump each message (envelope records and content) into a file under the directory.
  const sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, '-d', `${t.dir}/%M.`, `127.0.0.2:${port}`, '64'], { stdio: 'ignore' });
  await waitForPort(port);
  const lab = await deliveryLab(ZONE, port);
  try {
    const results = [];
    for (let batch = 0; batch < 3; batch++) {
      results.push(...await Promise.all(Array.from({ length: 10 }, (_, i) => lab.deliver({
        recipients: [`u${batch}-${i}@sink.example`, `v${batch}-${i}@sink.example`], nexthops: ['sink.example'],
        content: `Subject: m${batch}-${i}\r\n\r\n.leading dot\r\nbody ${batch}-${i}\r\n`,
      }))));
    }
    for (const r of results) {
      for (const i of [0, 1]) {
        const o = outcomeOf(r, i);
        assert.equal(o.status, 'sent');
        assert.match(o.reason, /^250 2\.0\.0 Ok/);
        assert.equal(o.relay, `mx.sink.example[127.0.0.2]:${port}`);
      }
    }
    assert.ok(results.some((r) => (outcomeOf(r).connUse ?? 0) >= 2), 'some deliveries reused a connection');
    await new Promise((r) => setTimeout(r, 200));
    const dumps = readdirSync(t.dir).map((f) => readFileSync(join(t.dir, f), 'latin1'));
    assert.equal(dumps.length, 30);
    assert.ok(dumps.every((d) => d.includes('\n.leading dot\n') || d.includes('\r\n.leading dot\r\n')), dumps[0]);
  } finally {
    await lab.close();
    sink.kill();
    t.cleanup();
  }
});
