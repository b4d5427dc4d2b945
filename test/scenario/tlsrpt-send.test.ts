/**
 * tlsrpt-send — a day of TLS sessions for an MTA-STS domain, a DANE domain and
 * a domain without `_smtp._tls`, then `sealpost tlsrpt send --now` against a
 * running daemon: exactly one report per domain per rua — report mail that the
 * daemon's own queue delivers to a receiver, and one HTTPS POST verified
 * against smtp_tls_CAfile — whose gzip'd JSON validates against RFC 8460's
 * fields and whose counts are the sessions recorded; no report for the domain
 * without a record; a second `send --now` sends nothing more.
 *
 * The sessions are published on a real EventBus into the store on disk before
 * the daemon starts (MTA-STS and DANE records the delivery path cannot make yet
 * on this branch); sessions from real deliveries: tlsrpt-daemon.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { EventBus } from '../../src/reports/events.ts';
import { TlsRptStore } from '../../src/reports/tlsrpt/store.ts';
import { makePki } from '../harness/pki.ts';
import { startReceiver } from '../harness/smtp-receiver.ts';
import { qmgrLab } from './qmgr-lab.ts';
import { danePolicy, noPolicy, session, stsPolicy } from '../unit/reports/tlsrpt/fixtures/records.ts';
import { validateReport } from '../unit/reports/tlsrpt/fixtures/rfc8460-schema.ts';

interface Post { readonly url: string; readonly type: string; readonly body: Buffer }

async function httpsReceiver(pki: ReturnType<typeof makePki>, status = 200): Promise<{ server: Server; port: number; posts: Post[] }> {
  const posts: Post[] = [];
  const server = createServer({ key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ url: req.url ?? '', type: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, posts };
}

function attachment(mail: string): { fileName: string; report: Record<string, any> } {
  const m = /Content-Type: application\/tlsrpt\+gzip\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename="([^"]+)"\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n\r\n--/.exec(mail);
  assert.ok(m, `no tlsrpt attachment in:\n${mail}`);
  return { fileName: m[1]!, report: JSON.parse(gunzipSync(Buffer.from(m[2]!.replace(/\r\n/g, ''), 'base64')).toString('utf8')) };
}

test('send --now: one report per domain per rua, by mail through the queue and by HTTPS; none without _smtp._tls', { timeout: 90_000 }, async () => {
  const receiver = await startReceiver({ host: '127.0.0.2' });
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const pkiDir = mkdtempSync(join(tmpdir(), 'sealpost-tlsrpt-pki-'));
  const pki = makePki(pkiDir, ['localhost', '127.0.0.1']);
  const web = await httpsReceiver(pki);
  const lab = await qmgrLab({
    receiverPort: receiver.port,
    zone: {
      '_smtp._tls.sts.example': { TXT: [`v=TLSRPTv1; rua=mailto:sts-reports@rua.example,https://127.0.0.1:${web.port}/tlsrpt/v1`] },
      '_smtp._tls.dane.example': { TXT: ['v=TLSRPTv1; rua=mailto:dane-reports@rua.example'] },
      'rua.example': { MX: [[10, 'mx.rua.example']] },
      'mx.rua.example': { A: ['127.0.0.2'] },
    },
    mainCf: [`smtp_tls_CAfile = ${pki.caCert}`, 'sealpost_tlsrpt_organization = Sealpost Test Org', 'sealpost_tlsrpt_contact = tls-contact@sealpost.test'],
  });
  try {
    const store = await TlsRptStore.open({ dir: join(lab.dir, 'data', 'tlsrpt') });
    const bus = new EventBus();
    bus.subscribe(store.subscriber());
    const publish = (r: ReturnType<typeof session>, times: number) => {
      for (let i = 0; i < times; i++) bus.publish({ kind: 'tls-session', queueId: 'Q', record: r });
    };
    publish(session(), 5);
    publish(session({ failure: 'certificate-expired' }), 2);
    publish(session({ failure: 'sts-policy-invalid', mx: 'mx9.other.example', ip: '127.0.0.9' }), 1);
    publish(session({ policy: danePolicy() }), 3);
    publish(session({ policy: danePolicy(), failure: 'tlsa-invalid' }), 2);
    publish(session({ policy: danePolicy(), failure: 'dnssec-invalid', ip: '127.0.0.8' }), 1);
    publish(session({ policy: noPolicy() }), 4);
    publish(session({ reused: true }), 3); // reused connections are not new sessions
    bus.publish({ kind: 'tls-session', queueId: 'R', record: session(), tlsRptExempt: true }); // a report's own delivery
    await store.close();

    await lab.start();
    const listing = await lab.cli(['tlsrpt', '--json']);
    assert.equal(listing.code, 0, listing.stderr);
    const [open] = JSON.parse(listing.stdout).periods;
    assert.equal(open.state, 'open');
    assert.deepEqual(open.domains.map((d: any) => [d.domain, d.sessions, d.successful, d.failed, d.failures]), [
      ['dane.example', 6, 3, 3, { 'dnssec-invalid': 1, 'tlsa-invalid': 2 }],
      ['plain.example', 4, 4, 0, {}],
      ['sts.example', 8, 5, 3, { 'certificate-expired': 2, 'sts-policy-invalid': 1 }],
    ]);

    const sent = await lab.cli(['tlsrpt', 'send', '--now']);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^tlsrpt: plain\.example: no TLSRPT policy \(_smtp\._tls\.plain\.example: NXDOMAIN\); no report$/m);
    assert.match(sent.stdout, /^tlsrpt: sts\.example: report \S+ posted to https:\/\/127\.0\.0\.1:\d+\/tlsrpt\/v1: status 200$/m);
    assert.match(sent.stdout, /^tlsrpt: dane\.example: report \S+ queued for dane-reports@rua\.example as [0-9A-F]+$/m);

    // The daemon's pickup and queue manager deliver the report mail.
    await receiver.waitForMessages(2, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(receiver.messages.length, 2);
    assert.equal(web.posts.length, 1);

    const byRcpt = new Map(receiver.messages.map((m) => [m.rcptTo[0]!, m]));
    const stsMail = byRcpt.get('sts-reports@rua.example')!.data.toString('utf8');
    const daneMail = byRcpt.get('dane-reports@rua.example')!.data.toString('utf8');
    assert.equal(byRcpt.get('sts-reports@rua.example')!.mailFrom, 'noreply-smtp-tls-reporting@sealpost.test');
    for (const [mail, domain] of [[stsMail, 'sts.example'], [daneMail, 'dane.example']] as const) {
      assert.match(mail, new RegExp(`\\r\\nSubject: Report Domain: ${domain.replace('.', '\\.')} Submitter: mx\\.sealpost\\.test Report-ID: <[^>]+>\\r\\n`));
      assert.match(mail, new RegExp(`\\r\\nTLS-Report-Domain: ${domain.replace('.', '\\.')}\\r\\nTLS-Report-Submitter: mx\\.sealpost\\.test\\r\\nTLS-Required: No\\r\\n`));
      assert.match(mail, /\r\nContent-Type: multipart\/report; report-type="tlsrpt";/);
    }

    const sts = attachment(stsMail);
    assert.match(sts.fileName, /^mx\.sealpost\.test!sts\.example!\d+!\d+\.json\.gz$/);
    assert.deepEqual(validateReport(sts.report), []);
    assert.equal(sts.report['organization-name'], 'Sealpost Test Org');
    assert.equal(sts.report['contact-info'], 'tls-contact@sealpost.test');
    assert.equal(sts.report.policies.length, 1);
    assert.equal(sts.report.policies[0].policy['policy-type'], 'sts');
    assert.deepEqual(sts.report.policies[0].summary, { 'total-successful-session-count': 5, 'total-failure-session-count': 3 });
    assert.deepEqual(sts.report.policies[0]['failure-details'].map((d: any) => [d['result-type'], d['receiving-ip'], d['failed-session-count']]), [
      ['certificate-expired', '127.0.0.9', 2],
      ['sts-policy-invalid', '127.0.0.9', 1],
    ]);
    // The HTTPS copy is the same report.
    assert.equal(web.posts[0]!.url, '/tlsrpt/v1');
    assert.equal(web.posts[0]!.type, 'application/tlsrpt+gzip');
    assert.deepEqual(JSON.parse(gunzipSync(web.posts[0]!.body).toString('utf8')), sts.report);

    const dane = attachment(daneMail).report;
    assert.deepEqual(validateReport(dane), []);
    assert.deepEqual(dane.policies[0].policy, { 'policy-type': 'tlsa', 'policy-string': ['3 1 1 ab12cd34'], 'policy-domain': 'dane.example' });
    assert.deepEqual(dane.policies[0].summary, { 'total-successful-session-count': 3, 'total-failure-session-count': 3 });

    // Everything was sent: the store is empty, and a second send sends nothing.
    const after = await lab.cli(['tlsrpt']);
    assert.equal(after.stdout, 'tlsrpt: no TLS sessions recorded\n');
    const again = await lab.cli(['tlsrpt', 'send', '--now']);
    assert.equal(again.stdout, 'tlsrpt: no TLS sessions recorded in the period; nothing to send\n');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(receiver.messages.length, 2);
    assert.equal(web.posts.length, 1);
  } finally {
    await lab.stop();
    await lab.cleanup();
    await receiver.close();
    web.server.close();
    rmSync(pkiDir, { recursive: true, force: true });
  }
});
