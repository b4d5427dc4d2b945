/**
 * delivery-smtp-requiretls — REQUIRETLS (RFC 8689) on delivery, as Postfix
 * 3.11's smtp(8) enforces it, through the real SMTP client, real STARTTLS
 * and a loopback DNS server (the delivery lab): every row of the table in
 * src/delivery/tls/requiretls.ts that a server can provoke, with the exact
 * 5.7.30 / 5.7.10 texts, "the next MX first", the `tls=` feature, the
 * session record's `requireTls`, `TLS-Required: No` losing to REQUIRETLS, and
 * the smtp_requiretls_policy actions. (The daemon-level scenario with the
 * redacted bounce is requiretls-delivery.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir } from '../harness/cli.ts';
import { makePki, type TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers, type DeliveryLab, type Receiver } from '../harness/smtp-receiver.ts';

const mx = (host: string): Array<[number, string]> => [[10, host]];
const ZONE = {
  'ok.example': { MX: mx('mx.ok.example') },
  'mx.ok.example': { A: ['127.0.0.2'] },
  'noadv.example': { MX: mx('mx.noadv.example') },
  'mx.noadv.example': { A: ['127.0.0.3'] },
  'two.example': { MX: [[10, 'mx.noadv.example'], [20, 'mx.ok.example']] as Array<[number, string]> },
  'wrong.example': { MX: mx('mx.wrong.example') },
  'mx.wrong.example': { A: ['127.0.0.4'] },
  'plain.example': { MX: mx('mx.plain.example') },
  'mx.plain.example': { A: ['127.0.0.5'] },
  'refuse.example': { MX: mx('mx.refuse.example') },
  'mx.refuse.example': { A: ['127.0.0.6'] },
  'selfsigned.example': { MX: mx('mx.selfsigned.example') },
  'mx.selfsigned.example': { A: ['127.0.0.7'] },
  'enc.example': { MX: mx('mx.ok.example') },
  'opp.example': { MX: mx('mx.noadv.example') },
  'oppstarttls.example': { MX: mx('mx.plain.example') },
};

const POLICY = [
  'ok.example = secure', 'noadv.example = secure', 'two.example = verify', 'wrong.example = secure', 'plain.example = secure',
  'refuse.example = secure', 'selfsigned.example = verify', 'enc.example = encrypt', 'opp.example = verify',
].map((e) => `{${e}}`).join(', ');

let pki: TestPki;
let cleanup: () => void;
let rx: Receiver[];
let lab: DeliveryLab;
const byHost = (host: string): Receiver => rx.find((r) => r.host === host)!;

before(async () => {
  const t = tempDir('sealpost-reqtls-');
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['mx.ok.example', 'mx.noadv.example', 'mx.plain.example', 'mx.refuse.example']);
  const good = { key: pki.server.key, cert: pki.server.cert };
  rx = await startReceivers([
    { host: '127.0.0.2', name: 'mx.ok.example', tls: good, requireTls: true },
    { host: '127.0.0.3', name: 'mx.noadv.example', tls: good },
    { host: '127.0.0.4', name: 'mx.wrong.example', tls: { key: pki.wrongName.key, cert: pki.wrongName.cert }, requireTls: true },
    { host: '127.0.0.5', name: 'mx.plain.example' },
    { host: '127.0.0.6', name: 'mx.refuse.example', tls: good, starttls: 'refuse-454', requireTls: true },
    { host: '127.0.0.7', name: 'mx.selfsigned.example', tls: { key: pki.selfSigned.key, cert: pki.selfSigned.cert }, requireTls: true },
  ]);
  lab = await deliveryLab(ZONE, rx[0]!.port, {
    mydomain: 'client.test',
    smtp_tls_security_level: 'may',
    smtp_tls_CAfile: pki.caCert,
    smtp_tls_policy_maps: `inline:{ ${POLICY} }`,
    smtp_requiretls_policy: 'inline:{ {opp.example = opportunistic}, {oppstarttls.example = opportunistic+starttls} }, enforce',
  });
});
after(async () => {
  await lab.close();
  await Promise.all(rx.map((r) => r.close()));
  cleanup();
});

const reqtls = (to: string, extra: { tlsRequiredNo?: boolean; requireTls?: boolean } = {}) =>
  lab.deliver({ recipients: [to], nexthops: [to.split('@')[1]!], requireTls: true, ret: 'FULL', ...extra });

test('verified and advertising REQUIRETLS: sent with MAIL FROM:<...> REQUIRETLS; tls=secure/requiretls; the record says so', async () => {
  const before = byHost('127.0.0.2').messages.length;
  const r = await reqtls('a@ok.example');
  const o = outcomeOf(r);
  assert.equal(o.status, 'sent', o.reason);
  assert.equal(o.tls, 'secure/requiretls');
  const m = byHost('127.0.0.2').messages[before]!;
  assert.equal(m.tls, true);
  assert.match(m.mailParams, /(^| )REQUIRETLS( |$)/);
  assert.match(m.mailParams, /RET=FULL/);
  assert.deepEqual(r.sessions![o.session!]!.requireTls, { policy: 'enforce', status: 'compliant', sent: true });
});

test('not advertising REQUIRETLS: 5.7.30 bounce, nothing delivered; with a second MX that does, the next MX gets it', async () => {
  const noadv = byHost('127.0.0.3');
  const r = await reqtls('b@noadv.example');
  const o = outcomeOf(r);
  assert.deepEqual([o.status, o.dsn], ['bounced', '5.7.30']);
  assert.equal(o.reason, 'Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS. The last attempted server was mx.noadv.example[127.0.0.3]');
  assert.equal(o.tls, 'secure/!requiretls:none');
  assert.equal(noadv.messages.length, 0);
  // The TLS session itself was fine (TLS-RPT counts a success); REQUIRETLS failed on it.
  const rec = r.sessions![o.session!]!;
  assert.equal(rec.result.kind, 'success');
  assert.deepEqual(rec.requireTls, { policy: 'enforce', final: 'none', status: 'violation', sent: false });

  const ok = byHost('127.0.0.2');
  const before = ok.messages.length;
  const two = outcomeOf(await reqtls('c@two.example'));
  assert.equal(two.status, 'sent', two.reason);
  assert.equal(two.relay, `mx.ok.example[127.0.0.2]:${ok.port}`);
  assert.match(ok.messages[before]!.mailParams, /REQUIRETLS/);
  // smtp_trouble.c: the soft non-final failure is logged as the client moves on.
  assert.ok(lab.log.lines.some((l) => /^sealpost\/smtp: 4A\d+: Sender requested REQUIRETLS, but no server was found that supports REQUIRETLS\. The last attempted server was mx\.noadv\.example\[127\.0\.0\.3\]$/.test(l)), lab.log.lines.join('\n'));
  assert.equal(noadv.messages.length, 0);
});

test('certificate not verified: 5.7.10 (wins over 4.7.5) with the record\'s RFC 8460 type; self-signed at verify too', async () => {
  const r = await reqtls('d@wrong.example');
  const o = outcomeOf(r);
  assert.deepEqual([o.status, o.dsn], ['bounced', '5.7.10']);
  assert.equal(o.reason, 'Sender requested REQUIRETLS, but no trusted server certificate was found. The last attempted server was mx.wrong.example[127.0.0.4]');
  assert.equal(o.tls, '!secure/!requiretls:nocertmatch');
  const rec = r.sessions![o.session!]!;
  assert.deepEqual([rec.result.kind, rec.result.kind === 'failure' && rec.result.type], ['failure', 'certificate-host-mismatch']);
  assert.equal(byHost('127.0.0.4').messages.length, 0);

  const s = outcomeOf(await reqtls('e@selfsigned.example'));
  assert.deepEqual([s.status, s.dsn], ['bounced', '5.7.10']);
  assert.equal(s.reason, 'Sender requested REQUIRETLS, but no trusted server certificate was found. The last attempted server was mx.selfsigned.example[127.0.0.7]');
  // Without REQUIRETLS the same failure is the level's own deferral.
  const plain = outcomeOf(await reqtls('e@selfsigned.example', { requireTls: false }));
  assert.deepEqual([plain.status, plain.dsn, plain.reason, plain.tls], ['deferred', '4.7.5', 'Server certificate not verified', '!verify']);
});

test('no STARTTLS: 5.7.30; STARTTLS refused: 5.7.10 with the server\'s reply; a level that cannot match certificates: 5.7.10 without connecting', async () => {
  const p = outcomeOf(await reqtls('f@plain.example'));
  assert.deepEqual([p.status, p.dsn], ['bounced', '5.7.30']);
  assert.equal(p.reason, 'Sender requested REQUIRETLS, but TLS service was not offered by host mx.plain.example[127.0.0.5]');
  assert.equal(p.tls, '!secure/!requiretls:nostarttls');

  const f = outcomeOf(await reqtls('g@refuse.example'));
  assert.deepEqual([f.status, f.dsn], ['bounced', '5.7.10']);
  assert.equal(f.reason, 'Sender requested REQUIRETLS, but host mx.refuse.example[127.0.0.6] refused to start TLS: 454 4.7.0 TLS not available due to local problem');
  assert.equal(f.tls, '!secure/!requiretls:nostarttls');

  const ok = byHost('127.0.0.2');
  const connections = ok.connections;
  const e = outcomeOf(await reqtls('h@enc.example'));
  assert.deepEqual([e.status, e.dsn, e.relay], ['bounced', '5.7.10', 'none']);
  assert.equal(e.reason, "Sender requested REQUIRETLS, but my configured TLS security level 'encrypt' disables certificate matching. The last attempted server was mx.ok.example");
  assert.equal(e.tls, 'encrypt?/!requiretls:nocertmatch');
  assert.equal(ok.connections, connections, 'no connection was made');
  assert.ok(lab.log.lines.includes("sealpost/smtp: warning: TLS policy lookup for enc.example/mx.ok.example: Sender requested REQUIRETLS, but my configured TLS security level 'encrypt' disables certificate matching. The last attempted server was mx.ok.example"), lab.log.lines.join('\n'));
});

test('TLS-Required: No alone: delivered opportunistically despite a secure entry; with REQUIRETLS as well, REQUIRETLS wins', async () => {
  const wrong = byHost('127.0.0.4');
  const before = wrong.messages.length;
  const o = outcomeOf(await reqtls('i@wrong.example', { requireTls: false, tlsRequiredNo: true }));
  assert.equal(o.status, 'sent', o.reason);
  assert.equal(o.tls, 'may');
  assert.doesNotMatch(wrong.messages[before]!.mailParams, /REQUIRETLS/);
  const both = outcomeOf(await reqtls('j@wrong.example', { tlsRequiredNo: true }));
  assert.deepEqual([both.status, both.dsn], ['bounced', '5.7.10']);
  assert.equal(wrong.messages.length, before + 1);
});

test('smtp_requiretls_policy: opportunistic delivers without REQUIRETLS (RET=HDRS); opportunistic+starttls still needs STARTTLS; requiretls_enable = no ignores it', async () => {
  const noadv = byHost('127.0.0.3');
  const before = noadv.messages.length;
  const o = outcomeOf(await reqtls('k@opp.example'));
  assert.equal(o.status, 'sent', o.reason);
  assert.equal(o.tls, 'verify/requiretls:none');
  const m = noadv.messages[before]!;
  assert.doesNotMatch(m.mailParams, /REQUIRETLS/);
  assert.match(m.mailParams, /RET=HDRS/, 'smtp_proto.c: limit content exposure in a bounce');
  assert.ok(lab.log.lines.some((l) => /^sealpost\/smtp: 4A\d+: Sender requested REQUIRETLS, but REQUIRETLS support was not offered by host mx\.noadv\.example\[127\.0\.0\.3\]$/.test(l)));

  const s = outcomeOf(await reqtls('l@oppstarttls.example'));
  assert.deepEqual([s.status, s.dsn], ['bounced', '5.7.30']);
  assert.equal(s.reason, 'Sender requested REQUIRETLS, but TLS service was not offered by host mx.plain.example[127.0.0.5]');
  assert.equal(s.tls, 'may?/!requiretls:nostarttls');
  assert.ok(lab.log.lines.some((l) => /^sealpost\/smtp: 4A\d+: Sender requested REQUIRETLS, but my configured TLS security level 'may' disables certificate matching\. The last attempted server was mx\.plain\.example$/.test(l)));

  const off = await deliveryLab(ZONE, rx[0]!.port, { mydomain: 'client.test', smtp_tls_security_level: 'may', requiretls_enable: 'no' });
  try {
    const plain = byHost('127.0.0.5');
    const n = plain.messages.length;
    const d = outcomeOf(await off.deliver({ recipients: ['m@plain.example'], nexthops: ['plain.example'], requireTls: true }));
    assert.deepEqual([d.status, d.tls], ['sent', 'may:none']);
    assert.equal(plain.messages.length, n + 1);
  } finally {
    await off.close();
  }
});
