import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import type { TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers } from '../harness/smtp-receiver.ts';
import type { Receiver } from '../harness/smtp-receiver.ts';

const ZONE = { 'relay.example': { A: ['127.0.0.3'] } };

let pki: TestPki;
let dir: string;
let cleanup: () => void;
before(() => {
  const t = tempDir('sealpost-auth-');
  dir = t.dir;
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['relay.example']);
});
after(() => cleanup());

/** smtp_sasl_password_maps keyed by the relayhost verbatim, as SASL_README shows. */
function passwordMap(port: number, value = 'user:secret'): string {
  const file = join(dir, `sasl_passwd_${port}_${value.length}`);
  writeFileSync(file, `[relay.example]:${port} ${value}\n`);
  return `texthash:${file}`;
}

async function relay(opts: { tls: boolean; onlyOverTls?: boolean }): Promise<Receiver> {
  const [rx] = await startReceivers([{
    host: '127.0.0.3', name: 'relay.example',
    ...(opts.tls ? { tls: { key: pki.server.key, cert: pki.server.cert } } : {}),
    auth: { users: { user: 'secret' }, onlyOverTls: opts.onlyOverTls ?? false },
  }]);
  return rx!;
}

test('AUTH to a relayhost over TLS (default security options): PLAIN with the [host]:port credentials', async () => {
  const rx = await relay({ tls: true, onlyOverTls: true });
  const hop = `[relay.example]:${rx.port}`;
  const lab = await deliveryLab(ZONE, rx.port, { smtp_tls_security_level: 'may', smtp_sasl_auth_enable: 'yes', smtp_sasl_password_maps: passwordMap(rx.port) });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@far.example'], nexthops: [hop] }));
    assert.equal(o.status, 'sent');
    assert.equal(rx.messages[0]!.authUser, 'user');
    assert.equal(rx.messages[0]!.tls, true);
    assert.ok(!lab.log.lines.some((l) => l.includes('secret')));
  } finally {
    await lab.close();
    await rx.close();
  }
});

test('AUTH never over plaintext by default: "no mechanism available", deferred, no MAIL FROM', async () => {
  const rx = await relay({ tls: false });
  const lab = await deliveryLab(ZONE, rx.port, { smtp_sasl_auth_enable: 'yes', smtp_sasl_password_maps: passwordMap(rx.port) });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@far.example'], nexthops: [`[relay.example]:${rx.port}`] }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.7.0']);
    assert.equal(o.reason, 'SASL authentication failed; cannot authenticate to server relay.example[127.0.0.3]: no mechanism available');
    assert.ok(!rx.transcript.some((l) => l.startsWith('C: AUTH') || l.startsWith('C: MAIL')));
  } finally {
    await lab.close();
    await rx.close();
  }
});

test('plaintext AUTH allowed when smtp_sasl_security_options lacks noplaintext (LOGIN when PLAIN is filtered out)', async () => {
  const rx = await relay({ tls: false });
  const lab = await deliveryLab(ZONE, rx.port, {
    smtp_sasl_auth_enable: 'yes', smtp_sasl_password_maps: passwordMap(rx.port),
    smtp_sasl_security_options: 'noanonymous', smtp_sasl_mechanism_filter: 'login',
  });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@far.example'], nexthops: [`[relay.example]:${rx.port}`] }));
    assert.equal(o.status, 'sent');
    assert.equal(rx.messages[0]!.authUser, 'user');
    assert.ok(rx.transcript.includes('C: AUTH LOGIN'));
  } finally {
    await lab.close();
    await rx.close();
  }
});

test('wrong password: 535 → deferred "SASL authentication failed; server ... said" (smtp_sasl_auth_soft_bounce)', async () => {
  const rx = await relay({ tls: true });
  const lab = await deliveryLab(ZONE, rx.port, { smtp_tls_security_level: 'encrypt', smtp_sasl_auth_enable: 'yes', smtp_sasl_password_maps: passwordMap(rx.port, 'user:wrong') });
  try {
    const o = outcomeOf(await lab.deliver({ recipients: ['a@far.example'], nexthops: [`[relay.example]:${rx.port}`] }));
    assert.deepEqual([o.status, o.dsn], ['deferred', '4.7.8']);
    assert.equal(o.reason, 'SASL authentication failed; server relay.example[127.0.0.3] said: 535 5.7.8 Error: authentication failed: authentication failure');
    assert.equal(rx.messages.length, 0);
  } finally {
    await lab.close();
    await rx.close();
  }
});
