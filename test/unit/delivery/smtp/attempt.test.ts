/**
 * attempt.test.ts — one delivery attempt of the SMTP client driven over
 * injected socket pairs (no listener, no DNS server: the socket factory hands
 * the client one end, the test scripts the other; the resolver is a table):
 * a reset in the middle of DATA, a 421 after RCPT, and a TLS handshake failure
 * that moves on to the next MX — each asserting the recipient outcomes and
 * the session records (delivery/outcome.ts) that leave the attempt.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { loadConfig } from '../../../../src/config/load.ts';
import type { AddressRecord, LookupResult, MxRecord, Resolver } from '../../../../src/delivery/dns/resolver.ts';
import { createSmtpAgent } from '../../../../src/delivery/smtp/agent.ts';
import type { SocketFactory } from '../../../../src/delivery/smtp/connect.ts';
import { formatFingerprint } from '../../../../src/delivery/tls/verify.ts';
import { createTlsEngine } from '../../../../src/delivery/tls/engine.ts';
import type { DeliveryResult } from '../../../../src/delivery/types.ts';
import { TableSet } from '../../../../src/maps/registry.ts';
import { memoryMailLog } from '../../../../src/reports/maillog.ts';
import { tempDir } from '../../../harness/cli.ts';
import { makePki, type TestPki } from '../../../harness/pki.ts';
import { ScriptedPeer, socketPair } from '../../../harness/socket-pair.ts';
import { labRequest, outcomeOf } from '../../../harness/smtp-receiver.ts';

let tmp: { dir: string; cleanup: () => void };
let pki: TestPki;
before(() => {
  tmp = tempDir('sealpost-attempt-');
  pki = makePki(tmp.dir, ['mx1.example.com', 'mx2.example.com']);
});
after(() => tmp.cleanup());

/** MX 10 mx1 (192.0.2.1), MX 20 mx2 (192.0.2.2). */
const resolver: Resolver = {
  async mx(domain: string): Promise<LookupResult<MxRecord>> {
    if (domain !== 'example.com') return { status: 'notfound', reason: 'NXDOMAIN', authenticated: false };
    return { status: 'found', records: [{ preference: 10, exchange: 'mx1.example.com' }, { preference: 20, exchange: 'mx2.example.com' }], authenticated: false };
  },
  async addresses(host: string): Promise<LookupResult<AddressRecord>> {
    const a = { 'mx1.example.com': '192.0.2.1', 'mx2.example.com': '192.0.2.2' }[host];
    return a ? { status: 'found', records: [{ address: a, family: 4 }], authenticated: false } : { status: 'notfound', reason: 'NXDOMAIN', authenticated: false };
  },
};

type Script = (peer: ScriptedPeer) => Promise<void>;

let n = 0;
/** An agent whose connections go to the scripts by server address. */
function lab(mainCf: string, scripts: Record<string, Script>) {
  const dir = join(tmp.dir, `c${n++}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'main.cf'), `myhostname = client.test\ninet_protocols = ipv4\n${mainCf}`);
  // No smtpd listener: the default master.cf's port 25 on every interface would make a
  // scripted server at one of this machine's addresses "ourselves" (loop.ts).
  writeFileSync(join(dir, 'master.cf'), 'smtp unix - - n - - smtp\n');
  const config = loadConfig({ configDir: dir });
  const log = memoryMailLog();
  const tables = new TableSet({ baseDir: dir });
  const tls = createTlsEngine({ config, tables, log });
  const connects: string[] = [];
  const running: Promise<void>[] = [];
  const openSocket: SocketFactory = async (server) => {
    connects.push(`${server.address}:${server.port}`);
    const script = scripts[server.address];
    if (!script) return { ok: false, error: 'Connection refused' };
    const [near, far] = await socketPair();
    const peer = new ScriptedPeer(far);
    running.push(script(peer).catch(() => undefined).finally(() => far.destroy()));
    return { ok: true, socket: near };
  };
  const agent = createSmtpAgent({ config, resolver, tls, tables, log, service: 'smtp', openSocket });
  return {
    log, connects,
    deliver: (m: Parameters<typeof labRequest>[1]) => agent.deliver(labRequest(dir, m)),
    close: async () => {
      await agent.close();
      await Promise.all(running);
      await tables.close();
    },
  };
}

/** Greeting and EHLO without STARTTLS (and without PIPELINING: one command, one reply). */
async function hello(peer: ScriptedPeer, name = 'mx.test', extra: string[] = []): Promise<void> {
  peer.send(`220 ${name} ESMTP`);
  await peer.expect('EHLO', [`250-${name}`, ...extra.map((e) => `250-${e}`), '250 8BITMIME'].join('\r\n'));
}

/** Greeting, EHLO, then MAIL and one RCPT accepted. */
async function accepted(peer: ScriptedPeer): Promise<void> {
  await hello(peer);
  await peer.expect('MAIL', '250 2.1.0 Ok');
  await peer.expect('RCPT', '250 2.1.5 Ok');
}

test('a reset in the middle of DATA: deferred 4.4.2 (never bounced), the destination throttled, the session recorded', async () => {
  const l = lab('smtp_tls_security_level = may\n', {
    '192.0.2.1': async (peer) => {
      await accepted(peer);
      await peer.expect('DATA', '354 End data with <CR><LF>.<CR><LF>');
      await peer.someData();
      peer.reset();
    },
  });
  try {
    const body = `Subject: big\r\n\r\n${'x'.repeat(998)}\r\n`.repeat(200);
    const r: DeliveryResult = await l.deliver({ recipients: ['rcpt@example.com'], nexthops: ['[192.0.2.1]'], content: body });
    const o = outcomeOf(r);
    assert.equal(o.status, 'deferred');
    assert.equal(o.dsn, '4.4.2');
    assert.match(o.reason, /^lost connection with 192\.0\.2\.1\[192\.0\.2\.1\] while (sending message body|sending end of data -- message may be sent more than once)$/);
    assert.equal(o.relay, '192.0.2.1[192.0.2.1]:25');
    assert.equal(o.tls, 'may:none');
    assert.equal(o.session, 0);
    assert.deepEqual(r.siteDeferral, { reason: o.reason, dsn: '4.4.2' });
    assert.equal(r.sessions?.length, 1);
    const s = r.sessions![0]!;
    assert.equal(s.nexthop, '[192.0.2.1]');
    assert.deepEqual(s.server, { hostname: '192.0.2.1', address: '192.0.2.1', port: 25, helo: 'mx.test' });
    assert.equal(s.sendingIp, '127.0.0.1');
    assert.deepEqual(s.result, { kind: 'plaintext', type: 'starttls-not-supported' });
    assert.equal(s.tls, undefined);
    assert.deepEqual([s.policy.source, s.policy.type, s.policy.domain, s.policy.level], ['default', 'no-policy-found', '192.0.2.1', 'may']);
    // The records are plain data: they survive a structured clone (the worker boundary) unchanged.
    assert.deepEqual(structuredClone(r), r);
  } finally {
    await l.close();
  }
});

test('421 after RCPT: that recipient is deferred with the server\'s words, the other one on the broken connection too', async () => {
  const l = lab('smtp_tls_security_level = may\n', {
    '192.0.2.1': async (peer) => {
      await accepted(peer);
      await peer.expect('RCPT', '421 4.7.0 mx.test Error: too many errors');
      peer.socket.end();
    },
  });
  try {
    const r = await l.deliver({ recipients: ['a@example.com', 'b@example.com'], nexthops: ['[192.0.2.1]'] });
    const b = outcomeOf(r, 1);
    assert.equal(b.status, 'deferred');
    assert.equal(b.dsn, '4.7.0');
    assert.equal(b.reason, 'host 192.0.2.1[192.0.2.1] said: 421 4.7.0 mx.test Error: too many errors (in reply to RCPT TO command)');
    assert.equal(b.remoteReply, '421 4.7.0 mx.test Error: too many errors');
    assert.equal(b.session, 0);
    const a = outcomeOf(r, 0);
    assert.equal(a.status, 'deferred');
    assert.equal(a.dsn, '4.4.2');
    assert.match(a.reason, /^lost connection with 192\.0\.2\.1\[192\.0\.2\.1\] while sending DATA command$/);
    assert.equal(a.session, 0);
    assert.ok(r.outcomes.every((o) => o.status !== 'bounced'));
    assert.equal(r.sessions?.length, 1);
    assert.deepEqual(r.sessions![0]!.result, { kind: 'plaintext', type: 'starttls-not-supported' });
  } finally {
    await l.close();
  }
});

test('a TLS handshake failure at encrypt moves on to the next MX: one failure record, one success record, sent', async () => {
  const context = createSecureContext({ key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert) });
  const l = lab(`smtp_tls_security_level = encrypt\nsmtp_tls_CAfile = ${pki.caCert}\n`, {
    '192.0.2.1': async (peer) => {
      await hello(peer, 'mx1.example.com', ['STARTTLS']);
      await peer.expect('STARTTLS', '220 2.0.0 Ready to start TLS');
      // The ClientHello arrives; the answer is not a TLS ServerHello.
      await peer.someData();
      peer.socket.write('this is not TLS\r\n');
      peer.socket.end();
    },
    '192.0.2.2': async (peer) => {
      await hello(peer, 'mx2.example.com', ['STARTTLS']);
      await peer.expect('STARTTLS', '220 2.0.0 Ready to start TLS');
      await peer.startTls(context);
      await peer.expect('EHLO', '250-mx2.example.com\r\n250 8BITMIME');
      await peer.expect('MAIL', '250 2.1.0 Ok');
      await peer.expect('RCPT', '250 2.1.5 Ok');
      await peer.expect('DATA', '354 go ahead');
      await peer.data();
      peer.send('250 2.0.0 Ok: queued as 4XYZ');
      await peer.expect('QUIT', '221 2.0.0 Bye');
    },
  });
  try {
    const r = await l.deliver({ recipients: ['rcpt@example.com'], nexthops: ['example.com'], queueId: '4ABCDEF0001' });
    const o = outcomeOf(r);
    assert.equal(o.status, 'sent', JSON.stringify(r));
    assert.equal(o.relay, 'mx2.example.com[192.0.2.2]:25');
    assert.equal(o.reason, '250 2.0.0 Ok: queued as 4XYZ');
    assert.equal(o.tls, 'encrypt');
    assert.equal(o.session, 1, l.log.lines.join('\n'));
    assert.equal(r.siteDeferral, undefined);
    assert.deepEqual(l.connects, ['192.0.2.1:25', '192.0.2.2:25']);
    // smtp_trouble.c: the soft failure that moved on to the next server is logged with the queue ID.
    assert.ok(l.log.lines.includes('sealpost/smtp: 4ABCDEF0001: Cannot start TLS: handshake failure'), l.log.lines.join('\n'));
    assert.equal(r.sessions?.length, 2);
    const [first, second] = r.sessions!;
    assert.deepEqual(first!.server, { hostname: 'mx1.example.com', address: '192.0.2.1', port: 25, helo: 'mx1.example.com' });
    assert.deepEqual(first!.result, { kind: 'failure', type: 'validation-failure', reason: 'Cannot start TLS: handshake failure', enforced: true });
    assert.equal(first!.tls, undefined);
    assert.equal(first!.policy.level, 'encrypt');
    assert.equal(second!.server.hostname, 'mx2.example.com');
    assert.deepEqual(second!.result, { kind: 'success' });
    assert.equal(second!.tls?.trust, 'Trusted');
    assert.equal(second!.tls?.reused, false);
    assert.match(second!.tls?.protocol ?? '', /^TLSv1\.[23]$/);
    const der = new X509Certificate(readFileSync(pki.server.cert)).raw;
    assert.equal(second!.tls?.peer?.certSha256, formatFingerprint(createHash('sha256').update(der).digest()));
    assert.equal(second!.tls?.peer?.subject, '/CN=mx1.example.com');
    assert.deepEqual(structuredClone(r), r);
  } finally {
    await l.close();
  }
});
