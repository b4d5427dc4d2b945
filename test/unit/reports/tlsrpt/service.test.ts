import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:https';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadConfig } from '../../../../src/config/load.ts';
import { writeMaildrop } from '../../../../src/intake/maildrop.ts';
import { createSpool, openSpool } from '../../../../src/queue/spool.ts';
import { EventBus } from '../../../../src/reports/events.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { TlsRptService } from '../../../../src/reports/tlsrpt/service.ts';
import { sealpost, tempDir } from '../../../harness/cli.ts';
import { startDnsServer } from '../../../harness/dns-server.ts';
import { makePki } from '../../../harness/pki.ts';
import { session, stsPolicy } from './fixtures/records.ts';
import { validateReport } from './fixtures/rfc8460-schema.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(f: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out');
    await sleep(25);
  }
}

test('send --now is served by the store owner; a failed HTTPS upload is kept, retried with backoff, and survives a restart', { timeout: 60_000 }, async () => {
  const t = tempDir();
  const pki = makePki(t.dir);
  const statuses = [503, 200];
  const bodies: Buffer[] = [];
  const web = createServer({ key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks));
      res.writeHead(statuses.shift() ?? 500).end();
    });
  });
  await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
  const port = (web.address() as { port: number }).port;
  const dns = await startDnsServer({
    '_smtp._tls.sts.example': { TXT: [`v=TLSRPTv1; rua=https://localhost:${port}/r`] },
  });
  const configDir = join(t.dir, 'etc');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'main.cf'), [
    `queue_directory = ${join(t.dir, 'queue')}`,
    `data_directory = ${join(t.dir, 'data')}`,
    'myhostname = mx.sender.example',
    `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
    `smtp_tls_CAfile = ${pki.caCert}`,
    'sealpost_tlsrpt_retry_backoff = 1s',
    '',
  ].join('\n'));
  const config = loadConfig({ configDir });
  const spool = await createSpool(config.get('queue_directory'), {});
  const log = memoryMailLog();
  const bus = new EventBus();
  const metrics: string[] = [];
  const hooks = { reportGenerated: () => metrics.push('generated'), reportDelivered: (m: string, ok: boolean) => metrics.push(`${m} ${ok}`) };
  const make = () => new TlsRptService({ config, log, bus, daemon: true, tickMs: 100, hooks, queueMail: (e, c) => writeMaildrop(spool, e, c) });
  let svc = make();
  await svc.start();
  try {
    for (let i = 0; i < 3; i++) bus.publish({ kind: 'tls-session', queueId: 'Q', record: session({ policy: stsPolicy() }) });
    bus.publish({ kind: 'tls-session', queueId: 'Q', record: session({ failure: 'sts-webpki-invalid' }) });
    await svc.recorder!.flush();

    // The CLI finds the store owned by a live process and asks it (request file → answer).
    const r = await sealpost(['tlsrpt', '-c', configDir, 'send', '--now']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^tlsrpt: sts\.example: report \S+ to https:\/\/localhost:\d+\/r deferred: HTTP status 503$/m);
    assert.deepEqual(readdirSync(join(t.dir, 'data', 'tlsrpt', 'requests')), []);
    const outbox = join(t.dir, 'data', 'tlsrpt', 'outbox');
    assert.equal(readdirSync(outbox).filter((n) => n.endsWith('.json')).length, 1);

    // Stop before the retry is due; a new service (a restart) delivers the kept upload.
    await svc.stop();
    svc = make();
    await svc.start();
    await until(() => log.lines.some((l) => /sts\.example: report \S+ posted to https:\/\/localhost:\d+\/r: status 200/.test(l)));
    assert.equal(bodies.length, 2);
    assert.deepEqual(bodies[0], bodies[1]);
    const report = JSON.parse(gunzipSync(bodies[1]!).toString('utf8'));
    assert.deepEqual(validateReport(report), []);
    assert.deepEqual(report.policies[0].summary, { 'total-successful-session-count': 3, 'total-failure-session-count': 1 });
    assert.deepEqual(readdirSync(outbox), []);
    assert.deepEqual(openSpool(config.get('queue_directory')).list('maildrop'), []);
    // The metrics hooks (observe-hooks.ts): one report generated, a failed and a good upload.
    assert.deepEqual(metrics, ['generated', 'https false', 'https true']);
  } finally {
    await svc.stop();
    web.close();
    await dns.close();
    t.cleanup();
  }
});

test('a second store owner is refused; sealpost_tlsrpt = no records nothing', async () => {
  const t = tempDir();
  try {
    const configDir = join(t.dir, 'etc');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'main.cf'), `queue_directory = ${join(t.dir, 'queue')}\ndata_directory = ${join(t.dir, 'data')}\nsealpost_tlsrpt = no\n`);
    const config = loadConfig({ configDir });
    const bus = new EventBus();
    const opts = { config, log: memoryMailLog(), bus, queueMail: async () => 'X' };
    // A lock held by another live process (here: our parent) refuses a second owner.
    mkdirSync(join(t.dir, 'data', 'tlsrpt'), { recursive: true });
    writeFileSync(join(t.dir, 'data', 'tlsrpt', 'lock'), `${process.ppid}\n`);
    await assert.rejects(new TlsRptService(opts).start(), new RegExp(`in use by process ${process.ppid}`));
    // A lock whose process is gone is taken over.
    writeFileSync(join(t.dir, 'data', 'tlsrpt', 'lock'), '999999999\n');
    const a = new TlsRptService(opts);
    await a.start();
    assert.equal(readFileSync(join(t.dir, 'data', 'tlsrpt', 'lock'), 'utf8').trim(), String(process.pid));
    bus.publish({ kind: 'tls-session', queueId: 'Q', record: session() });
    await a.recorder!.flush();
    await a.stop();
    const r = await sealpost(['tlsrpt', '-c', configDir]);
    assert.equal(r.stdout, 'tlsrpt: no TLS sessions recorded\n');
  } finally {
    t.cleanup();
  }
});

test('startInDaemon: a busy store is a warning and a retry, never a failed start; recording begins once it is free', async () => {
  const t = tempDir();
  try {
    const configDir = join(t.dir, 'etc');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'main.cf'), `queue_directory = ${join(t.dir, 'queue')}\ndata_directory = ${join(t.dir, 'data')}\n`);
    const config = loadConfig({ configDir });
    const bus = new EventBus();
    const log = memoryMailLog();
    const dir = join(t.dir, 'data', 'tlsrpt');
    mkdirSync(dir, { recursive: true });
    // Held by another live process (our parent), as `sealpost tlsrpt send --now` would.
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`);
    const s = new TlsRptService({ config, log, bus, queueMail: async () => 'X', retryMs: 50 });
    await s.startInDaemon();
    assert.equal(s.recorder, undefined);
    assert.deepEqual(log.lines, [`sealpost/tlsrpt: warning: cannot open the TLS-RPT store in ${dir}: the TLS-RPT store is in use by process ${process.ppid}; TLS sessions are not recorded until it opens (retrying)`]);
    writeFileSync(join(dir, 'lock'), '999999999\n'); // its owner is gone
    await until(() => s.recorder);
    assert.equal(log.lines[1], `sealpost/tlsrpt: the TLS-RPT store in ${dir} is open; recording TLS sessions`);
    bus.publish({ kind: 'tls-session', queueId: 'Q', record: session() });
    await s.recorder!.flush();
    await s.stop();
    const r = await sealpost(['tlsrpt', '-c', configDir, '--json']);
    assert.equal(JSON.parse(r.stdout).periods[0].domains[0].sessions, 1);
    // Stopped while still waiting: the retry never takes the lock afterwards.
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`);
    const w = new TlsRptService({ config, log: memoryMailLog(), bus, queueMail: async () => 'X', retryMs: 50 });
    await w.startInDaemon();
    await w.stop();
    writeFileSync(join(dir, 'lock'), '999999999\n');
    await sleep(200);
    assert.equal(readFileSync(join(dir, 'lock'), 'utf8'), '999999999\n');
  } finally {
    t.cleanup();
  }
});
