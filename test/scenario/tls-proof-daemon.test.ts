/**
 * tls-proof-daemon.test.ts — `sealpost tls proof` for one message that a
 * running daemon delivered to three destinations under three different
 * policies, each recipient's evidence matching what its receiver saw:
 *
 *   a@secure.test   a policy-table entry `secure` (CA-verified, name checked)
 *   b@dflt.test     the main.cf default `may` (TLS, certificate not checked by name)
 *   c@THIRD         see THIRD below: today a second policy-table entry at level
 *                   `fingerprint`; once MTA-STS (or DANE) runs in the daemon, the
 *                   lead switches THIRD to an MTA-STS destination (a THIRD object
 *                   with its zone, receiver and expectations; nothing else changes)
 *
 * Each receiver presents its own certificate; the proof must name the
 * certificate's SHA-256 fingerprint (computed here from the receiver's PEM
 * file), the level, the source, the protocol and cipher, and the name it
 * matched — as text and as JSON, found by queue ID and by Message-ID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolicySourceName } from '../../src/delivery/outcome.ts';
import type { Zone } from '../harness/dns-server.ts';
import { makeCa, mintCert, type TestPki } from '../harness/pki.ts';
import type { ReceiverOptions } from '../harness/smtp-receiver.ts';
import { fingerprintOf, observeLab } from './observe-lab.ts';

/** The third destination: how it is built and what its proof must say. */
interface ThirdSource {
  readonly domain: string;
  readonly zone: Zone;
  /** Its receiver on 127.0.0.6, and the certificate file whose fingerprint the proof must show. */
  readonly receiver: (pki: TestPki, dir: string) => { options: ReceiverOptions; certFile: string };
  /** Policy-table entries (`{domain = level ...}`) it needs. */
  readonly policyEntries: (certFile: string) => string[];
  readonly mainCf: readonly string[];
  readonly expect: { readonly source: PolicySourceName; readonly level: string; readonly trust: string; readonly matched?: RegExp };
}

/** A second policy-table entry, at level `fingerprint` (a self-signed certificate, pinned). */
const TABLE_FINGERPRINT: ThirdSource = {
  domain: 'pinned.test',
  zone: { 'pinned.test': { MX: [[10, 'mx.pinned.test']] }, 'mx.pinned.test': { A: ['127.0.0.6'] } },
  receiver: (_pki, dir) => {
    const cert = mintCert(dir, 'pinned', { names: ['mx.pinned.test'] });
    return { options: { host: '127.0.0.6', name: 'mx.pinned.test', tls: { key: cert.key, cert: cert.cert } }, certFile: cert.cert };
  },
  policyEntries: (certFile) => [`{pinned.test = fingerprint match=${fingerprintOf(certFile)}}`],
  mainCf: [],
  expect: { source: 'table', level: 'fingerprint', trust: 'Verified' },
};

const THIRD: ThirdSource = TABLE_FINGERPRINT;

test('tls proof of a message to three destinations under three policies shows each receiver\'s certificate', { timeout: 180_000 }, async () => {
  let dfltCert = '';
  let thirdCert = '';
  const o = await observeLab({
    extraReceivers: (pki) => {
      const dir = pki.caCert.replace(/\/[^/]+$/, '');
      // dflt.test: a certificate of another CA (not in smtp_tls_CAfile): opportunistic TLS, Untrusted.
      const other = makeCa(dir, 'other-ca');
      const d = mintCert(dir, 'dflt', { names: ['mx.dflt.test'], issuer: other });
      dfltCert = d.cert;
      const third = THIRD.receiver(pki, dir);
      thirdCert = third.certFile;
      return [{ host: '127.0.0.5', name: 'mx.dflt.test', tls: { key: d.key, cert: d.cert } }, third.options];
    },
    extraZone: { 'dflt.test': { MX: [[10, 'mx.dflt.test']] }, 'mx.dflt.test': { A: ['127.0.0.5'] }, ...THIRD.zone },
    policyEntries: () => THIRD.policyEntries(thirdCert),
    mainCf: THIRD.mainCf,
  });
  try {
    await o.lab.start();
    const rcpts = ['a@secure.test', 'b@dflt.test', `c@${THIRD.domain}`];
    const messageId = 'proof-1@origin.test';
    const queueId = await o.lab.submit('sender@origin.test', rcpts, `Message-ID: <${messageId}>\r\nSubject: the bank\r\n\r\nhello\r\n`);
    await o.lab.waitLog(new RegExp(`${queueId}: removed`), 1, 60_000);
    const [dflt, third] = o.extra as [typeof o.secure, typeof o.secure];
    for (const r of [o.secure, dflt, third]) {
      assert.equal(r.messages.length, 1);
      assert.ok(r.messages[0]!.tls, `${r.host} received over TLS`);
      assert.match(r.messages[0]!.data.toString(), new RegExp(`Message-ID: <${messageId}>`));
    }
    // The proof store appends every 2 s: ask until the three outcomes are there.
    let text = '';
    for (let i = 0; i < 200; i++) {
      const r = await o.tls('proof', [queueId]);
      text = r.stdout;
      if (r.code === 0 && (text.match(/^ {2}sent /gm) ?? []).length === 3) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const blocks = recipientBlocks(text);
    assert.deepEqual(Object.keys(blocks).sort(), rcpts.sort());
    assert.match(text, new RegExp(`^queue ID ${queueId}, Message-ID <${messageId}>, arrived `));

    const a = blocks['a@secure.test']!;
    assert.match(a, /relay=mx\.secure\.test\[127\.0\.0\.2\]:\d+, dsn=2\.0\.0/);
    assert.match(a, /policy: {6}level secure, source table: policy table inline:.*"secure\.test {2}secure"/);
    assert.match(a, new RegExp(`tls: {9}Verified ${o.secure.messages[0]!.tlsProtocol!.replace('.', '\\.')} with cipher \\S+`));
    assert.match(a, new RegExp(`certificate: sha256 ${o.secureFingerprint}\n`));
    assert.match(a, /matched: {5}name mx\.secure\.test/);

    const b = blocks['b@dflt.test']!;
    assert.match(b, /relay=mx\.dflt\.test\[127\.0\.0\.5\]:\d+/);
    assert.match(b, /policy: {6}level may, source default: main\.cf default \(smtp_tls_security_level\)/);
    assert.match(b, /tls: {9}Untrusted TLSv1\.[23] with cipher/);
    assert.match(b, new RegExp(`certificate: sha256 ${fingerprintOf(dfltCert)}\n`));
    assert.doesNotMatch(b, /matched:/);

    const c = blocks[`c@${THIRD.domain}`]!;
    assert.match(c, new RegExp(`policy: {6}level ${THIRD.expect.level}, source ${THIRD.expect.source}`));
    assert.match(c, new RegExp(`tls: {9}${THIRD.expect.trust} TLSv1\\.[23]`));
    assert.match(c, new RegExp(`certificate: sha256 ${fingerprintOf(thirdCert)}\n`));
    if (THIRD.expect.matched) assert.match(c, THIRD.expect.matched);

    // JSON, found by the Message-ID: the same evidence, field by field.
    const j = await o.tls('proof', ['--json', `<${messageId}>`]);
    assert.equal(j.code, 0, j.stderr);
    const [m] = (JSON.parse(j.stdout) as { messages: Array<{ queueId: string; messageId: string; outcomes: Array<{ recipient: string; status: string; session: { policy: { source: string; level: string }; tls: { trust: string; peer: { certSha256: string } } } }> }> }).messages;
    assert.equal(m!.queueId, queueId);
    assert.equal(m!.messageId, messageId);
    const by = Object.fromEntries(m!.outcomes.map((x) => [x.recipient, [x.status, x.session.policy.source, x.session.policy.level, x.session.tls.trust, x.session.tls.peer.certSha256]]));
    assert.deepEqual(by, {
      'a@secure.test': ['sent', 'table', 'secure', 'Verified', o.secureFingerprint],
      'b@dflt.test': ['sent', 'default', 'may', 'Untrusted', fingerprintOf(dfltCert)],
      [`c@${THIRD.domain}`]: ['sent', THIRD.expect.source, THIRD.expect.level, THIRD.expect.trust, fingerprintOf(thirdCert)],
    });
  } finally {
    await o.cleanup();
  }
});

/** The text of each `recipient <...>:` block. */
function recipientBlocks(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/\n(?=recipient <)/).slice(1)) out[/^recipient <([^>]+)>/.exec(part)![1]!] = part;
  return out;
}
