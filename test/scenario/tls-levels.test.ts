/**
 * tls-levels.test.ts — every security level against one receiver per server
 * posture (no STARTTLS, self-signed, CA-valid, wrong name, expired, wildcard,
 * anonymous ciphers only, STARTTLS refused with 454), through the real SMTP
 * agent and TLS engine on loopback. Each case asserts the outcome, the DSN and
 * Postfix's reason text, the tls= field, the trust word of the summary line,
 * and that no plaintext message reached a server when the level forbids it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tempDir } from '../harness/cli.ts';
import { makePki, type TestPki } from '../harness/pki.ts';
import { deliveryLab, outcomeOf, startReceivers, type Receiver, type ReceiverOptions } from '../harness/smtp-receiver.ts';

const POSTURES = ['nostarttls', 'selfsigned', 'valid', 'wrongname', 'expired', 'wild', 'anon', 'refuse', 'domainonly'] as const;
type Posture = (typeof POSTURES)[number];
/** Destinations: one per posture, plus foreignmx.example whose MX is mx.valid.example (MX in another domain). */
type Dest = Posture | 'foreignmx';
const DESTS: readonly Dest[] = [...POSTURES, 'foreignmx'];
const receiverOf = (d: Dest): Posture => (d === 'foreignmx' ? 'valid' : d);

const ZONE: Record<string, { MX?: Array<[number, string]>; A?: string[] }> = {};
POSTURES.forEach((p, i) => {
  ZONE[`${p}.example`] = { MX: [[10, `mx.${p}.example`]] };
  ZONE[`mx.${p}.example`] = { A: [`127.0.0.${i + 2}`] };
});
ZONE['foreignmx.example'] = { MX: [[10, 'mx.valid.example']] };

let pki: TestPki;
let cleanup: () => void;
let rx: Receiver[];
const byPosture = new Map<Posture, Receiver>();
let wildCa = '';
let domainCa = '';

before(async () => {
  const t = tempDir('sealpost-tls-levels-');
  cleanup = t.cleanup;
  pki = makePki(t.dir, ['mx.valid.example', 'mx.expired.example', 'mx.refuse.example', 'mx.anon.example']);
  // The harness signs for one name list per CA: the wildcard certificate gets its own CA (trusted too, below).
  mkdirSync(`${t.dir}/wild`);
  const wild = makePki(`${t.dir}/wild`, ['*.wild.example']);
  mkdirSync(`${t.dir}/domain`);
  // A certificate naming only the recipient domain, not its MX host.
  const domain = makePki(`${t.dir}/domain`, ['domainonly.example']);
  domainCa = domain.caCert;
  wildCa = wild.caCert;
  const opts: Record<Posture, ReceiverOptions> = {
    nostarttls: {},
    selfsigned: { tls: { key: pki.selfSigned.key, cert: pki.selfSigned.cert } },
    valid: { tls: { key: pki.server.key, cert: pki.server.cert } },
    wrongname: { tls: { key: pki.wrongName.key, cert: pki.wrongName.cert } },
    expired: { tls: { key: pki.expired.key, cert: pki.expired.cert } },
    wild: { tls: { key: wild.server.key, cert: wild.server.cert } },
    anon: { tls: { key: pki.server.key, cert: pki.server.cert }, anonymousOnly: true },
    refuse: { tls: { key: pki.server.key, cert: pki.server.cert }, starttls: 'refuse-454' },
    domainonly: { tls: { key: domain.server.key, cert: domain.server.cert } },
  };
  rx = await startReceivers(POSTURES.map((p) => ({ ...opts[p], name: `mx.${p}.example` })));
  POSTURES.forEach((p, i) => byPosture.set(p, rx[i]!));
});
after(async () => {
  await Promise.all(rx.map((r) => r.close()));
  cleanup();
});

interface Expect {
  readonly status: 'sent' | 'deferred';
  readonly trust?: 'Anonymous' | 'Untrusted' | 'Trusted' | 'Verified';
  readonly reason?: string;
  readonly dsn?: string;
}

const NOT_OFFERED = (p: Posture): Expect => ({
  status: 'deferred',
  dsn: '4.7.4',
  reason: `TLS is required, but was not offered by host mx.${p}.example[127.0.0.${POSTURES.indexOf(p) + 2}]`,
});
const NOT_VERIFIED: Expect = { status: 'deferred', dsn: '4.7.5', reason: 'Server certificate not verified' };
const REFUSED = (p: Posture): Expect => ({
  status: 'deferred',
  dsn: '4.7.0',
  reason: `TLS is required, but host mx.${p}.example[127.0.0.${POSTURES.indexOf(p) + 2}] refused to start TLS: 454 4.7.0 TLS not available due to local problem`,
});

async function runLevel(level: string, expected: Record<Dest, Expect>, extra: Record<string, string> = {}): Promise<void> {
  const port = rx[0]!.port;
  const lab = await deliveryLab(ZONE, port, {
    smtp_tls_security_level: level,
    smtp_tls_loglevel: '1',
    smtp_tls_CAfile: '$config_directory/ca.pem',
    ...extra,
  });
  // Both test CAs are trusted.
  writeFileSync(`${lab.dir}/ca.pem`, readFileSync(pki.caCert, 'utf8') + readFileSync(wildCa, 'utf8') + readFileSync(domainCa, 'utf8'));
  try {
    for (const p of DESTS) {
      const r = byPosture.get(receiverOf(p))!;
      const before = r.messages.length;
      const o = outcomeOf(await lab.deliver({ recipients: [`user@${p}.example`], nexthops: [`${p}.example`] }));
      const e = expected[p];
      const what = `${level} × ${p}: ${JSON.stringify(o)}\n${lab.log.lines.join('\n')}`;
      assert.equal(o.status, e.status, what);
      if (e.reason !== undefined) assert.equal(o.reason, e.reason, what);
      if (e.dsn !== undefined) assert.equal(o.dsn, e.dsn, what);
      if (e.status === 'sent') {
        assert.equal(r.messages.length, before + 1, what);
      } else {
        // Fail closed: the server never received the message in the clear (or at all).
        assert.equal(r.messages.length, before, what);
      }
      if (e.trust) {
        const mx = `mx.${receiverOf(p)}.example`;
        const line = [...lab.log.lines].reverse().find((l) => l.includes(`TLS connection established to ${mx}[`));
        assert.ok(line?.startsWith(`sealpost/smtp: ${e.trust} TLS connection established to ${mx}[`), `${what}\nsummary: ${line}`);
      }
    }
  } finally {
    await lab.close();
  }
}

test('may: everything is delivered; the trust word says what the certificate was worth', async () => {
  await runLevel('may', {
    nostarttls: { status: 'sent' },
    selfsigned: { status: 'sent', trust: 'Untrusted' },
    valid: { status: 'sent', trust: 'Trusted' },
    wrongname: { status: 'sent', trust: 'Trusted' },
    expired: { status: 'sent', trust: 'Untrusted' },
    wild: { status: 'sent', trust: 'Trusted' },
    anon: { status: 'sent', trust: 'Anonymous' },
    refuse: { status: 'sent' },
    domainonly: { status: 'sent', trust: 'Trusted' },
    foreignmx: { status: 'sent', trust: 'Trusted' },
  });
});

test('encrypt: no STARTTLS or a 454 defers; any certificate (or none) is accepted', async () => {
  await runLevel('encrypt', {
    nostarttls: NOT_OFFERED('nostarttls'),
    selfsigned: { status: 'sent', trust: 'Untrusted' },
    valid: { status: 'sent', trust: 'Trusted' },
    wrongname: { status: 'sent', trust: 'Trusted' },
    expired: { status: 'sent', trust: 'Untrusted' },
    wild: { status: 'sent', trust: 'Trusted' },
    anon: { status: 'sent', trust: 'Anonymous' },
    refuse: REFUSED('refuse'),
    domainonly: { status: 'sent', trust: 'Trusted' },
    foreignmx: { status: 'sent', trust: 'Trusted' },
  });
});

test('verify: CA trust and the MX host name (wildcard as the leftmost label) are required', async () => {
  await runLevel('verify', {
    nostarttls: NOT_OFFERED('nostarttls'),
    selfsigned: NOT_VERIFIED,
    valid: { status: 'sent', trust: 'Verified' },
    wrongname: NOT_VERIFIED,
    expired: NOT_VERIFIED,
    wild: { status: 'sent', trust: 'Verified' },
    anon: { status: 'deferred', dsn: '4.7.5' },
    refuse: REFUSED('refuse'),
    // The certificate names the recipient domain, not the MX host: verify's `hostname` fails.
    domainonly: NOT_VERIFIED,
    // verify trusts the (unauthenticated) MX name: an MX in another domain is fine.
    foreignmx: { status: 'sent', trust: 'Verified' },
  });
});

test('secure: names from the next hop (nexthop, dot-nexthop)', async () => {
  await runLevel('secure', {
    nostarttls: NOT_OFFERED('nostarttls'),
    selfsigned: NOT_VERIFIED,
    valid: { status: 'sent', trust: 'Verified' },
    wrongname: NOT_VERIFIED,
    expired: NOT_VERIFIED,
    wild: { status: 'sent', trust: 'Verified' },
    anon: { status: 'deferred', dsn: '4.7.5' },
    refuse: REFUSED('refuse'),
    domainonly: { status: 'sent', trust: 'Verified' },
    // secure resists DNS forgery: an MX outside the next-hop domain does not match.
    foreignmx: NOT_VERIFIED,
  });
});

test('fingerprint: only the pinned certificate is delivered to, expired or self-signed does not matter', async () => {
  const fp = createHash('sha256').update(new X509Certificate(readFileSync(pki.selfSigned.cert)).raw).digest('hex');
  const fpExpired = createHash('sha256').update(new X509Certificate(readFileSync(pki.expired.cert)).raw).digest('hex').toUpperCase().match(/../g)!.join(':');
  await runLevel(
    'fingerprint',
    {
      nostarttls: NOT_OFFERED('nostarttls'),
      selfsigned: { status: 'sent', trust: 'Verified' },
      valid: NOT_VERIFIED,
      wrongname: NOT_VERIFIED,
      expired: { status: 'sent', trust: 'Verified' },
      wild: NOT_VERIFIED,
      anon: { status: 'deferred', dsn: '4.7.5' },
      refuse: REFUSED('refuse'),
      domainonly: NOT_VERIFIED,
      foreignmx: NOT_VERIFIED,
    },
    { smtp_tls_fingerprint_cert_match: `${fp}, ${fpExpired}` },
  );
});
