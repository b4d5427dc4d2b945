/**
 * tls-session-cache-worker — the TLS session cache of the SMTP client in a
 * delivery worker thread (sealpost_delivery_workers = 1, the default) is
 * saved to smtp_tls_session_cache_database, through the real daemon: after
 * a delivery over TLS and a stop, the file holds the session; after a
 * restart, the next delivery to the same server resumes it (the receiver
 * sees a resumed TLS session).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makePki } from '../harness/pki.ts';
import { startReceiver } from '../harness/smtp-receiver.ts';
import { makeInstance, SmtpClient, type Daemon } from '../unit/daemon/fixtures/instance.ts';

/** The cache file's entries (session-cache.ts: one JSON object per line). */
function entries(file: string): Array<{ k: string; s: string; e: number }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { k: string; s: string; e: number });
}

async function relay(port: number, to: string): Promise<void> {
  const { client } = await SmtpClient.connect(port);
  assert.match(await client.send('sender@example.org', [to], `Subject: ${to}\r\n\r\nhello`), /^250 /);
  client.close();
}

async function stop(d: Daemon): Promise<void> {
  d.kill('SIGTERM');
  assert.equal(await d.exited, 0, d.log);
}

for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
  test(`a delivery worker thread saves its TLS sessions (${version}); after a restart the session is resumed`, async () => {
    const inst = await makeInstance();
    mkdirSync(join(inst.dir, 'pki'));
    const pki = makePki(join(inst.dir, 'pki'));
    const receiver = await startReceiver({ tls: { key: pki.server.key, cert: pki.server.cert }, minTlsVersion: version, maxTlsVersion: version });
    try {
      inst.writeMainCf(
        [
          `relayhost = [${receiver.host}]:${receiver.port}`,
          'smtp_tls_security_level = may',
          'smtp_tls_session_cache_database = btree:$data_directory/smtp_scache',
          'sealpost_delivery_workers = 1',
          // One connection per message: the second delivery needs a new handshake.
          'smtp_connection_cache_on_demand = no',
        ].join('\n'),
      );
      inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
      const scache = join(inst.dir, 'data', 'smtp_scache');

      const first = await inst.startFg();
      await relay(inst.port, 'one@remote.test');
      await receiver.waitForMessages(1, 20_000);
      assert.equal(receiver.messages[0]!.tls, true, 'relayed over TLS');
      assert.equal(receiver.messages[0]!.tlsResumed, false, 'a first session is a full handshake');
      await stop(first);
      const saved = entries(scache);
      assert.equal(saved.length, 1, `the session of the worker thread is in ${scache}:\n${first.log}`);
      assert.match(saved[0]!.k, new RegExp(`^${receiver.host.replaceAll('.', '\\.')}:${receiver.port}\\|`));
      assert.ok(saved[0]!.e > Date.now(), 'not expired');

      const second = await inst.startFg();
      await relay(inst.port, 'two@remote.test');
      await receiver.waitForMessages(2, 20_000);
      assert.equal(receiver.messages[1]!.tls, true);
      assert.equal(receiver.messages[1]!.tlsResumed, true, `the remembered session was resumed after the restart:\n${second.log}`);
      await stop(second);
    } finally {
      await receiver.close();
      inst.cleanup();
    }
  });
}
