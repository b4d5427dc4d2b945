import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';

const ZONE = {
  'single.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
  'mx.single.example': { A: ['127.0.0.2'] },
};

test('connection reuse: two requests to the same next hop use one TCP connection; the second outcome has connUse=2', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const a = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    const b = outcomeOf(await lab.deliver({ recipients: ['b@single.example'], nexthops: ['single.example'] }));
    assert.equal(a.status, 'sent');
    assert.equal(a.connUse, undefined);
    assert.equal(b.status, 'sent');
    assert.equal(b.connUse, 2);
    assert.equal(b.relay, `mx.single.example[127.0.0.2]:${rx!.port}`);
    assert.equal(rx!.connections, 1);
    assert.deepEqual(rx!.messages.map((m) => [m.connection, m.rcptTo[0]]), [[1, 'a@single.example'], [1, 'b@single.example']]);
    // The reused session went straight to MAIL FROM: no second greeting or EHLO.
    assert.equal(rx!.transcript.filter((l) => l.startsWith('C: EHLO')).length, 1);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('smtp_connection_reuse_count_limit = 2: the third request opens a new connection', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_connection_reuse_count_limit: '2' });
  try {
    for (const x of ['a', 'b', 'c']) {
      assert.equal(outcomeOf(await lab.deliver({ recipients: [`${x}@single.example`], nexthops: ['single.example'] })).status, 'sent');
    }
    assert.equal(rx!.connections, 2);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('a cached connection the server closed meanwhile is replaced by a fresh one', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', replies: { dataEnd: (_d, s) => (s.seen === 1 ? '250 2.0.0 Ok: queued as M1' : undefined) } }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    assert.equal(outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] })).status, 'sent');
    // Drop every server-side socket: the cached session is dead.
    await rx!.dropConnections();
    await new Promise((r) => setTimeout(r, 50));
    const b = outcomeOf(await lab.deliver({ recipients: ['b@single.example'], nexthops: ['single.example'] }));
    assert.equal(b.status, 'sent');
    assert.equal(b.connUse, undefined);
    assert.equal(rx!.connections, 2);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('close() sends QUIT on cached connections', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    assert.equal(outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] })).status, 'sent');
    await lab.agent.close();
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(rx!.transcript.includes('C: QUIT'), rx!.transcript.join('\n'));
  } finally {
    await lab.close();
    await rx!.close();
  }
});
