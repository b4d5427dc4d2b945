/**
 * tls-proof-daemon.test.ts — `sealpost tls proof` and `sealpost tls report`
 * for one message that a running daemon delivered to three destinations
 * under three policies from three different sources, each recipient's
 * evidence matching what its receiver saw:
 *
 *   a@secure.test   source `table`: the smtp_tls_policy_maps entry `secure`
 *                   (CA-verified, name checked)
 *   b@dflt.test     source `default`: the main.cf level `may` (TLS, a
 *                   certificate of another CA, not checked)
 *   c@sts.test      source `mta-sts`: the domain publishes `_mta-sts` and an
 *                   `enforce` policy listing mx.sts.test, served over HTTPS by
 *                   the lab policy host (port 443 of a loopback address,
 *                   certificate of the test CA); main.cf says only `may`, so the
 *                   policy raises it to `secure` against the MX name
 *
 * Each receiver presents its own certificate; the proof must name the
 * certificate's SHA-256 fingerprint (computed here from the receiver's PEM
 * file), the level, the source, the protocol and cipher, and the name it
 * matched — as text and as JSON, found by queue ID and by Message-ID. The
 * tls report (read after the daemon stopped: its posture store appends at
 * stop) counts each destination under its source: `table`, none (untrusted
 * TLS is not verified), `mta-sts`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeCa, mintCert, type CertAuthority, type TestPki } from '../harness/pki.ts';
import { fingerprintOf, observeLab } from './observe-lab.ts';
import { stsPolicy } from './stsdane-lab.ts';

const STS_ID = '20260101T000000';
const STS_POLICY = stsPolicy('enforce', ['mx.sts.test']);

test('tls proof and tls report of a message to three destinations under three policy sources show each receiver\'s certificate', { timeout: 180_000 }, async () => {
  let dfltCert = '';
  let stsCert = '';
  const o = await observeLab({
    extraReceivers: (pki) => {
      const dir = pkiDir(pki);
      // dflt.test: a certificate of another CA (not in smtp_tls_CAfile): opportunistic TLS, Untrusted.
      const other = makeCa(dir, 'other-ca');
      const d = mintCert(dir, 'dflt', { names: ['mx.dflt.test'], issuer: other });
      dfltCert = d.cert;
      // sts.test: a certificate of the test CA (smtp_tls_CAfile) for the MX name, as MTA-STS demands.
      const s = mintCert(dir, 'mx-sts', { names: ['mx.sts.test'], issuer: labCa(pki) });
      stsCert = s.cert;
      return [
        { host: '127.0.0.5', name: 'mx.dflt.test', tls: { key: d.key, cert: d.cert } },
        { host: '127.0.0.6', name: 'mx.sts.test', tls: { key: s.key, cert: s.cert } },
      ];
    },
    stsSites: (pki) => ({
      'mta-sts.sts.test': { cert: mintCert(pkiDir(pki), 'mta-sts', { names: ['mta-sts.sts.test'], issuer: labCa(pki) }), policy: STS_POLICY },
    }),
    extraZone: (stsAddress) => ({
      'dflt.test': { MX: [[10, 'mx.dflt.test']] },
      'mx.dflt.test': { A: ['127.0.0.5'] },
      'sts.test': { MX: [[10, 'mx.sts.test']] },
      'mx.sts.test': { A: ['127.0.0.6'] },
      '_mta-sts.sts.test': { TXT: [`v=STSv1; id=${STS_ID};`] },
      'mta-sts.sts.test': { A: [stsAddress] },
    }),
  });
  try {
    await o.lab.start();
    const rcpts = ['a@secure.test', 'b@dflt.test', 'c@sts.test'];
    const messageId = 'proof-1@origin.test';
    const queueId = await o.lab.submit('sender@origin.test', rcpts, `Message-ID: <${messageId}>\r\nSubject: the bank\r\n\r\nhello\r\n`);
    await o.lab.waitLog(new RegExp(`${queueId}: removed`), 1, 60_000);
    const [dflt, stsMx] = o.extra as [typeof o.secure, typeof o.secure];
    for (const r of [o.secure, dflt, stsMx]) {
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

    // The policy came from MTA-STS: fetched once from the policy host, named with its id and mode,
    // its mx patterns listed; `enforce` raised main.cf's `may` to `secure` (the mail log says
    // tls=secure too), and the certificate was checked against the MX name (SNI = that name).
    const c = blocks['c@sts.test']!;
    assert.match(c, /relay=mx\.sts\.test\[127\.0\.0\.6\]:\d+, dsn=2\.0\.0/);
    assert.match(c, new RegExp(`policy: {6}level secure, source mta-sts: MTA-STS policy of sts\\.test \\(id ${STS_ID}, mode enforce\\)\n {17}mx: mx\\.sts\\.test\n`), text);
    assert.match(c, new RegExp(`tls: {9}Verified ${stsMx.messages[0]!.tlsProtocol!.replace('.', '\\.')} with cipher \\S+`));
    assert.match(c, new RegExp(`certificate: sha256 ${fingerprintOf(stsCert)}\n`));
    assert.match(c, /matched: {5}name mx\.sts\.test/);
    assert.equal(stsMx.messages[0]!.sni, 'mx.sts.test');
    assert.deepEqual(o.sts!.requests, [{ sni: 'mta-sts.sts.test', host: 'mta-sts.sts.test', path: '/.well-known/mta-sts.txt' }]);

    // JSON, found by the Message-ID: the same evidence, field by field.
    const j = await o.tls('proof', ['--json', `<${messageId}>`]);
    assert.equal(j.code, 0, j.stderr);
    type JsonPolicy = { source: string; level: string; configuredLevel: string; type: string; domain: string; strings: string[]; mxHostPatterns: string[]; stsMode?: string; stsId?: string };
    const [m] = (JSON.parse(j.stdout) as { messages: Array<{ queueId: string; messageId: string; outcomes: Array<{ recipient: string; status: string; session: { policy: JsonPolicy; tls: { trust: string; peer: { certSha256: string } } } }> }> }).messages;
    assert.equal(m!.queueId, queueId);
    assert.equal(m!.messageId, messageId);
    const by = Object.fromEntries(m!.outcomes.map((x) => [x.recipient, [x.status, x.session.policy.source, x.session.policy.level, x.session.tls.trust, x.session.tls.peer.certSha256]]));
    assert.deepEqual(by, {
      'a@secure.test': ['sent', 'table', 'secure', 'Verified', o.secureFingerprint],
      'b@dflt.test': ['sent', 'default', 'may', 'Untrusted', fingerprintOf(dfltCert)],
      'c@sts.test': ['sent', 'mta-sts', 'secure', 'Verified', fingerprintOf(stsCert)],
    });
    // ... and the MTA-STS policy itself, as TLS-RPT reports it (RFC 8460 policy-type, policy-string, mx-host).
    const sts = m!.outcomes.find((x) => x.recipient === 'c@sts.test')!.session.policy;
    assert.deepEqual(
      [sts.type, sts.domain, sts.strings, sts.mxHostPatterns, sts.stsMode, sts.stsId, sts.configuredLevel],
      ['sts', 'sts.test', STS_POLICY.trimEnd().split('\n'), ['mx.sts.test'], 'enforce', STS_ID, 'secure'],
    );

    // The tls report names the same sources: read after the daemon stopped (the posture store appends at stop).
    await o.lab.stop();
    const report = await o.tls('report', ['--since', '2h']);
    assert.equal(report.code, 0, report.stderr);
    const lines = report.stdout.split('\n');
    assert.deepEqual(lines[2]!.split(/\s{2,}/), ['DESTINATION', 'MSGS', 'RCPTS', 'OUTCOMES', 'VERIFIED', 'TRUSTED', 'UNTRUSTED', 'ANON', 'PLAIN', 'TLS-DEFER', 'TLS-BOUNCE', 'OTHER-FAIL', 'VERIFIED VIA']);
    const via = Object.fromEntries(lines.slice(3).filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s{2,}/)).map((r) => [r[0], [r[4], r[6], r[12]]]));
    assert.deepEqual(via, {
      TOTAL: ['66.7%', '33.3%', 'table 1, mta-sts 1'],
      'dflt.test': ['0.0%', '100.0%', '-'],
      'secure.test': ['100.0%', '0.0%', 'table 1'],
      'sts.test': ['100.0%', '0.0%', 'mta-sts 1'],
    }, report.stdout);
    const rj = await o.tls('report', ['--since', '2h', '--json']);
    assert.equal(rj.code, 0, rj.stderr);
    const doc = JSON.parse(rj.stdout) as { destinations: Array<{ destination: string; counts: Record<string, number> }> };
    const counted = Object.fromEntries(doc.destinations.map((r) => [r.destination, Object.fromEntries(Object.entries(r.counts).filter(([, n]) => n > 0))]));
    assert.deepEqual(counted, {
      'secure.test': { 'verified-table': 1 },
      'dflt.test': { untrusted: 1 },
      'sts.test': { 'verified-mta-sts': 1 },
    });
  } finally {
    await o.cleanup();
  }
});

/** The directory of the lab's PKI files. */
function pkiDir(pki: TestPki): string {
  return pki.caCert.replace(/\/[^/]+$/, '');
}

/** The lab's CA (smtp_tls_CAfile) as an issuer for more certificates. */
function labCa(pki: TestPki): CertAuthority {
  return { cert: pki.caCert, key: pki.caKey, name: 'sealpost test CA' };
}

/** The text of each `recipient <...>:` block. */
function recipientBlocks(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(/\n(?=recipient <)/).slice(1)) out[/^recipient <([^>]+)>/.exec(part)![1]!] = part;
  return out;
}
