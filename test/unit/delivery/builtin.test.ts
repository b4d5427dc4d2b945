/**
 * builtin.test.ts — error(8), retry and discard(8) agents: status, dsn split
 * from the next-hop text, relay=none, one outcome per recipient.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDiscardAgent, createErrorAgent, splitDsn } from '../../../src/delivery/builtin.ts';
import type { DeliveryRequest } from '../../../src/delivery/types.ts';

function request(nexthop: string, transport: string): DeliveryRequest {
  return {
    queueId: 'ABC123',
    queueFile: '/nonexistent/active/ABC123',
    sender: 'alice@example.org',
    recipients: [
      { index: 0, address: 'a@x.example', origAddress: 'a@x.example' },
      { index: 2, address: 'b@x.example', origAddress: 'b@x.example' },
    ],
    smtputf8: false,
    eightBitMime: false,
    requireTls: false,
    tlsRequiredNo: false,
    messageSize: 100,
    arrivalTime: 1000,
    activeTime: 2000,
    transport,
    nexthops: [nexthop],
    fallbackRelays: [],
  };
}

const clock = () => {
  let t = 5000;
  return () => (t += 10);
};

test('splitDsn: leading code or the default', () => {
  assert.deepEqual(splitDsn('5.7.1 go away', '5.0.0'), { dsn: '5.7.1', text: 'go away' });
  assert.deepEqual(splitDsn('go away', '5.0.0'), { dsn: '5.0.0', text: 'go away' });
  assert.deepEqual(splitDsn('5.7.1go', '5.0.0'), { dsn: '5.0.0', text: '5.7.1go' });
  assert.deepEqual(splitDsn('4.3.2', '4.0.0'), { dsn: '4.3.2', text: '' });
});

test('error agent bounces every recipient with the next-hop text', async () => {
  const r = await createErrorAgent('error', { now: clock() }).deliver(request('5.1.1 mailbox unavailable', 'error'));
  assert.equal(r.outcomes.length, 2);
  assert.deepEqual(
    r.outcomes.map((o) => [o.index, o.status, o.dsn, o.reason, o.relay]),
    [
      [0, 'bounced', '5.1.1', 'mailbox unavailable', 'none'],
      [2, 'bounced', '5.1.1', 'mailbox unavailable', 'none'],
    ],
  );
  assert.equal(r.outcomes[0]!.timing.connected, r.outcomes[0]!.timing.started);
  assert.ok(r.outcomes[0]!.timing.finished >= r.outcomes[0]!.timing.started);
  assert.equal(r.siteDeferral, undefined);
});

test('error agent: default 5.0.0; a 4.x code is not a bounce code', async () => {
  const plain = await createErrorAgent('error').deliver(request('no mail here', 'error'));
  assert.deepEqual([plain.outcomes[0]!.dsn, plain.outcomes[0]!.reason], ['5.0.0', 'no mail here']);
  const soft = await createErrorAgent('error').deliver(request('4.3.2 later', 'error'));
  assert.equal(soft.outcomes[0]!.dsn, '5.0.0');
});

test('retry agent defers; default 4.0.0', async () => {
  const r = await createErrorAgent('retry').deliver(request('4.3.2 deferred transport', 'retry'));
  assert.deepEqual([r.outcomes[0]!.status, r.outcomes[0]!.dsn, r.outcomes[0]!.reason], ['deferred', '4.3.2', 'deferred transport']);
  const d = await createErrorAgent('retry').deliver(request('try later', 'retry'));
  assert.equal(d.outcomes[0]!.dsn, '4.0.0');
});

test('discard agent: sent, reason = next hop, dsn 2.0.0', async () => {
  const agent = createDiscardAgent();
  const r = await agent.deliver(request('example.com', 'discard'));
  assert.deepEqual(r.outcomes.map((o) => [o.status, o.dsn, o.reason, o.relay]), [
    ['sent', '2.0.0', 'example.com', 'none'],
    ['sent', '2.0.0', 'example.com', 'none'],
  ]);
  await agent.close();
});
