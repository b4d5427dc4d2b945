/**
 * demo.test.ts — `sealpost demo` runs in-process from start to end: the
 * transcript shows the Verified connection to the partner MX, the Untrusted
 * (encrypted, unauthenticated) one to the self-signed MX, the plain.demo
 * message waiting in mailq with Postfix's reason, the tls explain output and
 * the tls-finger verdicts; it removes its temp dir (or keeps it with -k) and
 * leaves nothing running (the test process would not end otherwise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { sealpost } from '../harness/cli.ts';

test('sealpost demo tells the story and cleans up', async () => {
  const r = await sealpost(['demo']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const o = r.stdout;
  // The log: one Verified, one Untrusted TLS connection, Postfix's words.
  assert.match(o, /sealpost\/smtp\[\d+\]: Verified TLS connection established to mx\.partner\.demo\[127\.0\.0\.4\]:\d+: TLSv1\.3 with cipher \S+ \(\d+\/\d+ bits\)/);
  assert.match(o, /sealpost\/smtp\[\d+\]: Untrusted TLS connection established to mx\.selfsigned\.demo\[127\.0\.0\.3\]:\d+: TLSv1\.3/);
  assert.match(o, /to=<dave@partner\.demo>, relay=mx\.partner\.demo\[127\.0\.0\.4\]:\d+, .*tls=secure, dsn=2\.0\.0, status=sent/);
  assert.match(o, /to=<carol@selfsigned\.demo>, .*tls=encrypt, dsn=2\.0\.0, status=sent/);
  assert.match(o, /to=<bob@plain\.demo>, .*dsn=4\.7\.4, status=deferred \(TLS is required, but was not offered by host mx\.plain\.demo\[127\.0\.0\.2\]\)/);
  assert.doesNotMatch(o, /Verified TLS connection established to mx\.selfsigned/);
  // mailq: only the plain.demo message waits, with its reason.
  assert.match(o, /^ {10}\(TLS is required, but was not offered by host mx\.plain\.demo\[127\.0\.0\.2\]\)\n {44}bob@plain\.demo$/m);
  assert.match(o, /-- 0 Kbytes in 1 Request\./);
  // tls explain.
  assert.match(o, /key "plain\.demo": found: "encrypt"/);
  assert.match(o, /level: encrypt \(from texthash:\S+\/tls_policy entry "plain\.demo"\)/);
  // tls-finger verdicts at the self-signed server.
  assert.match(o, /^ {5}verify: deferred \(Server certificate not verified\)$/m);
  assert.match(o, /^ {5}encrypt: would deliver \(Untrusted TLS\)$/m);
  // Nothing reached the plain receiver.
  assert.match(o, /mx\.plain\.demo +0 messages/);
  assert.match(o, /mx\.partner\.demo +1 message \(1 over TLS\)/);
  const removed = /removed (\S+) \(-k keeps it\)/.exec(o);
  assert.ok(removed, o);
  assert.equal(existsSync(removed[1]!), false);
});

test('sealpost demo -k keeps the directory; a stray argument is a usage error', async () => {
  const r = await sealpost(['demo', '-k']);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const kept = /^kept (\S+) \(main\.cf in (\S+), the log in (\S+)\)$/m.exec(r.stdout);
  assert.ok(kept, r.stdout);
  try {
    assert.ok(existsSync(`${kept[2]}/main.cf`));
    assert.ok(existsSync(`${kept[2]}/tls_policy`));
    assert.ok(existsSync(kept[3]!));
  } finally {
    rmSync(kept[1]!, { recursive: true, force: true });
  }
  const bad = await sealpost(['demo', 'extra']);
  assert.equal(bad.code, 64);
  assert.match(bad.stderr, /usage: sealpost demo \[-k\]/);
});
