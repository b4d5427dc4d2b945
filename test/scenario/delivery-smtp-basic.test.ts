import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closedPort, deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';

const ZONE = {
  'example.com': { MX: [[10, 'mx1.example.com'], [20, 'mx2.example.com']] as Array<[number, string]> },
  'mx1.example.com': { A: ['127.0.0.2'] },
  'mx2.example.com': { A: ['127.0.0.3'] },
  'single.example': { MX: [[10, 'mx.single.example']] as Array<[number, string]> },
  'mx.single.example': { A: ['127.0.0.2'] },
  'nullmx.example': { MX: [[0, '.']] as Array<[number, string]> },
  'relay.example': { A: ['127.0.0.3'] },
};

test('MX fallback: the first MX refuses the connection, the second gets the message', async () => {
  // Only 127.0.0.3 listens on the shared port: mx1 (127.0.0.2) refuses.
  const [rx] = await startReceivers([{ host: '127.0.0.3', name: 'mx2.example.com' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const r = await lab.deliver({ recipients: ['bob@example.com'], nexthops: ['example.com'] });
    const o = outcomeOf(r);
    assert.equal(o.status, 'sent');
    assert.equal(o.dsn, '2.0.0');
    assert.equal(o.reason, '250 2.0.0 Ok: queued as M1');
    assert.equal(o.relay, `mx2.example.com[127.0.0.3]:${rx!.port}`);
    assert.equal(r.siteDeferral, undefined);
    assert.equal(rx!.messages.length, 1);
    assert.equal(rx!.messages[0]!.mailFrom, 'sender@example.org');
    assert.deepEqual(rx!.messages[0]!.rcptTo, ['bob@example.com']);
    assert.equal(rx!.messages[0]!.helo, 'client.test');
    assert.match(rx!.messages[0]!.data.toString(), /^Subject: test\r\n/);
    assert.ok(lab.log.lines.includes(`sealpost/smtp: connect to mx1.example.com[127.0.0.2]:${rx!.port}: Connection refused`), lab.log.lines.join('\n'));
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('every MX unreachable: deferred 4.4.1 with the last connect error, and the site is throttled', async () => {
  const port = await closedPort(['127.0.0.2']);
  const lab = await deliveryLab(ZONE, port);
  try {
    const r = await lab.deliver({ recipients: ['bob@example.com', 'carol@example.com'], nexthops: ['example.com'] });
    for (const i of [0, 1]) {
      const o = outcomeOf(r, i);
      assert.equal(o.status, 'deferred');
      assert.equal(o.dsn, '4.4.1');
      assert.equal(o.reason, `connect to mx2.example.com[127.0.0.3]:${port}: Connection refused`);
      assert.equal(o.relay, 'none');
    }
    assert.deepEqual(r.siteDeferral, { reason: `connect to mx2.example.com[127.0.0.3]:${port}: Connection refused`, dsn: '4.4.1' });
  } finally {
    await lab.close();
  }
});

test('4xx and 5xx per recipient: one of three rejected 550, one 450, one delivered', async () => {
  const [rx] = await startReceivers([{
    host: '127.0.0.2',
    replies: {
      rcpt: (a) => (a === 'gone@single.example' ? '550 5.1.1 <gone@single.example>: Recipient address rejected: User unknown'
        : a === 'later@single.example' ? '450 4.2.0 <later@single.example>: Recipient address rejected: Greylisted' : undefined),
    },
  }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const r = await lab.deliver({ recipients: ['ok@single.example', 'gone@single.example', 'later@single.example'], nexthops: ['single.example'] });
    const relay = `mx.single.example[127.0.0.2]:${rx!.port}`;
    assert.equal(outcomeOf(r, 0).status, 'sent');
    assert.deepEqual(
      { s: outcomeOf(r, 1).status, d: outcomeOf(r, 1).dsn, t: outcomeOf(r, 1).reason, r: outcomeOf(r, 1).relay },
      { s: 'bounced', d: '5.1.1', t: 'host mx.single.example[127.0.0.2] said: 550 5.1.1 <gone@single.example>: Recipient address rejected: User unknown (in reply to RCPT TO command)', r: relay },
    );
    assert.deepEqual(
      { s: outcomeOf(r, 2).status, d: outcomeOf(r, 2).dsn, t: outcomeOf(r, 2).reason },
      { s: 'deferred', d: '4.2.0', t: 'host mx.single.example[127.0.0.2] said: 450 4.2.0 <later@single.example>: Recipient address rejected: Greylisted (in reply to RCPT TO command)' },
    );
    assert.equal(r.siteDeferral, undefined);
    assert.deepEqual(rx!.messages[0]!.rcptTo, ['ok@single.example']);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('550 to MAIL FROM bounces every recipient; soft_bounce turns it into a 4.x.x deferral', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', replies: { mail: () => '550 5.7.1 Sender rejected' } }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  const soft = await deliveryLab(ZONE, rx!.port, { soft_bounce: 'yes' });
  try {
    const r = await lab.deliver({ recipients: ['a@single.example', 'b@single.example'], nexthops: ['single.example'] });
    for (const i of [0, 1]) {
      const o = outcomeOf(r, i);
      assert.equal(o.status, 'bounced');
      assert.equal(o.dsn, '5.7.1');
      assert.equal(o.reason, 'host mx.single.example[127.0.0.2] said: 550 5.7.1 Sender rejected (in reply to MAIL FROM command)');
    }
    const s = outcomeOf(await soft.deliver({ recipients: ['a@single.example'], nexthops: ['single.example'] }));
    assert.equal(s.status, 'deferred');
    assert.equal(s.dsn, '4.7.1');
    assert.equal(s.reason, 'host mx.single.example[127.0.0.2] said: 550 5.7.1 Sender rejected (in reply to MAIL FROM command)');
    assert.equal(rx!.messages.length, 0);
  } finally {
    await lab.close();
    await soft.close();
    await rx!.close();
  }
});

test('null MX bounces 5.1.0 with no connection; NXDOMAIN bounces 5.4.4', async () => {
  const lab = await deliveryLab(ZONE, 9);
  try {
    const n = outcomeOf(await lab.deliver({ recipients: ['x@nullmx.example'], nexthops: ['nullmx.example'] }));
    assert.deepEqual([n.status, n.dsn, n.reason, n.relay], ['bounced', '5.1.0', 'Domain nullmx.example does not accept mail (nullMX)', 'none']);
    const x = outcomeOf(await lab.deliver({ recipients: ['x@nowhere.example'], nexthops: ['nowhere.example'] }));
    assert.deepEqual([x.status, x.dsn, x.relay], ['bounced', '5.4.4', 'none']);
    assert.equal(x.reason, 'Host or domain name not found. Name service error for name=nowhere.example type=MX: Host not found');
  } finally {
    await lab.close();
  }
});

test('[host]:port next hop: no MX lookup, the given port', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.3' }]);
  const lab = await deliveryLab(ZONE, 9);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['bob@example.com'], nexthops: [`[relay.example]:${rx!.port}`] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.relay, `relay.example[127.0.0.3]:${rx!.port}`);
    assert.equal(rx!.messages.length, 1);
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('relayhost list: the first relay is down, the second one delivers', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.3' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['bob@example.com'], nexthops: ['[127.0.0.2]', '[relay.example]'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.relay, `relay.example[127.0.0.3]:${rx!.port}`);
    assert.ok(lab.log.lines.includes(`sealpost/smtp: connect to 127.0.0.2[127.0.0.2]:${rx!.port}: Connection refused`), lab.log.lines.join('\n'));
  } finally {
    await lab.close();
    await rx!.close();
  }
});

test('fallback relay is tried after the primary next hop', async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.3' }]);
  const lab = await deliveryLab(ZONE, rx!.port);
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['bob@single.example'], nexthops: ['single.example'], fallbackRelays: ['[relay.example]'] }));
    assert.equal(o.status, 'sent');
    assert.equal(o.relay, `relay.example[127.0.0.3]:${rx!.port}`);
  } finally {
    await lab.close();
    await rx!.close();
  }
});
