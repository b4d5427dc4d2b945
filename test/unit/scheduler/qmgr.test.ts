/**
 * qmgr.test.ts — the queue manager's scheduling logic against a real spool
 * in a temp dir, with in-test delivery agents and router (no network): log
 * lines, grouping, deferral with backoff and delay reasons, flush, dead
 * destinations, expiry with a notice, bounces, restart recovery, concurrency.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../harness/cli.ts';
import { loadConfig, type LoadedConfig } from '../../../src/config/load.ts';
import type { DeliveryAgent, DeliveryRequest, DeliveryResult, RecipientOutcome } from '../../../src/delivery/types.ts';
import { createSpool, type Spool } from '../../../src/queue/spool.ts';
import { spoolStore } from '../../../src/queue/store.ts';
import { closeQueueJournal, openQueueJournal } from '../../../src/queue/journal-store.ts';
import { memoryMailLog } from '../../../src/reports/maillog.ts';
import { QueueManager } from '../../../src/scheduler/qmgr.ts';
import type { QmgrRuntime, Route, TransportHandle } from '../../../src/scheduler/types.ts';
import { destinationSettings } from '../../../src/scheduler/transports.ts';

type Script = (req: DeliveryRequest) => Promise<DeliveryResult> | DeliveryResult;

function outcome(index: number, status: RecipientOutcome['status'], reason: string, dsn = status === 'sent' ? '2.0.0' : status === 'deferred' ? '4.4.1' : '5.1.1'): RecipientOutcome {
  const t = Date.now();
  return { index, status, dsn, reason, relay: status === 'sent' ? 'mx.example.com[192.0.2.1]:25' : 'none', timing: { started: t, connected: t, finished: t } };
}

function allWith(status: RecipientOutcome['status'], reason: string, dsn?: string): Script {
  return (req) => ({ outcomes: req.recipients.map((r) => outcome(r.index, status, reason, dsn)) });
}

interface Lab {
  spool: Spool;
  config: LoadedConfig;
  log: ReturnType<typeof memoryMailLog>;
  requests: DeliveryRequest[];
  qmgr: QueueManager;
  script: { current: Script };
  queue(rcpts: string[], sender?: string, arrivalTime?: number): Promise<string>;
  waitFor(cond: () => boolean, what: string, ms?: number): Promise<void>;
  lines(re: RegExp): string[];
  done(): Promise<void>;
}

async function lab(mainExtra = '', opts: { start?: boolean; prepare?: (spool: Spool) => Promise<void> } = {}): Promise<Lab> {
  const t = tempDir('sealpost-qmgr-');
  const queueDir = join(t.dir, 'queue');
  mkdirSync(join(t.dir, 'etc'));
  writeFileSync(
    join(t.dir, 'etc', 'main.cf'),
    [`queue_directory = ${queueDir}`, 'myhostname = mx.example.org', 'minimal_backoff_time = 1s', 'maximal_backoff_time = 2s', 'queue_run_delay = 1s', mainExtra].join('\n') + '\n',
  );
  writeFileSync(join(t.dir, 'etc', 'master.cf'), 'smtp unix - - n - - smtp\nslow unix - - n - 2 smtp\nerror unix - - n - - error\n');
  const config = loadConfig({ configDir: join(t.dir, 'etc') });
  const spool = await createSpool(queueDir, { fsync: false });
  if (opts.prepare) await opts.prepare(spool);
  const log = memoryMailLog();
  const requests: DeliveryRequest[] = [];
  const script = { current: allWith('sent', '250 2.0.0 Ok: queued as X') };
  const agent: DeliveryAgent = {
    deliver: async (req) => {
      requests.push(req);
      return script.current(req);
    },
    close: async () => undefined,
  };
  const handle = (name: string, maxproc: number): TransportHandle => ({
    name,
    agent,
    maxproc,
    logProgram: `sealpost/${name === 'slow' ? 'slow/smtp' : 'smtp'}`,
    recipientLimit: 2,
    destination: destinationSettings(config, name),
  });
  const handles = new Map([
    ['smtp', handle('smtp', 100)],
    ['slow', handle('slow', 2)],
  ]);
  const router = {
    resolve: async (rcpt: string): Promise<Route> => {
      const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1);
      if (domain === 'nosuch.example') return { kind: 'bounce', dsn: '5.1.2', reason: 'Host or domain name not found' };
      if (domain === 'lookup.example') return { kind: 'defer', dsn: '4.3.0', reason: 'address resolver failure' };
      if (domain === 'slow.example') return { kind: 'deliver', transport: 'slow', nexthops: [domain], fallbackRelays: [] };
      if (domain === 'gone.example') return { kind: 'deliver', transport: 'nosuch', nexthops: [domain], fallbackRelays: [] };
      return { kind: 'deliver', transport: 'smtp', nexthops: [domain], fallbackRelays: [] };
    },
  };
  const runtime = async (c: LoadedConfig): Promise<QmgrRuntime> => ({ config: c, router, transport: (n) => handles.get(n), close: async () => undefined });
  const qmgr = new QueueManager({ store: spoolStore(spool), log, config, runtime, incomingScanMs: 200 });
  if (opts.start ?? true) await qmgr.start();
  return {
    spool,
    config,
    log,
    requests,
    qmgr,
    script,
    queue: async (rcpts, sender = 'alice@example.org', arrivalTime = Date.now()) => {
      const id = await spool.writeMessage({ arrivalTime, sender, recipients: rcpts.map((address) => ({ address })) }, Buffer.from('Subject: t\r\n\r\nbody\r\n'));
      qmgr.onQueued(id);
      return id;
    },
    waitFor: async (cond, what, ms = 5000) => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`timeout: ${what}\n${log.lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    lines: (re) => log.lines.filter((l) => re.test(l)),
    done: async () => {
      await qmgr.stop(1000);
      t.cleanup();
    },
  };
}

const inQueue = (l: Lab, q: 'incoming' | 'active' | 'deferred' | 'hold') => l.spool.list(q);

test('relays messages: queue active, one to= line per recipient under the agent, removed', async () => {
  const l = await lab();
  try {
    const ids = [await l.queue(['bob@example.com']), await l.queue(['carol@example.net'])];
    await l.waitFor(() => l.lines(/removed$/).length === 2, 'two removed');
    for (const id of ids) {
      assert.equal(l.lines(new RegExp(`^sealpost/qmgr: ${id}: from=<alice@example.org>, size=\\d+, nrcpt=1 \\(queue active\\)$`)).length, 1);
      assert.equal(l.lines(new RegExp(`^sealpost/qmgr: ${id}: removed$`)).length, 1);
    }
    const sent = l.lines(/sealpost\/smtp: /);
    assert.equal(sent.length, 2);
    assert.match(sent.join('\n'), new RegExp(`^sealpost/smtp: ${ids[0]}: to=<bob@example.com>, relay=mx.example.com\\[192.0.2.1\\]:25, delay=[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, dsn=2.0.0, status=sent \\(250 2.0.0 Ok: queued as X\\)$`, 'm'));
    assert.deepEqual([inQueue(l, 'incoming'), inQueue(l, 'active'), inQueue(l, 'deferred')], [[], [], []]);
  } finally {
    await l.done();
  }
});

test('recipients are grouped per destination and split at the recipient limit', async () => {
  const l = await lab();
  try {
    await l.queue(['a@one.example', 'b@two.example', 'c@one.example', 'd@one.example', 'e@two.example']);
    await l.waitFor(() => l.lines(/removed$/).length === 1, 'removed');
    const shape = l.requests.map((r) => `${r.nexthops.join()}:${r.recipients.map((x) => x.address[0]).join('')}`).sort();
    assert.deepEqual(shape, ['one.example:ac', 'one.example:d', 'two.example:be']);
    assert.equal(l.requests[0]!.transport, 'smtp');
    assert.match(l.requests[0]!.queueFile, /\/active\/[0-9A-F]+$/);
  } finally {
    await l.done();
  }
});

test('a temporary failure defers: deferred/ with mtime = next attempt, the reason in defer/, retried after the backoff', async () => {
  const l = await lab();
  try {
    l.script.current = allWith('deferred', 'host mx.example.com[192.0.2.1] said: 451 4.3.0 try later (in reply to RCPT TO command)', '4.3.0');
    const before = Date.now();
    const id = await l.queue(['bob@example.com']);
    await l.waitFor(() => inQueue(l, 'deferred').includes(id), 'deferred');
    const mtime = statSync(l.spool.path('deferred', id)).mtimeMs;
    assert.ok(mtime >= before + 900 && mtime <= Date.now() + 1100, `mtime ${mtime - before} ms ahead`);
    const reasons = l.spool.readDelayReasons(id);
    assert.equal(reasons.get(0)?.reason, 'host mx.example.com[192.0.2.1] said: 451 4.3.0 try later (in reply to RCPT TO command)');
    assert.equal(reasons.get(0)?.status, '4.3.0');
    assert.match(l.lines(/status=deferred/)[0]!, /dsn=4.3.0, status=deferred \(host mx.example.com/);
    l.script.current = allWith('sent', '250 ok');
    await l.waitFor(() => l.lines(/removed$/).length === 1, 'delivered on retry', 6000);
    assert.equal(l.requests.length, 2);
    assert.equal(l.spool.delayLogIds().size, 0, 'delay log removed with the message');
  } finally {
    await l.done();
  }
});

test('postqueue -f delivers deferred mail at once, ignoring the retry time', async () => {
  const l = await lab('minimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h');
  try {
    l.script.current = allWith('deferred', 'connect to mx[192.0.2.1]:25: Connection refused');
    const id = await l.queue(['bob@example.com']);
    await l.waitFor(() => inQueue(l, 'deferred').includes(id), 'deferred');
    l.script.current = allWith('sent', '250 ok');
    await l.qmgr.flush({ kind: 'all' });
    await l.waitFor(() => l.lines(/removed$/).length === 1, 'flushed');
  } finally {
    await l.done();
  }
});

test('postqueue -i and -s pick single messages / sites', async () => {
  const l = await lab('minimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h');
  try {
    l.script.current = allWith('deferred', 'try later');
    const a = await l.queue(['x@a.example']);
    const b = await l.queue(['y@b.example']);
    const c = await l.queue(['z@c.example']);
    await l.waitFor(() => inQueue(l, 'deferred').length === 3, 'three deferred');
    l.script.current = allWith('sent', '250 ok');
    await l.qmgr.flush({ kind: 'queue_id', id: b });
    await l.waitFor(() => l.lines(new RegExp(`${b}: removed`)).length === 1, '-i');
    await l.qmgr.flush({ kind: 'site', site: 'C.example' });
    await l.waitFor(() => l.lines(new RegExp(`${c}: removed`)).length === 1, '-s');
    assert.deepEqual(inQueue(l, 'deferred'), [a]);
  } finally {
    await l.done();
  }
});

test('a dead destination: its queued mail is deferred "delivery temporarily suspended" without attempts; others flow', async () => {
  const l = await lab('minimal_backoff_time = 1h\nmaximal_backoff_time = 2h\nqueue_run_delay = 1h');
  try {
    let deadAttempts = 0;
    l.script.current = async (req) => {
      if (req.nexthops[0] === 'dead.example') {
        deadAttempts++;
        await new Promise((r) => setTimeout(r, 50));
        const reason = 'connect to mx.dead.example[192.0.2.9]:25: Connection refused';
        return { outcomes: req.recipients.map((r) => outcome(r.index, 'deferred', reason)), siteDeferral: { reason, dsn: '4.4.1' } };
      }
      return allWith('sent', '250 ok')(req);
    };
    const dead: string[] = [];
    for (let i = 0; i < 40; i++) dead.push(await l.queue([`u${i}@dead.example`]));
    const live: string[] = [];
    for (let i = 0; i < 10; i++) live.push(await l.queue([`v${i}@live.example`]));
    await l.waitFor(() => inQueue(l, 'deferred').length === 40 && l.lines(/removed$/).length === 10, 'all settled');
    assert.ok(deadAttempts < 10, `only the first cohort connects (${deadAttempts})`);
    const suspended = l.lines(/^sealpost\/error: .* status=deferred \(delivery temporarily suspended: connect to mx.dead.example\[192.0.2.9\]:25: Connection refused\)$/);
    assert.equal(suspended.length, 40 - deadAttempts);
    assert.deepEqual(l.qmgr.stats().dead, ['smtp:dead.example']);
    const someDeferred = dead.find((id) => l.spool.readDelayReasons(id).get(0)?.reason.startsWith('delivery temporarily suspended'));
    assert.ok(someDeferred, 'mailq shows the suspension reason');
    // New mail for the dead destination is deferred at once, without an attempt.
    const before = deadAttempts;
    const late = await l.queue(['late@dead.example']);
    await l.waitFor(() => inQueue(l, 'deferred').includes(late), 'late deferred');
    assert.equal(deadAttempts, before);
  } finally {
    await l.done();
  }
});

test('routing outcomes: bounce and defer without an agent, logged by qmgr; unknown transport defers', async () => {
  const l = await lab();
  try {
    const id = await l.queue(['a@nosuch.example', 'b@lookup.example', 'c@gone.example', 'd@ok.example']);
    await l.waitFor(() => inQueue(l, 'deferred').includes(id), 'deferred');
    assert.match(l.lines(/to=<a@nosuch.example>/)[0]!, /^sealpost\/qmgr: .*relay=none, .*dsn=5.1.2, status=bounced \(Host or domain name not found\)$/);
    assert.match(l.lines(/to=<b@lookup.example>/)[0]!, /^sealpost\/qmgr: .*dsn=4.3.0, status=deferred \(address resolver failure\)$/);
    assert.match(l.lines(/to=<c@gone.example>/)[0]!, /^sealpost\/qmgr: .*dsn=4.3.0, status=deferred \(mail transport unavailable\)$/);
    assert.match(l.lines(/to=<d@ok.example>/)[0]!, /^sealpost\/smtp: .*status=sent/);
    const notice = l.lines(/sender non-delivery notification/);
    assert.equal(notice.length, 1);
    assert.match(notice[0]!, new RegExp(`^sealpost/bounce: ${id}: sender non-delivery notification: [0-9A-F]+$`));
    const env = l.spool.readEnvelope('deferred', id);
    assert.deepEqual(env.recipients.map((r) => r.status), ['done', 'pending', 'pending', 'done'], 'bounced and sent are done, deferred pending');
    // The notice itself goes to the sender's domain.
    await l.waitFor(() => l.requests.some((r) => r.sender === '' && r.recipients[0]!.address === 'alice@example.org'), 'notice delivered');
  } finally {
    await l.done();
  }
});

test('soft_bounce turns bounces into deferrals', async () => {
  const l = await lab('soft_bounce = yes');
  try {
    l.script.current = allWith('bounced', 'host x said: 550 5.1.1 no such user (in reply to RCPT TO command)');
    const id = await l.queue(['a@ok.example', 'b@nosuch.example']);
    await l.waitFor(() => inQueue(l, 'deferred').includes(id), 'deferred');
    assert.equal(l.lines(/status=bounced/).length, 0);
    assert.match(l.lines(/to=<a@ok.example>/)[0]!, /dsn=4.1.1, status=deferred/);
    assert.equal(l.lines(/notification/).length, 0);
  } finally {
    await l.done();
  }
});

test('expiry: maximal_queue_lifetime = 0 tries once, then returns the mail with a notice and removes it', async () => {
  const l = await lab('maximal_queue_lifetime = 0');
  try {
    l.script.current = (req) =>
      req.sender === '' ? allWith('sent', '250 ok')(req) : allWith('deferred', 'connect to mx[192.0.2.1]:25: Connection timed out', '4.4.1')(req);
    const id = await l.queue(['bob@example.com']);
    await l.waitFor(() => l.lines(new RegExp(`${id}: removed`)).length === 1, 'expired and removed');
    assert.equal(l.lines(new RegExp(`^sealpost/qmgr: ${id}: from=<alice@example.org>, status=expired, returned to sender$`)).length, 1);
    const notice = l.lines(new RegExp(`^sealpost/bounce: ${id}: sender non-delivery notification: `));
    assert.equal(notice.length, 1);
    await l.waitFor(() => l.requests.some((r) => r.sender === ''), 'notice delivered');
    const dsn = l.requests.find((r) => r.sender === '')!;
    assert.equal(dsn.recipients[0]!.address, 'alice@example.org');
    await l.waitFor(() => inQueue(l, 'incoming').length + inQueue(l, 'active').length + inQueue(l, 'deferred').length === 0, 'queue empty');
  } finally {
    await l.done();
  }
});

test('a bounce of a bounce is never sent; the null sender uses bounce_queue_lifetime', async () => {
  const l = await lab('bounce_queue_lifetime = 0');
  try {
    l.script.current = allWith('deferred', 'try later');
    const id = await l.queue(['bob@example.com'], '');
    await l.waitFor(() => l.lines(new RegExp(`${id}: removed`)).length === 1, 'expired');
    assert.equal(l.lines(/status=expired/).length, 1);
    assert.equal(l.lines(/notification/).length, 0);
  } finally {
    await l.done();
  }
});

test('postsuper -e (forced expiry): no attempt, returned to sender', async () => {
  const l = await lab('', { start: false });
  try {
    const id = await l.spool.writeMessage({ arrivalTime: Date.now(), sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }] }, Buffer.from('Subject: x\r\n\r\nb\r\n'));
    await l.spool.setForcedExpire('incoming', id);
    await l.qmgr.start();
    await l.waitFor(() => l.lines(new RegExp(`${id}: removed`)).length === 1, 'expired');
    assert.equal(l.requests.filter((r) => r.queueId === id).length, 0);
    assert.equal(l.lines(/status=expired, returned to sender/).length, 1);
  } finally {
    await l.done();
  }
});

test('delay_warning_time: one delay notice, remembered across attempts', async () => {
  const l = await lab('delay_warning_time = 1s');
  try {
    l.script.current = (req) => (req.sender === '' ? allWith('sent', '250 ok')(req) : allWith('deferred', 'try later')(req));
    const id = await l.queue(['bob@example.com'], 'alice@example.org', Date.now() - 10_000);
    await l.waitFor(() => l.requests.filter((r) => r.queueId === id).length >= 2 && inQueue(l, 'deferred').includes(id), 'two attempts', 8000);
    assert.equal(l.lines(new RegExp(`^sealpost/bounce: ${id}: sender delay notification: [0-9A-F]+$`)).length, 1);
    assert.equal(await l.spool.isWarned(id), true);
  } finally {
    await l.done();
  }
});

test('restart: mail left in active/ goes back through incoming and is delivered', async () => {
  let id = '';
  const l = await lab('', {
    prepare: async (spool) => {
      id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: 'b@example.com' }] }, Buffer.from('x\r\n'));
      await spool.move(id, 'incoming', 'active');
    },
  });
  try {
    await l.waitFor(() => l.lines(new RegExp(`${id}: removed`)).length === 1, 'recovered');
  } finally {
    await l.done();
  }
});

test('files that vanish (postsuper -d) are skipped without errors', async () => {
  const l = await lab();
  try {
    l.qmgr.onQueued('ABCDEF12345');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    l.script.current = async (req) => {
      await gate;
      return allWith('deferred', 'later')(req);
    };
    const id = await l.queue(['b@example.com']);
    await l.waitFor(() => l.requests.length === 1, 'in flight');
    await l.spool.remove('active', id);
    release();
    await l.waitFor(() => l.qmgr.stats().active === 0, 'forgotten');
    assert.equal(l.lines(/warning/).length, 0, l.log.lines.join('\n'));
    assert.deepEqual(inQueue(l, 'deferred'), []);
  } finally {
    await l.done();
  }
});

test('concurrency: the initial window per destination, slow start, and the transport maxproc', async () => {
  const l = await lab('initial_destination_concurrency = 2\ndefault_destination_concurrency_limit = 4');
  try {
    let busy = new Map<string, number>();
    const peak = new Map<string, number>();
    l.script.current = async (req) => {
      const k = `${req.transport}:${req.nexthops[0]}`;
      busy.set(k, (busy.get(k) ?? 0) + 1);
      peak.set(k, Math.max(peak.get(k) ?? 0, busy.get(k)!));
      await new Promise((r) => setTimeout(r, 20));
      busy.set(k, busy.get(k)! - 1);
      return allWith('sent', '250 ok')(req);
    };
    for (let i = 0; i < 30; i++) await l.queue([`a${i}@fast.example`]);
    for (let i = 0; i < 6; i++) await l.queue([`b${i}@slow.example`]);
    await l.waitFor(() => l.lines(/removed$/).length === 36, 'all delivered');
    assert.equal(peak.get('smtp:fast.example'), 4, 'grows from 2 to the limit 4');
    assert.equal(peak.get('slow:slow.example'), 2, 'maxproc 2 of the slow transport');
    busy = new Map();
  } finally {
    await l.done();
  }
});

test('stop: in-flight deliveries finish within the grace time; nothing new starts', async () => {
  const l = await lab();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  l.script.current = async (req) => {
    await gate;
    return allWith('sent', '250 ok')(req);
  };
  const id = await l.queue(['b@example.com']);
  await l.waitFor(() => l.requests.length === 1, 'in flight');
  setTimeout(release, 50);
  await l.qmgr.stop(2000);
  assert.equal(l.lines(new RegExp(`${id}: removed`)).length, 1);
  await l.done();
});

test('reload: new deliveries use the new agents; the old runtime is closed once its deliveries are done', async () => {
  const t = tempDir('sealpost-qmgr-');
  try {
    const queueDir = join(t.dir, 'queue');
    writeFileSync(join(t.dir, 'main.cf'), `queue_directory = ${queueDir}\n`);
    const config = loadConfig({ configDir: t.dir });
    const spool = await createSpool(queueDir, { fsync: false });
    const log = memoryMailLog();
    const used: string[] = [];
    const closed: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let generation = 0;
    const runtime = async (c: LoadedConfig): Promise<QmgrRuntime> => {
      const name = `gen${++generation}`;
      const agent: DeliveryAgent = {
        deliver: async (req) => {
          used.push(name);
          if (name === 'gen1') await gate;
          return allWith('sent', `250 ${name}`)(req);
        },
        close: async () => undefined,
      };
      const handle: TransportHandle = { name: 'smtp', agent, maxproc: 10, logProgram: 'sealpost/smtp', recipientLimit: 50, destination: destinationSettings(c, 'smtp') };
      return {
        config: c,
        router: { resolve: async (rcpt) => ({ kind: 'deliver', transport: 'smtp', nexthops: [rcpt.slice(rcpt.indexOf('@') + 1)], fallbackRelays: [] }) },
        transport: (n) => (n === 'smtp' ? handle : undefined),
        close: async () => {
          closed.push(name);
        },
      };
    };
    const qmgr = new QueueManager({ store: spoolStore(spool), log, config, runtime });
    await qmgr.start();
    const first = await spool.writeMessage({ arrivalTime: Date.now(), sender: 's@x', recipients: [{ address: 'a@one.example' }] }, Buffer.from('x\r\n'));
    qmgr.onQueued(first);
    while (used.length < 1) await new Promise((r) => setTimeout(r, 5));
    await qmgr.reload(loadConfig({ configDir: t.dir }));
    const second = await spool.writeMessage({ arrivalTime: Date.now(), sender: 's@x', recipients: [{ address: 'b@two.example' }] }, Buffer.from('x\r\n'));
    qmgr.onQueued(second);
    while (!log.lines.some((l) => l.includes(`${second}: removed`))) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(used, ['gen1', 'gen2']);
    assert.deepEqual(closed, [], 'the old runtime stays open while its delivery runs');
    release();
    while (!log.lines.some((l) => l.includes(`${first}: removed`))) await new Promise((r) => setTimeout(r, 5));
    while (closed.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(closed, ['gen1']);
    await qmgr.stop(500);
    assert.deepEqual(closed, ['gen1', 'gen2']);
  } finally {
    t.cleanup();
  }
});

test('log attribution: each delivery\'s TLS lines stand right before its status= lines, whatever the interleaving', async () => {
  const l = await lab();
  try {
    // Each destination's agent answer arrives after a random delay, with one TLS session for its own MX.
    l.script.current = async (req) => {
      await new Promise((r) => setTimeout(r, Math.random() * 30));
      const domain = req.nexthops[0]!;
      const t = Date.now();
      const session = {
        time: t, nexthop: domain,
        policy: { source: 'default' as const, type: 'no-policy-found' as const, domain, strings: [], mxHostPatterns: [], level: 'may' as const, configuredLevel: 'may' as const },
        server: { hostname: `mx.${domain}`, address: '192.0.2.1', port: 25 },
        tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', cipherBits: 256, cipherAlgBits: 256, trust: 'Untrusted' as const, reused: false },
        result: { kind: 'success' as const },
        logLines: [`mx.${domain}[192.0.2.1]:25: a certificate line`],
      };
      return {
        outcomes: req.recipients.map((r) => ({ ...outcome(r.index, 'sent', '250 2.0.0 Ok'), relay: `mx.${domain}[192.0.2.1]:25`, session: 0 })),
        sessions: [session],
      };
    };
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await l.queue([`a@d${i}.example`, `b@d${i}.example`]));
    await l.waitFor(() => l.lines(/removed$/).length === 20, 'twenty removed');
    const smtp = l.log.lines.filter((x) => x.startsWith('sealpost/smtp: '));
    // The Postfix reader's rule: a TLS line belongs to the next status= line of the same program and pid.
    let pending: string[] = [];
    let attributed = 0;
    for (const line of smtp) {
      if (!line.includes('status=')) {
        pending.push(line);
        continue;
      }
      const domain = /to=<a@(d\d+\.example)>/.exec(line)?.[1];
      if (pending.length > 0) {
        assert.ok(domain, `TLS lines ${pending.join(' | ')} are followed by ${line}, not by the first recipient of their delivery`);
        for (const p of pending) assert.ok(p.includes(`mx.${domain}[`), `${p} attributed to ${line}`);
        assert.equal(pending.length, 2, pending.join('\n'));
        attributed++;
      }
      pending = [];
    }
    assert.equal(attributed, 20);
  } finally {
    await l.done();
  }
});

test('the event stream: one tls-session per session, one outcome per recipient, one removed per message', async () => {
  const t = tempDir('sealpost-qmgr-events-');
  try {
    const { EventBus } = await import('../../../src/reports/events.ts');
    writeFileSync(join(t.dir, 'main.cf'), `queue_directory = ${join(t.dir, 'queue')}\n`);
    writeFileSync(join(t.dir, 'master.cf'), 'smtp unix - - n - - smtp\n');
    const config = loadConfig({ configDir: t.dir });
    const spool = await createSpool(join(t.dir, 'queue'), { fsync: false });
    const events = new EventBus((err) => {
      throw err;
    });
    const seen: string[] = [];
    events.subscribe((e) => seen.push(e.kind === 'outcome' ? `outcome:${e.recipient}:${e.status}:${e.session?.server.hostname ?? '-'}` : e.kind));
    const agent: DeliveryAgent = {
      deliver: async (req) => ({
        outcomes: req.recipients.map((r) => ({ ...outcome(r.index, 'sent', '250 ok'), session: 0 })),
        sessions: [{
          time: Date.now(), nexthop: 'example.com',
          policy: { source: 'default', type: 'no-policy-found', domain: 'example.com', strings: [], mxHostPatterns: [], level: 'none', configuredLevel: 'none' },
          server: { hostname: 'mx.example.com', address: '192.0.2.1', port: 25 }, result: { kind: 'plaintext' }, logLines: [],
        }],
      }),
      close: async () => undefined,
    };
    const handle: TransportHandle = { name: 'smtp', agent, maxproc: 10, logProgram: 'sealpost/smtp', recipientLimit: 50, destination: destinationSettings(config, 'smtp') };
    const router = { resolve: async (): Promise<Route> => ({ kind: 'deliver', transport: 'smtp', nexthops: ['example.com'], fallbackRelays: [] }) };
    const qmgr = new QueueManager({ store: spoolStore(spool), events, log: memoryMailLog(), config, runtime: async (c) => ({ config: c, router, transport: () => handle, close: async () => undefined }) });
    await qmgr.start();
    qmgr.onQueued(await spool.writeMessage({ arrivalTime: Date.now(), sender: 's@x', recipients: [{ address: 'a@example.com' }, { address: 'b@example.com' }] }, Buffer.from('x\r\n')));
    for (let i = 0; i < 200 && !seen.includes('removed'); i++) await new Promise((r) => setTimeout(r, 10));
    await qmgr.stop(1000);
    assert.deepEqual(seen, ['tls-session', 'outcome:a@example.com:sent:mx.example.com', 'outcome:b@example.com:sent:mx.example.com', 'removed']);
  } finally {
    t.cleanup();
  }
});

test('a big deferred queue (the scan reads the times in bulk): only the messages whose time has come are tried', async () => {
  const due: string[] = [];
  const l = await lab('queue_run_delay = 1h', {
    start: false,
    prepare: async (spool) => {
      const later = Date.now() + 3_600_000;
      for (let i = 0; i < 1_200; i++) {
        const id = await spool.writeMessage({ arrivalTime: Date.now(), sender: 'a@example.org', recipients: [{ address: `r${i}@example.com` }] }, Buffer.from('Subject: t\r\n\r\nbody\r\n'));
        await spool.move(id, 'incoming', 'deferred');
        if (i % 400 === 7) due.push(id);
        else await spool.setNextAttempt('deferred', id, later);
      }
    },
  });
  try {
    await l.qmgr.start();
    await l.waitFor(() => l.lines(/removed$/).length === due.length, 'the due messages delivered');
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(l.requests.map((r) => r.queueId).sort(), [...due].sort());
    assert.equal(inQueue(l, 'deferred').length, 1_200 - due.length);
  } finally {
    await l.done();
  }
});

test('with the journal, new mail goes straight into active/ (no incoming/ step) and is activated when its onQueued comes, after the listener logged', async () => {
  const l = await lab('', { prepare: async (spool) => void (await openQueueJournal(spool, { settleMs: 60_000 })) });
  try {
    const id = await l.spool.writeMessage({ arrivalTime: Date.now(), sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }] }, Buffer.from('Subject: t\r\n\r\nbody\r\n'));
    assert.deepEqual(inQueue(l, 'active'), [id], 'committed into active/');
    assert.deepEqual(inQueue(l, 'incoming'), []);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(l.requests.length, 0, 'not activated before its onQueued');
    // What smtpd logs between its commit and onQueued comes before the queue manager's line.
    l.log.write('smtpd', `${id}: client=localhost[127.0.0.1]`);
    l.qmgr.onQueued(id);
    await l.waitFor(() => l.lines(/removed$/).length === 1, 'delivered');
    const mine = l.log.lines.filter((x) => x.includes(id));
    assert.match(mine[0]!, /smtpd: .*client=/);
    assert.match(mine[1]!, /qmgr: .*from=<alice@example.org>, size=\d+, nrcpt=1 \(queue active\)/);
    assert.match(mine.at(-1)!, /removed$/);
    assert.equal(l.requests[0]?.queueFile, l.spool.path('active', id));
  } finally {
    await closeQueueJournal(l.spool);
    await l.done();
  }
});

test('with the journal, a message whose onQueued never comes (the listener failed after its commit) is still delivered', async () => {
  const l = await lab('', { prepare: async (spool) => void (await openQueueJournal(spool, { settleMs: 60_000 })) });
  try {
    const id = await l.spool.writeMessage({ arrivalTime: Date.now(), sender: 'alice@example.org', recipients: [{ address: 'bob@example.com' }] }, Buffer.from('Subject: t\r\n\r\nbody\r\n'));
    assert.deepEqual(inQueue(l, 'active'), [id]);
    await l.waitFor(() => l.lines(/removed$/).length === 1, 'delivered without onQueued', 10_000);
    assert.deepEqual(l.requests.map((r) => r.queueId), [id]);
  } finally {
    await closeQueueJournal(l.spool);
    await l.done();
  }
});

test('with the journal, new mail goes to incoming/ while the active queue is full, and everything is delivered in the end', async () => {
  const l = await lab('qmgr_message_active_limit = 1', { prepare: async (spool) => void (await openQueueJournal(spool, { settleMs: 60_000 })) });
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const plain = l.script.current;
  l.script.current = async (req) => {
    await held;
    return plain(req);
  };
  try {
    const first = await l.queue(['bob@example.com']);
    await l.waitFor(() => l.requests.length === 1, 'first in delivery');
    const second = await l.queue(['carol@example.com']);
    assert.deepEqual(inQueue(l, 'incoming'), [second], 'no room in active/: the usual way');
    assert.deepEqual(inQueue(l, 'active'), [first]);
    release();
    await l.waitFor(() => l.lines(/removed$/).length === 2, 'both delivered');
    assert.deepEqual(l.requests.map((r) => r.queueId), [first, second]);
  } finally {
    release();
    await closeQueueJournal(l.spool);
    await l.done();
  }
});

test('with the journal, a stopped queue manager takes no new mail into active/: it goes to incoming/, where the next one finds it', async () => {
  const l = await lab('', { prepare: async (spool) => void (await openQueueJournal(spool, { settleMs: 60_000 })) });
  try {
    await l.qmgr.stop(1000);
    const id = await l.queue(['bob@example.com']);
    assert.deepEqual(inQueue(l, 'incoming'), [id], 'stopped: the usual way');
    const again = new QueueManager({
      store: spoolStore(l.spool),
      log: l.log,
      config: l.config,
      runtime: async (c) => ({ config: c, router: { resolve: async (): Promise<Route> => ({ kind: 'deliver', transport: 'smtp', nexthops: ['example.com'], fallbackRelays: [] }) }, transport: () => ({ name: 'smtp', agent: { deliver: async (req) => allWith('sent', '250 ok')(req), close: async () => undefined }, maxproc: 10, logProgram: 'sealpost/smtp', recipientLimit: 50, destination: destinationSettings(l.config, 'smtp') }), close: async () => undefined }),
      incomingScanMs: 200,
    });
    await again.start();
    try {
      await l.waitFor(() => l.lines(/removed$/).length === 1, 'delivered by the next queue manager');
    } finally {
      await again.stop(1000);
    }
  } finally {
    await closeQueueJournal(l.spool);
    await l.done();
  }
});
