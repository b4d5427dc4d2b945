import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { chooseMechanism, credentialKeys, findCredentials } from '../../../../src/delivery/smtp/sasl.ts';
import { tempDir } from '../../../harness/cli.ts';

function config(lines: string): { cfg: ReturnType<typeof loadConfig>; dir: string; cleanup: () => void } {
  const t = tempDir();
  writeFileSync(join(t.dir, 'main.cf'), lines);
  return { cfg: loadConfig({ configDir: t.dir }), dir: t.dir, cleanup: t.cleanup };
}

test('credential keys: sender and @domain first with sender-dependent auth, then the next hop verbatim, then the host', () => {
  assert.deepEqual(credentialKeys('[relay.example]:587', 'relay.example', 'a@b.example', false), ['[relay.example]:587', 'relay.example']);
  assert.deepEqual(credentialKeys('example.com', 'example.com', 'a@b.example', true), ['a@b.example', '@b.example', 'example.com']);
});

test('findCredentials: user:password split at the first colon; none when absent', async () => {
  const c = config('');
  try {
    writeFileSync(join(c.dir, 'sasl_passwd'), '[relay.example]:587 user:pa:ss\n');
    const cfg = loadConfig({ configDir: c.dir, overrides: { smtp_sasl_password_maps: `texthash:${join(c.dir, 'sasl_passwd')}` } });
    const tables = new TableSet({ baseDir: c.dir });
    assert.deepEqual(await findCredentials(cfg, tables, '[relay.example]:587', 'relay.example', ''), {
      kind: 'found', credentials: { user: 'user', password: 'pa:ss' }, key: '[relay.example]:587',
    });
    assert.deepEqual(await findCredentials(cfg, tables, 'other.example', 'other.example', ''), { kind: 'none' });
    await tables.close();
  } finally {
    c.cleanup();
  }
});

test('chooseMechanism: noplaintext (the default) refuses PLAIN/LOGIN outside TLS, not inside; the filter applies', () => {
  const d = config('');
  try {
    assert.equal(chooseMechanism(['PLAIN', 'LOGIN'], d.cfg, false), undefined);
    assert.equal(chooseMechanism(['LOGIN', 'PLAIN'], d.cfg, true), 'PLAIN');
    assert.equal(chooseMechanism(['CRAM-MD5'], d.cfg, true), undefined);
  } finally {
    d.cleanup();
  }
  const o = config('smtp_sasl_security_options = noanonymous\nsmtp_sasl_mechanism_filter = login\n');
  try {
    assert.equal(chooseMechanism(['PLAIN', 'LOGIN'], o.cfg, false), 'LOGIN');
  } finally {
    o.cleanup();
  }
});
