/**
 * transports.test.ts — master.cf delivery services as the queue manager sees
 * them: which are agents, maxproc, $service_name in -o, the log program, and
 * the per-transport scheduling parameters with their default_ fallbacks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../../harness/cli.ts';
import { loadConfig } from '../../../src/config/load.ts';
import {
  agentKind,
  deliveryServices,
  destinationSettings,
  logProgram,
  recipientLimit,
  serviceConfig,
  serviceMaxproc,
  serviceOverrides,
} from '../../../src/scheduler/transports.ts';

function withConfig(mainCf: string, masterCf: string, fn: (dir: string) => void): void {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), mainCf);
    writeFileSync(join(t.dir, 'master.cf'), masterCf);
    fn(t.dir);
  } finally {
    t.cleanup();
  }
}

const MASTER = [
  'smtp inet n - n - - smtpd',
  'smtp unix - - n - - smtp',
  'relay unix - - n - 7 smtp',
  '  -o syslog_name=sealpost/$service_name',
  'error unix - - n - 0 error',
  'retry unix - - n - - error',
  'discard unix - - n - - discard',
  'pickup unix n - n 60 1 pickup',
  '',
].join('\n');

test('delivery services: smtp, error/retry, discard; inet and other unix services are not agents', () => {
  withConfig('', MASTER, (dir) => {
    const config = loadConfig({ configDir: dir });
    const kinds = deliveryServices(config).map((s) => `${s.name}:${agentKind(s)}`);
    assert.deepEqual(kinds, ['smtp:smtp', 'relay:smtp', 'error:error', 'retry:retry', 'discard:discard']);
  });
});

test('maxproc: "-" is default_process_limit, 0 is no limit; $service_name in -o; the log program', () => {
  withConfig('default_process_limit = 33\n', MASTER, (dir) => {
    const config = loadConfig({ configDir: dir });
    const [smtp, relay, error] = deliveryServices(config);
    assert.equal(serviceMaxproc(smtp!, config), 33);
    assert.equal(serviceMaxproc(relay!, config), 7);
    assert.equal(serviceMaxproc(error!, config), 0);
    assert.deepEqual(serviceOverrides(relay!), { syslog_name: 'sealpost/relay' });
    const rc = serviceConfig(config, relay!);
    assert.equal(logProgram(relay!, rc), 'sealpost/relay/smtp');
    assert.equal(logProgram(smtp!, serviceConfig(config, smtp!)), 'sealpost/smtp');
  });
});

test('scheduling parameters: <transport>_... wins, else the default_ parameter (postconf(5))', () => {
  withConfig(
    ['default_destination_concurrency_limit = 9', 'relay_destination_concurrency_limit = 3', 'initial_destination_concurrency = 4', 'relay_destination_rate_delay = 2s', 'smtp_destination_recipient_limit = 10', ''].join('\n'),
    MASTER,
    (dir) => {
      const config = loadConfig({ configDir: dir });
      assert.deepEqual(destinationSettings(config, 'smtp'), { limit: 9, initial: 4, positive: 1, negative: 1, failedCohortLimit: 1, rateDelayMs: 0 });
      assert.deepEqual(destinationSettings(config, 'relay'), { limit: 3, initial: 4, positive: 1, negative: 1, failedCohortLimit: 1, rateDelayMs: 2000 });
      assert.equal(recipientLimit(config, 'smtp'), 10);
      assert.equal(recipientLimit(config, 'relay'), 50);
      // A transport that master.cf does not name still gets the defaults.
      assert.equal(destinationSettings(config, 'discard').limit, 9);
    },
  );
});

test('a bad <transport>_destination_rate_delay is a configuration error naming the parameter, never a silent 0', () => {
  // For a master.cf transport, loading main.cf already refuses it (a derived parameter).
  withConfig(['relay_destination_rate_delay = 2 seconds', ''].join('\n'), MASTER, (dir) => {
    assert.throws(() => loadConfig({ configDir: dir }), /bad time value "2 seconds" for parameter "relay_destination_rate_delay"/);
  });
  // For any other transport name, the scheduler's own parsing refuses it too.
  withConfig(['custom_destination_rate_delay = 2 seconds', 'smtp_destination_rate_delay = 1m', ''].join('\n'), MASTER, (dir) => {
    const config = loadConfig({ configDir: dir, warn: () => undefined });
    assert.equal(destinationSettings(config, 'smtp').rateDelayMs, 60_000);
    assert.throws(() => destinationSettings(config, 'custom'), /^ConfigError: bad value for parameter "custom_destination_rate_delay": bad time value "2 seconds"$/);
  });
});
