/**
 * tls-policy-table.test.ts — smtp_tls_policy_maps end to end through the SMTP
 * agent: per-domain entries and `.parent`, match=nexthop / match=hostname,
 * `[host]:port` keys used verbatim, an invalid entry and a table lookup error
 * (deferred, no connection, never plaintext), TLS-Required: No.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { makePki, type TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers, type Receiver } from '../harness/smtp-receiver.ts';

// mx.partner.net has a CA-valid certificate naming partner.net's MX only; mx.plain.example offers no STARTTLS.
const ZONE = {
  'partner.net': { MX: [[10, 'mx.partner.net']] as Array<[number, string]> },
  'sub.partner.net': { MX: [[10, 'mx.partner.net']] as Array<[number, string]> },
  'mx.partner.net': { A: ['127.0.0.2'] },
  'other.org': { MX: [[10, 'mx.partner.net']] as Array<[number, string]> },
  'plain.example': { MX: [[10, 'mx.plain.example']] as Array<[number, string]> },
  'mx.plain.example': { A: ['127.0.0.3'] },
  // Preferred MX without STARTTLS, backup with it.
  'backup.example': { MX: [[10, 'mx.plain.example'], [20, 'mx.partner.net']] as Array<[number, string]> },
};

let pki: TestPki;
let cleanup: () => void;
let tlsRx: Receiver;
let plainRx: Receiver;

before(async () => {
  const t = tempDir('sealpost-tls-table-');
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['mx.partner.net']);
  [tlsRx, plainRx] = (await startReceivers([
    { name: 'mx.partner.net', tls: { key: pki.server.key, cert: pki.server.cert } },
    { name: 'mx.plain.example' },
  ])) as [Receiver, Receiver];
});
after(async () => {
  await tlsRx.close();
  await plainRx.close();
  cleanup();
});

async function lab(policy: string, extra: Record<string, string> = {}) {
  const l = await deliveryLab(ZONE, tlsRx.port, {
    smtp_tls_security_level: 'may',
    smtp_tls_CAfile: pki.caCert,
    smtp_tls_policy_maps: 'texthash:$config_directory/tls_policy',
    ...extra,
  });
  writeFileSync(join(l.dir, 'tls_policy'), policy);
  return l;
}

test('per-domain entries: secure for partner.net (dot-nexthop accepts mx.partner.net), encrypt for plain.example defers', async () => {
  const l = await lab('partner.net secure\nplain.example encrypt\n');
  try {
    const a = outcomeOf(await l.deliver({ recipients: ['a@partner.net'], nexthops: ['partner.net'] }));
    assert.equal(a.status, 'sent', JSON.stringify(a));
    assert.equal(a.tls, 'secure');
    const before = plainRx.messages.length;
    const b = outcomeOf(await l.deliver({ recipients: ['b@plain.example'], nexthops: ['plain.example'] }));
    assert.equal(b.status, 'deferred');
    assert.equal(b.dsn, '4.7.4');
    assert.equal(b.reason, 'TLS is required, but was not offered by host mx.plain.example[127.0.0.3]');
    assert.equal(plainRx.messages.length, before, 'no plaintext delivery at encrypt');
  } finally {
    await l.close();
  }
});

test('.parent entry covers subdomains, not the parent itself; match=nexthop fails when the certificate names only the MX', async () => {
  const l = await lab('.partner.net verify match=nexthop\n');
  try {
    const sub = outcomeOf(await l.deliver({ recipients: ['a@sub.partner.net'], nexthops: ['sub.partner.net'] }));
    assert.equal(sub.status, 'deferred');
    assert.equal(sub.reason, 'Server certificate not verified');
    assert.equal(sub.dsn, '4.7.5');
    const top = outcomeOf(await l.deliver({ recipients: ['a@partner.net'], nexthops: ['partner.net'] }));
    assert.equal(top.status, 'sent');
    assert.equal(top.tls, 'may');
  } finally {
    await l.close();
  }
});

test('match=hostname at verify: the MX name; an explicit name list works too', async () => {
  const l = await lab('other.org verify match=hostname\npartner.net verify match=mx.partner.net:backup.partner.net\n');
  try {
    const a = outcomeOf(await l.deliver({ recipients: ['a@other.org'], nexthops: ['other.org'] }));
    assert.equal(a.status, 'sent', JSON.stringify(a));
    assert.equal(a.tls, 'verify');
    const b = outcomeOf(await l.deliver({ recipients: ['a@partner.net'], nexthops: ['partner.net'] }));
    assert.equal(b.status, 'sent', JSON.stringify(b));
  } finally {
    await l.close();
  }
});

test('[host]:port keys are verbatim: [mx.partner.net]:PORT matches, [mx.partner.net] does not', async () => {
  const port = tlsRx.port;
  const l = await lab(`[mx.partner.net]:${port} secure match=nexthop\n[mx.partner.net] none\n`);
  try {
    const a = outcomeOf(await l.deliver({ recipients: ['a@partner.net'], nexthops: [`[mx.partner.net]:${port}`] }));
    assert.equal(a.status, 'sent', JSON.stringify(a));
    assert.equal(a.tls, 'secure');
    const b = outcomeOf(await l.deliver({ recipients: ['a@partner.net'], nexthops: ['[mx.partner.net]'] }));
    assert.equal(b.status, 'sent');
    assert.equal(b.tls, 'none');
  } finally {
    await l.close();
  }
});

test('an invalid entry defers with client TLS configuration problem, makes no connection, and logs Postfix warnings', async () => {
  const l = await lab('partner.net secure ciphers=high ciphers=medium\n');
  try {
    const conns = tlsRx.connections;
    const o = outcomeOf(await l.deliver({ recipients: ['a@partner.net'], nexthops: ['partner.net'] }));
    assert.equal(o.status, 'deferred');
    assert.equal(o.reason, 'client TLS configuration problem');
    assert.equal(o.dsn, '4.7.5');
    assert.equal(tlsRx.connections, conns, 'no connection for an invalid policy');
    assert.ok(l.log.lines.includes('sealpost/smtp: warning: smtp_tls_policy_maps, next-hop destination "partner.net": attribute "ciphers" is specified multiple times'), l.log.lines.join('\n'));
  } finally {
    await l.close();
  }
});

test('a table lookup error defers with client TLS configuration problem 4.7.5 (Postfix 3.7/3.11) — never the default level', async () => {
  const l = await lab('', { smtp_tls_policy_maps: 'socketmap:inet:127.0.0.1:1:postfix' });
  try {
    const o = outcomeOf(await l.deliver({ recipients: ['b@plain.example'], nexthops: ['plain.example'] }));
    assert.equal(o.status, 'deferred');
    assert.equal(o.reason, 'client TLS configuration problem');
    assert.equal(o.dsn, '4.7.5');
    assert.equal(o.relay, 'none');
    assert.ok(l.log.lines.includes('sealpost/smtp: warning: smtp_tls_policy_maps, next-hop destination "plain.example": policy table lookup error'), l.log.lines.join('\n'));
  } finally {
    await l.close();
  }
});

test('TLS-Required: No skips the table: the encrypt entry does not stop delivery in the clear', async () => {
  const l = await lab('plain.example encrypt\n');
  try {
    const o = outcomeOf(await l.deliver({ recipients: ['b@plain.example'], nexthops: ['plain.example'], tlsRequiredNo: true }));
    assert.equal(o.status, 'sent', JSON.stringify(o));
    assert.equal(o.tls, 'may:none');
  } finally {
    await l.close();
  }
});

test('encrypt: the preferred MX without STARTTLS is skipped, the backup MX with TLS gets the mail', async () => {
  const l = await lab('backup.example encrypt\n');
  try {
    const plainBefore = plainRx.messages.length;
    const tlsBefore = tlsRx.messages.length;
    const o = outcomeOf(await l.deliver({ recipients: ['a@backup.example'], nexthops: ['backup.example'] }));
    assert.equal(o.status, 'sent', JSON.stringify(o));
    assert.equal(o.tls, 'encrypt');
    assert.match(o.relay, /^mx\.partner\.net\[127\.0\.0\.2\]:\d+$/);
    assert.equal(plainRx.messages.length, plainBefore);
    assert.equal(tlsRx.messages.length, tlsBefore + 1);
    assert.equal(tlsRx.messages.at(-1)!.tls, true);
  } finally {
    await l.close();
  }
});
