/**
 * daemon.test.ts — the daemon's MTA-STS service (daemon.ts) and the cache
 * command's requests (control.ts): request parsing (domains checked as cache
 * keys), the request files answered from the daemon's own service (list,
 * show, fetch, forget), a service that cannot be made (lookups answer
 * `error`, so deliveries defer), and a reload that rebuilds the service only
 * when its settings changed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { MemoryStsCache } from '../../../../src/delivery/mta-sts/cache.ts';
import { parseRequest, requestDir, type StsAnswer } from '../../../../src/delivery/mta-sts/control.ts';
import { DaemonSts } from '../../../../src/delivery/mta-sts/daemon.ts';
import { StsService, stsCacheDir } from '../../../../src/delivery/mta-sts/service.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import type { Config } from '../../../../src/config/types.ts';

test('parseRequest: the four operations; domains are cache keys; anything else is an error line', () => {
  assert.deepEqual(parseRequest('{"op":"list"}'), { op: 'list' });
  assert.deepEqual(parseRequest('{"op":"fetch","domain":"Example.COM."}'), { op: 'fetch', domain: 'example.com' });
  assert.deepEqual(parseRequest('{"op":"show","domain":"../etc/passwd"}'), { error: 'not a policy domain name: "../etc/passwd"' });
  assert.deepEqual(parseRequest('{"op":"drop"}'), { error: 'unknown request "drop"' });
  assert.deepEqual(parseRequest('{"op":"forget"}'), { error: 'forget: no domain' });
  assert.deepEqual(parseRequest('nonsense'), { error: 'request is not JSON' });
});

function config(dir: string, extra = ''): Config {
  writeFileSync(join(dir, 'main.cf'), `data_directory = ${join(dir, 'data')}\n${extra}`);
  writeFileSync(join(dir, 'master.cf'), '');
  return loadConfig({ configDir: dir, warn: () => undefined });
}

/** A service whose TXT record and policy host are in memory. */
function fakeService(fetches: { n: number }): StsService {
  return new StsService({
    resolver: { txt: async () => ({ status: 'found', records: ['v=STSv1; id=abc'], authenticated: false }) },
    getter: async () => {
      fetches.n++;
      return { kind: 'response', status: 200, contentType: 'text/plain', body: Buffer.from('version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 3600\n'), address: '192.0.2.1' };
    },
    store: new MemoryStsCache(),
  });
}

async function ask(dir: string, req: object): Promise<StsAnswer> {
  const base = `${Date.now()}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(join(dir, `${base}.tmp`), JSON.stringify(req));
  renameSync(join(dir, `${base}.tmp`), join(dir, `${base}.req`));
  for (let i = 0; i < 200; i++) {
    if (existsSync(join(dir, `${base}.done`))) return JSON.parse(readFileSync(join(dir, `${base}.done`), 'utf8')) as StsAnswer;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error('no answer');
}

test('request files are answered from the daemon\'s own service', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-sts-daemon-'));
  const fetches = { n: 0 };
  const service = fakeService(fetches);
  const d = new DaemonSts(config(dir), memoryMailLog(), { make: () => service, pollMs: 20 });
  try {
    await d.start();
    const reqDir = requestDir(stsCacheDir(config(dir)));
    assert.deepEqual(await ask(reqDir, { op: 'list' }), { ok: true, op: 'list', entries: [] });
    const f = await ask(reqDir, { op: 'fetch', domain: 'example.com' });
    assert.ok(f.ok && f.op === 'fetch' && f.lookup.kind === 'policy' && f.lookup.policy.id === 'abc');
    // The daemon's deliveries see what the command fetched: no second fetch.
    const l = await d.lookup('example.com');
    assert.ok(l.kind === 'policy' && l.from === 'cache');
    assert.equal(fetches.n, 1);
    const shown = await ask(reqDir, { op: 'show', domain: 'example.com' });
    assert.ok(shown.ok && shown.op === 'show' && shown.entry?.mode === 'enforce');
    assert.deepEqual(await ask(reqDir, { op: 'forget', domain: 'example.com' }), { ok: true, op: 'forget', domain: 'example.com', had: true });
    assert.deepEqual(await ask(reqDir, { op: 'show', domain: 'example.com' }), { ok: true, op: 'show', domain: 'example.com' });
    assert.deepEqual(await ask(reqDir, { op: 'nope' }), { ok: false, error: 'unknown request "nope"' });
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a service that cannot be made: lookups answer error (deliveries defer), requests get the reason; reload rebuilds only on change', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-sts-daemon-'));
  const log = memoryMailLog();
  let made = 0;
  let fail = true;
  const make = (): StsService => {
    made++;
    if (fail) throw new Error('smtp_tls_CAfile: cannot read /nonexistent: ENOENT');
    return fakeService({ n: 0 });
  };
  const d = new DaemonSts(config(dir), log, { make });
  try {
    assert.deepEqual(await d.lookup('example.com'), { kind: 'error', detail: 'smtp_tls_CAfile: cannot read /nonexistent: ENOENT' });
    assert.ok(log.lines.some((l) => l.includes('warning: smtp_tls_CAfile: cannot read /nonexistent: ENOENT: MTA-STS destinations are deferred until this is fixed')), log.lines.join('\n'));
    d.update(config(dir));
    assert.equal(made, 1, 'same settings: no new service');
    fail = false;
    d.update(config(dir, 'sealpost_mta_sts_fetch_timeout = 10s\n'));
    assert.equal(made, 2);
    assert.equal((await d.lookup('example.com')).kind, 'policy');
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
