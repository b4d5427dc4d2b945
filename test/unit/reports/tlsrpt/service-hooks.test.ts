/**
 * service-hooks.test.ts — TLS-RPT reports to the metrics' hooks
 * (reports/observe-hooks.ts): one `reportGenerated` per policy domain's
 * report, one `reportDelivered` per delivery attempt with its method and
 * result (an HTTPS upload refused, then taken; a report mail queued).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { EventBus } from '../../../../src/reports/events.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import type { TlsRptHooks } from '../../../../src/reports/observe-hooks.ts';
import { TlsRptService } from '../../../../src/reports/tlsrpt/service.ts';
import { tempDir } from '../../../harness/cli.ts';
import { session, stsPolicy } from './fixtures/records.ts';

test('reports generated and delivered reach the hooks', async () => {
  const t = tempDir();
  try {
    const configDir = join(t.dir, 'etc');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'main.cf'), `queue_directory = ${join(t.dir, 'queue')}\ndata_directory = ${join(t.dir, 'data')}\nmyhostname = mx.sender.example\n`);
    const events: string[] = [];
    const hooks: TlsRptHooks = { reportGenerated: () => events.push('generated'), reportDelivered: (m, ok) => events.push(`${m} ${ok ? 'ok' : 'error'}`) };
    const statuses = [false, true];
    const bus = new EventBus();
    const queued: string[] = [];
    const svc = new TlsRptService({
      config: loadConfig({ configDir }),
      log: memoryMailLog(),
      bus,
      hooks,
      txt: {
        txt: async (name) =>
          name === '_smtp._tls.sts.example'
            ? { status: 'found', records: ['v=TLSRPTv1; rua=https://reports.example/r'], authenticated: false }
            : { status: 'found', records: ['v=TLSRPTv1; rua=mailto:tlsrpt@mail.example'], authenticated: false },
      },
      https: { post: async () => (statuses.shift() ? { ok: true, status: 200 } : { ok: false, error: 'HTTP status 503' }) },
      queueMail: async () => {
        queued.push('mail');
        return 'Q1';
      },
    });
    await svc.start();
    try {
      bus.publish({ kind: 'tls-session', queueId: 'A', record: session({ policy: stsPolicy('sts.example') }) });
      bus.publish({ kind: 'tls-session', queueId: 'B', record: session({ policy: stsPolicy('other.example') }) });
      await svc.recorder!.flush();
      await svc.sendNow();
      assert.deepEqual(events.filter((e) => e === 'generated').length, 2);
      assert.deepEqual(events.filter((e) => e !== 'generated').sort(), ['https error', 'mailto ok']);
      assert.deepEqual(queued, ['mail']);
      await svc.sendNow(); // the kept upload again: taken now
      assert.deepEqual(events.filter((e) => e !== 'generated').sort(), ['https error', 'https ok', 'mailto ok']);
    } finally {
      await svc.stop();
    }
  } finally {
    t.cleanup();
  }
});
