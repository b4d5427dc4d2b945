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

test('a 450 at RCPT TO on a reused connection to the only server: deferred on that session (connUse=2, its record, tls=), no site deferral', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', replies: { rcpt: (path) => (path.startsWith('busy') ? '450 4.2.1 mailbox busy' : undefined) } }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    outcomeOf(await lab.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    const r = await lab.deliver({ recipients: ['busy@single.example'], nexthops: ['single.example'] });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.dsn, o.connUse, o.tls], ['deferred', '4.2.1', 2, 'none']);
    assert.equal(o.reason, 'host mx.single.example[127.0.0.2] said: 450 4.2.1 mailbox busy (in reply to RCPT TO command)');
    assert.equal(r.sessions!.length, 1);
    assert.equal(o.session, 0);
    assert.equal(r.sessions![0]!.server.address, '127.0.0.2');
    // A recipient-level 4xx does not mark the destination dead (Postfix smtp_rcpt_fail does not throttle).
    assert.equal(r.siteDeferral, undefined);
    // The cached session was the final server: no "QUEUEID: reason" line for a next server.
    assert.deepEqual(lab.log.lines.filter((l) => l.includes('said: 450')), []);
    assert.equal(rx!.connections, 1);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('a 450 at RCPT TO on a reused connection with another MX left: the recipient is kept and sent through the other MX', async () => {
  const zone = {
    'two.example': { MX: [[10, 'mx1.two.example'], [20, 'mx2.two.example']] as Array<[number, string]> },
    'mx1.two.example': { A: ['127.0.0.2'] },
    'mx2.two.example': { A: ['127.0.0.3'] },
  };
  const [mx1, mx2] = await startReceivers([
    { host: '127.0.0.2', replies: { rcpt: (path) => (path.startsWith('busy') ? '450 4.2.1 mailbox busy' : undefined) } },
    { host: '127.0.0.3' },
  ]);
  const lab = await deliveryLab(zone, mx1!.port);
  try {
    assert.equal(outcomeOf(await lab.deliver({ recipients: ['a@two.example'], nexthops: ['two.example'] })).status, 'sent');
    const r = await lab.deliver({ recipients: ['busy@two.example'], nexthops: ['two.example'], queueId: '4B00000001' });
    const o = outcomeOf(r);
    assert.deepEqual([o.status, o.relay, o.connUse], ['sent', `mx2.two.example[127.0.0.3]:${mx2!.port}`, undefined]);
    assert.ok(lab.log.lines.some((l) => l.endsWith('4B00000001: host mx1.two.example[127.0.0.2] said: 450 4.2.1 mailbox busy (in reply to RCPT TO command)')), lab.log.lines.join('\n'));
    assert.deepEqual([mx1!.connections, mx2!.connections], [1, 1]);
    assert.deepEqual(mx2!.messages.map((m) => m.rcptTo), [['busy@two.example']]);
  } finally {
    await lab.close();
    await mx1!.close();
    await mx2!.close();
  }
});
