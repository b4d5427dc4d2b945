import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../harness/cli.ts';
import { verifyPassword } from '../../src/intake/smtpd/sasl.ts';

test('sealpost saslpasswd add/list/delete keeps only hashes, mode 0600', async () => {
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'main.cf'), '');
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'add', 'alice'], { stdin: 'pw1\n' })).code, 0);
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'add', 'bob'], { stdin: 'pw2\n' })).code, 0);
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'add', 'alice'], { stdin: 'pw3\n' })).code, 0);
    const file = join(dir, 'sasl_passwd');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.doesNotMatch(readFileSync(file, 'utf8'), /pw[123]/);
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'list'])).stdout, 'bob\nalice\n');
    assert.equal(await verifyPassword(file, 'alice', 'pw3'), true);
    assert.equal(await verifyPassword(file, 'alice', 'pw1'), false);
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'delete', 'bob'])).code, 0);
    const gone = await sealpost(['saslpasswd', '-c', dir, 'delete', 'bob']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /no such user: bob/);
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'list'])).stdout, 'alice\n');
    assert.equal((await sealpost(['saslpasswd', '-c', dir, 'frob'])).code, 64);
  } finally {
    cleanup();
  }
});
