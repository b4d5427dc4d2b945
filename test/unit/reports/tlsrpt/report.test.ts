import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { Aggregate, classify } from '../../../../src/reports/tlsrpt/aggregate.ts';
import { buildReport, gzipReport, reportFileName, reportId, reportMail, rfc3339 } from '../../../../src/reports/tlsrpt/report.ts';
import { danePolicy, noPolicy, session } from './fixtures/records.ts';
import { validateReport } from './fixtures/rfc8460-schema.ts';

const DAY = Date.UTC(2026, 11, 1);
const meta = { organization: 'Example Sender', contact: 'postmaster@sender.example', submitter: 'mx.sender.example', start: DAY, end: DAY + 86_400_000 };

function aggregate(...records: ReturnType<typeof session>[]): Aggregate {
  const a = new Aggregate();
  for (const r of records) {
    const c = classify(r);
    if (c.counts) a.add(c.policy, c.failure);
  }
  return a;
}

test('the report: RFC 8460 §4.4 member names, the RFC\'s date-range shape, sorted and deterministic', () => {
  const a = aggregate(session(), session(), session({ failure: 'certificate-expired' }), session({ failure: 'certificate-expired' }), session({ failure: 'starttls-not-supported', ip: '127.0.0.3', mx: 'mx2.sts.example' }));
  const r = buildReport(meta, 'sts.example', a.forDomain('sts.example'));
  assert.deepEqual(validateReport(r), []);
  assert.deepEqual(r['date-range'], { 'start-datetime': '2026-12-01T00:00:00Z', 'end-datetime': '2026-12-01T23:59:59Z' });
  assert.equal(r['report-id'], reportId(meta, 'sts.example'));
  const [p] = r.policies as Array<Record<string, any>>;
  assert.deepEqual(p!.policy, { 'policy-type': 'sts', 'policy-string': ['version: STSv1', 'mode: enforce', 'mx: *.sts.example', 'max_age: 86400'], 'policy-domain': 'sts.example', 'mx-host': ['*.sts.example'] });
  assert.deepEqual(p!.summary, { 'total-successful-session-count': 2, 'total-failure-session-count': 3 });
  assert.deepEqual(p!['failure-details'], [
    { 'result-type': 'certificate-expired', 'sending-mta-ip': '127.0.0.1', 'receiving-mx-hostname': 'mx1.sts.example', 'receiving-mx-helo': 'mx1.sts.example', 'receiving-ip': '127.0.0.9', 'failed-session-count': 2, 'failure-reason-code': 'Server certificate not verified' },
    { 'result-type': 'starttls-not-supported', 'sending-mta-ip': '127.0.0.1', 'receiving-mx-hostname': 'mx2.sts.example', 'receiving-mx-helo': 'mx2.sts.example', 'receiving-ip': '127.0.0.3', 'failed-session-count': 1, 'failure-reason-code': 'TLS is required, but was not offered by host mx2.sts.example[127.0.0.3]' },
  ]);
  assert.equal(JSON.stringify(buildReport(meta, 'sts.example', a.forDomain('sts.example'))), JSON.stringify(r));
  assert.deepEqual(JSON.parse(gunzipSync(gzipReport(r)).toString('utf8')), r);
});

test('a no-policy-found policy has no policy-string or mx-host; successes only: no failure-details', () => {
  const a = aggregate(session({ policy: noPolicy() }), session({ policy: danePolicy() }));
  const r = buildReport(meta, 'plain.example', a.forDomain('plain.example'));
  assert.deepEqual(validateReport(r), []);
  assert.deepEqual((r.policies as Array<Record<string, unknown>>)[0], {
    policy: { 'policy-type': 'no-policy-found', 'policy-domain': 'plain.example' },
    summary: { 'total-successful-session-count': 1, 'total-failure-session-count': 0 },
  });
  const d = buildReport(meta, 'dane.example', a.forDomain('dane.example'));
  assert.deepEqual((d.policies as Array<Record<string, any>>)[0]!.policy, { 'policy-type': 'tlsa', 'policy-string': ['3 1 1 ab12cd34'], 'policy-domain': 'dane.example' });
});

test('the validator rejects what the RFC does not allow', () => {
  assert.match(validateReport({ 'organization-name': 'x', 'date-range': {}, 'contact-info': 'c', 'report-id': 'r', policies: [] }).join('\n'), /missing "start-datetime"/);
  const bad = { 'organization-name': 'x', 'date-range': { 'start-datetime': '2026-12-01', 'end-datetime': '2026-12-01T23:59:59Z' }, 'contact-info': 'c', 'report-id': 'r', policies: [{ policy: { 'policy-type': 'sts', 'policy-domain': 'd', extra: 1 }, summary: { 'total-successful-session-count': -1, 'total-failure-session-count': 1 }, 'failure-details': [{ 'result-type': 'nope', 'failed-session-count': 2 }] }] };
  const errs = validateReport(bad).join('\n');
  for (const re of [/not RFC 3339/, /unknown member "extra"/, /total-successful-session-count" is not a count/, /bad result-type/, /do not add up/]) assert.match(errs, re);
});

test('file name (RFC 8460 §5.1) and report mail (§5.3)', () => {
  assert.equal(reportFileName(meta, 'sts.example'), `mx.sender.example!sts.example!${DAY / 1000}!${DAY / 1000 + 86399}.json.gz`);
  assert.equal(rfc3339(DAY + 1500), '2026-12-01T00:00:01Z');
  const gz = gzipReport({ a: 1 });
  const mail = reportMail({ from: 'noreply@sender.example', to: ['tlsrpt@sts.example'], domain: 'sts.example', submitter: 'mx.sender.example', reportId: 'ID1@mx.sender.example', fileName: 'f.json.gz', gzipped: gz, date: 'Tue, 1 Dec 2026 00:00:00 +0000', messageId: '<m@x>', start: DAY, end: DAY + 86_400_000 }).toString('utf8');
  assert.match(mail, /\r\nSubject: Report Domain: sts\.example Submitter: mx\.sender\.example Report-ID: <ID1@mx\.sender\.example>\r\n/);
  assert.match(mail, /\r\nTLS-Report-Domain: sts\.example\r\nTLS-Report-Submitter: mx\.sender\.example\r\nTLS-Required: No\r\n/);
  assert.match(mail, /\r\nContent-Type: multipart\/report; report-type="tlsrpt";\r\n\tboundary="(tlsrpt-[0-9a-f]+)"\r\n/);
  assert.match(mail, /\r\nContent-Type: application\/tlsrpt\+gzip\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename="f\.json\.gz"\r\n\r\n/);
  const b64 = /filename="f\.json\.gz"\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n\r\n--/.exec(mail)![1]!;
  assert.deepEqual(Buffer.from(b64.replace(/\r\n/g, ''), 'base64'), gz);
});
