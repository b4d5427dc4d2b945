/**
 * routing-daemon — routing decisions proven by what real receivers got,
 * through the running daemon (qmgr-lab.ts):
 * - the relayhost trap (MISSION.md): with `relayhost` set, a per-domain
 *   `encrypt` entry is never consulted and the mail goes to the relayhost in
 *   the clear at `may`; with `example.com smtp:` in transport_maps the entry
 *   applies and the mail waits with Postfix's reason;
 * - transport(5) forms: `:[gateway]`, `error:`, `discard:`;
 * - sender_dependent_relayhost_maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost } from '../harness/cli.ts';
import { startReceivers } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';

const zone = {
  'relay.test': { A: ['127.0.0.2'] },
  'example.com': { MX: [[10, 'mx.example.com']] as Array<[number, string]> },
  'mx.example.com': { A: ['127.0.0.3'] },
  'gw.test': { A: ['127.0.0.4'] },
  'other.test': { MX: [[10, 'mx.example.com']] as Array<[number, string]> },
};

test('the relayhost trap: the per-domain entry is shadowed by relayhost until transport_maps routes the domain', async () => {
  // No receiver offers STARTTLS: the level that applied decides whether mail goes out at all.
  const [relay, mx] = await startReceivers([{ name: 'relay.test' }, { name: 'mx.example.com' }]);
  const lab = await qmgrLab({
    zone,
    receiverPort: relay!.port,
    mainCf: ['relayhost = [relay.test]', 'smtp_tls_security_level = may', `smtp_tls_policy_maps = texthash:__DIR__/tls_policy`],
  });
  try {
    const main = join(lab.configDir, 'main.cf');
    writeFileSync(main, readFileSync(main, 'utf8').replace('__DIR__', lab.configDir));
    writeFileSync(join(lab.configDir, 'tls_policy'), 'example.com encrypt\n');
    await lab.start();
    // 1. The trap: the encrypt entry is never consulted; the relayhost gets the mail in the clear.
    const id1 = await lab.submit('alice@sender.test', ['bob@example.com']);
    const [sent] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id1}: to=<bob@example\\.com>, .*status=sent`));
    assert.match(sent!, new RegExp(`relay=relay\\.test\\[127\\.0\\.0\\.2\\]:${relay!.port}, .*tls=may:none, dsn=2\\.0\\.0, status=sent`));
    assert.equal(relay!.messages.length, 1);
    assert.equal(relay!.messages[0]!.tls, false);
    const explain = await sealpost(['tls', 'explain', '-c', lab.configDir, 'bob@example.com']);
    assert.match(explain.stdout, /WARNING: .*"example\.com encrypt", but it is never consulted/);
    // 2. The fix: route the domain itself; now the entry applies and the MX without STARTTLS gets nothing.
    writeFileSync(join(lab.configDir, 'transport'), 'example.com smtp:\n');
    writeFileSync(main, readFileSync(main, 'utf8') + `transport_maps = texthash:${join(lab.configDir, 'transport')}\n`);
    await lab.stop();
    await lab.start();
    const id2 = await lab.submit('alice@sender.test', ['bob@example.com']);
    const [deferred] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id2}: to=<bob@example\\.com>, .*status=deferred`));
    assert.match(
      deferred!,
      new RegExp(`relay=mx\\.example\\.com\\[127\\.0\\.0\\.3\\]:${mx!.port}, .*dsn=4\\.7\\.4, status=deferred \\(TLS is required, but was not offered by host mx\\.example\\.com\\[127\\.0\\.0\\.3\\]\\)$`),
    );
    assert.equal(mx!.messages.length, 0, 'no plaintext message reached the MX');
    const explained = await sealpost(['tls', 'explain', '-c', lab.configDir, 'bob@example.com']);
    assert.match(explained.stdout, /level: encrypt/);
    assert.doesNotMatch(explained.stdout, /never consulted/);
  } finally {
    await lab.cleanup();
    await relay!.close();
    await mx!.close();
  }
});

test('transport_maps forms through the daemon: :[gateway], error:, discard:', async () => {
  const [unused, mx, gw] = await startReceivers([{ name: 'unused.test' }, { name: 'mx.example.com' }, { name: 'gw.test' }]);
  const lab = await qmgrLab({ zone, receiverPort: mx!.port, mainCf: ['transport_maps = texthash:__T__'] });
  try {
    const t = join(lab.configDir, 'transport');
    writeFileSync(t, ['other.test :[gw.test]', 'gone.test error:5.1.2 this domain is gone', 'drop.test discard:dropped by policy', ''].join('\n'));
    const main = join(lab.configDir, 'main.cf');
    writeFileSync(main, readFileSync(main, 'utf8').replace('__T__', t));
    await lab.start();
    const a = await lab.submit('alice@sender.test', ['carol@other.test']);
    const b = await lab.submit('alice@sender.test', ['dave@gone.test']);
    const c = await lab.submit('alice@sender.test', ['erin@drop.test']);
    const [viaGw] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${a}: to=<carol@other\\.test>, .*status=sent`));
    assert.match(viaGw!, new RegExp(`relay=gw\\.test\\[127\\.0\\.0\\.4\\]:${gw!.port}, `), 'the gateway, not the MX of other.test');
    assert.equal(gw!.messages.length, 1);
    assert.equal(mx!.messages.length, 0);
    const [bounced] = await lab.waitLog(new RegExp(`^sealpost/error: ${b}: to=<dave@gone\\.test>, `));
    assert.match(bounced!, /relay=none, delay=[\d.]+, delays=[\d./]+, dsn=5\.1\.2, status=bounced \(this domain is gone\)$/);
    const [dropped] = await lab.waitLog(new RegExp(`^sealpost/discard: ${c}: to=<erin@drop\\.test>, `));
    assert.match(dropped!, /relay=none, delay=[\d.]+, delays=[\d./]+, dsn=2\.0\.0, status=sent \(dropped by policy\)$/);
  } finally {
    await lab.cleanup();
    await Promise.all([unused!.close(), mx!.close(), gw!.close()]);
  }
});

test('sender_dependent_relayhost_maps: one sender goes through its own relay, the others by MX', async () => {
  const [relay, mx] = await startReceivers([{ name: 'relay.test' }, { name: 'mx.example.com' }]);
  const lab = await qmgrLab({ zone, receiverPort: relay!.port, mainCf: ['sender_dependent_relayhost_maps = inline:{ {alice@sender.test = [relay.test]} }'] });
  try {
    await lab.start();
    const a = await lab.submit('alice@sender.test', ['bob@example.com']);
    const b = await lab.submit('zoe@sender.test', ['bob@example.com']);
    const [la] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${a}: to=<bob@example\\.com>, .*status=sent`));
    const [lb] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${b}: to=<bob@example\\.com>, .*status=sent`));
    assert.match(la!, /relay=relay\.test\[127\.0\.0\.2\]:/);
    assert.match(lb!, /relay=mx\.example\.com\[127\.0\.0\.3\]:/);
    assert.deepEqual(relay!.messages.map((m) => m.mailFrom), ['alice@sender.test']);
    assert.deepEqual(mx!.messages.map((m) => m.mailFrom), ['zoe@sender.test']);
  } finally {
    await lab.cleanup();
    await relay!.close();
    await mx!.close();
  }
});

test('smtp_fallback_relay: when the MX host cannot be reached, the fallback relay gets the mail', async () => {
  // A receiver only on 127.0.0.2 (relay.test, unused here) and 127.0.0.4 (gw.test as the fallback): mx.example.com (127.0.0.3) refuses.
  const [unused, fallback] = await startReceivers([{ name: 'relay.test' }, { name: 'gw.test', host: '127.0.0.4' }]);
  const lab = await qmgrLab({ zone, receiverPort: fallback!.port, mainCf: ['smtp_fallback_relay = [gw.test]'] });
  try {
    await lab.start();
    const id = await lab.submit('alice@sender.test', ['bob@example.com']);
    const [line] = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<bob@example\\.com>, `));
    assert.match(line!, new RegExp(`relay=gw\\.test\\[127\\.0\\.0\\.4\\]:${fallback!.port}, .*dsn=2\\.0\\.0, status=sent`));
    assert.ok(lab.lines(/connect to mx\.example\.com\[127\.0\.0\.3\]:\d+: Connection refused/).length >= 1, lab.log());
    assert.deepEqual(fallback!.messages.map((m) => m.rcptTo[0]), ['bob@example.com']);
  } finally {
    await lab.cleanup();
    await Promise.all([unused!.close(), fallback!.close()]);
  }
});
