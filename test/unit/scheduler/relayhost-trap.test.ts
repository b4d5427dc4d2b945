/**
 * relayhost-trap.test.ts — the one detection of the relayhost trap that
 * `sealpost check` and `sealpost tls explain` share: an entry for the
 * recipient domain (or its `.parent`) behind the relayhost, a
 * sender_dependent_relayhost_maps or transport_maps next hop; none when
 * transport_maps routes the domain on its own, without a policy table, or
 * without an entry.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.ts';
import { TableSet } from '../../../src/maps/registry.ts';
import { findRelayhostTrap, type RelayhostTrap } from '../../../src/scheduler/relayhost-trap.ts';
import { Router } from '../../../src/scheduler/resolve.ts';
import { tempDir } from '../../harness/cli.ts';

/** The trap for `recipient` (sent by `sender`) under main.cf lines `mainCf` and the policy table `policy`. */
async function trapFor(mainCf: string[], policy: string, recipient: string, sender = ''): Promise<RelayhostTrap | undefined> {
  const t = tempDir('sealpost-trap-');
  try {
    const etc = join(t.dir, 'etc');
    mkdirSync(etc);
    writeFileSync(join(etc, 'tls_policy'), policy);
    writeFileSync(join(etc, 'main.cf'), [`queue_directory = ${t.dir}/q`, 'mydestination = localhost', ...mainCf, ''].join('\n'));
    const config = loadConfig({ configDir: etc });
    const tables = new TableSet({ baseDir: etc, defaultType: 'hash' });
    try {
      const route = await new Router({ config, tables }).resolve(recipient, sender);
      assert.equal(route.kind, 'deliver');
      if (route.kind !== 'deliver') return undefined;
      return await findRelayhostTrap(config, tables, recipient.slice(recipient.lastIndexOf('@') + 1), route);
    } finally {
      await tables.close();
    }
  } finally {
    t.cleanup();
  }
}

const POLICY = 'smtp_tls_policy_maps = texthash:${config_directory}/tls_policy';

test('behind the relayhost: the entry, where the mail goes and why', async () => {
  const trap = await trapFor(['relayhost = [relay.example.net]:587', POLICY], 'example.com secure\n', 'bob@Example.COM');
  assert.ok(trap);
  assert.equal(trap.domain, 'example.com');
  assert.deepEqual({ key: trap.entry.key, value: trap.entry.value }, { key: 'example.com', value: 'secure' });
  assert.match(trap.entry.table, /^texthash:.*\/tls_policy$/);
  assert.deepEqual(trap.nexthops, ['[relay.example.net]:587']);
  assert.equal(trap.via, 'relayhost');
});

test('a .parent entry is found by the same walk the hop step makes; other settings are named', async () => {
  const parent = await trapFor(['relayhost = [relay.example.net]', POLICY], '.example.com verify\n', 'a@mx.example.com');
  assert.deepEqual(parent?.entry.key, '.example.com');
  const bySender = await trapFor(['sender_dependent_relayhost_maps = inline:{ alice@example.org=[sub.example.net] }', POLICY], 'example.com encrypt\n', 'bob@example.com', 'alice@example.org');
  assert.equal(bySender?.via, 'sender_dependent_relayhost_maps');
  assert.deepEqual(bySender?.nexthops, ['[sub.example.net]']);
  const byTransport = await trapFor(['transport_maps = inline:{ example.com=smtp:[gw.example.net] }', POLICY], 'example.com encrypt\n', 'bob@example.com');
  assert.equal(byTransport?.via, 'transport_maps');
});

test('no trap: the domain routed on its own, no policy table, no entry', async () => {
  assert.equal(await trapFor(['relayhost = [relay.example.net]', 'transport_maps = inline:{ example.com=smtp: }', POLICY], 'example.com secure\n', 'bob@example.com'), undefined);
  assert.equal(await trapFor(['relayhost = [relay.example.net]'], 'example.com secure\n', 'bob@example.com'), undefined);
  assert.equal(await trapFor(['relayhost = [relay.example.net]', POLICY], 'other.example secure\n', 'bob@example.com'), undefined);
  assert.equal(await trapFor([POLICY], 'example.com secure\n', 'bob@example.com'), undefined);
});
