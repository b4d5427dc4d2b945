import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';

const ZONE = {
  'single.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
  'mx.single.example': { A: ['127.0.0.2'] },
};
const BIG = `Subject: big\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(1);
const bigBody = (lines: number): string => `Subject: big\r\n\r\n${`${'y'.repeat(998)}\r\n`.repeat(lines)}`;

test('connection dropped during DATA: deferred 4.4.2 "lost connection ... while sending message body", never bounced', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', dropDuringData: 'body' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const r = await lab.deliver({ recipients: ['a@single.example', 'b@single.example'], nexthops: ['single.example'], content: bigBody(8000) });
    for (const i of [0, 1]) {
      const o = outcomeOf(r, i);
      assert.equal(o.status, 'deferred');
      assert.equal(o.dsn, '4.4.2');
      assert.equal(o.reason, 'lost connection with mx.single.example[127.0.0.2] while sending message body');
      assert.equal(o.relay, `mx.single.example[127.0.0.2]:${rx!.port}`);
    }
    assert.equal(rx!.messages.length, 0);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('connection dropped after the final dot: deferred "while sending end of data -- message may be sent more than once"', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', dropDuringData: 'dot' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], content: BIG }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.4.2']);
    assert.equal(o.reason, 'lost connection with mx.single.example[127.0.0.2] while sending end of data -- message may be sent more than once');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('slow receiver: smtp_data_done_timeout (1s) expires waiting for the reply to the final dot', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', delayMs: { dataEnd: 3000 } }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_data_done_timeout: '1s' });
  try {
    // The receiver would answer 250 after 3 s: a deferral for a timeout proves our 1 s timer fired first.
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.4.2']);
    assert.equal(o.reason, 'conversation with mx.single.example[127.0.0.2] timed out while sending end of data -- message may be sent more than once');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('receiver that stops reading: smtp_data_xfer_timeout (1s) expires while sending the body', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', stallData: true }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_data_xfer_timeout: '1s' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], content: bigBody(30000) }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.4.2']);
    assert.equal(o.reason, 'conversation with mx.single.example[127.0.0.2] timed out while sending message body');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('greeting 421: "refused to talk to me", deferred and throttled; a 5xx greeting is skipped like 4xx', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', greeting: '421 4.3.2 Service not available' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const r = await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.3.2']);
    assert.equal(o.reason, 'host mx.single.example[127.0.0.2] refused to talk to me: 421 4.3.2 Service not available');
    assert.deepEqual(r.siteDeferral, { reason: o.reason, dsn: '4.3.2' });
  } finally {
    await lab.close();
    await rx!.close();
  }
  const [rx5] = await startReceivers([{ host: '127.0.0.2', greeting: '554 5.7.1 go away' }]);
  const lab5 = await deliveryLab(ZONE, rx5!.port);
  try {
    const o = outcomeOf(await lab5.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    // smtp_skip_5xx_greeting = yes (default): treated as a soft error.
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.7.1']);
    assert.equal(o.reason, 'host mx.single.example[127.0.0.2] refused to talk to me: 554 5.7.1 go away');
  } finally {
    await lab5.close();
    await rx5!.close();
  }
});

test('451 after the final dot on the first try, delivered on the retry', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', replies: { dataEnd: (_d, s) => (s.seen === 1 ? '451 4.3.0 Error: queue file write error' : undefined) } }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const first = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.deepEqual([first.status, first.dsn], ['deferred', '4.3.0']);
    assert.equal(first.reason, 'host mx.single.example[127.0.0.2] said: 451 4.3.0 Error: queue file write error (in reply to end of DATA command)');
    const second = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(second.status, 'sent');
    assert.equal(rx!.messages.length, 1);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('message larger than the server SIZE limit bounces 5.3.4 before MAIL FROM', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', size: 1000 }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'], content: bigBody(2) }));
    assert.deepEqual([o.status, o.dsn], ['bounced', '5.3.4']);
    assert.match(o.reason, /^message size \d+ exceeds size limit 1000 of server mx\.single\.example\[127\.0\.0\.2\]$/);
    assert.ok(!rx!.transcript.some((l) => l.startsWith('C: MAIL')));
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('smtp_helo_timeout (1s): a server that never greets → "timed out while receiving the initial server greeting"', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', delayMs: { greeting: 3000 } }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_helo_timeout: '1s' });
  try {
    const r = await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.4.2']);
    assert.equal(o.reason, 'conversation with mx.single.example[127.0.0.2] timed out while receiving the initial server greeting');
    assert.ok(r.siteDeferral);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('smtp_rcpt_timeout (1s): a slow RCPT reply → "timed out while sending RCPT TO"', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', delayMs: { rcpt: 3000 } }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_rcpt_timeout: '1s' });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.4.2']);
    assert.equal(o.reason, 'conversation with mx.single.example[127.0.0.2] timed out while sending RCPT TO');
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('smtp_bind_address: the connection comes from the configured source address', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2' }]);
  const lab = await deliveryLab(ZONE, rx!.port, { smtp_bind_address: '127.0.0.9' });
  try {
    assert.equal(outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] })).status, 'sent');
    assert.deepEqual(rx!.clientAddresses, ['127.0.0.9']);
  } finally {
    await lab.close();
    await rx!.close();
  }
});
