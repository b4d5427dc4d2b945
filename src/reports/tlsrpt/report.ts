/**
 * report.ts — RFC 8460 aggregate reports, pure: the JSON report of one policy
 * domain for one period (§4.4), its file name (§5.1), its gzip form (§5.2)
 * and the report mail (§5.3).
 *
 * Contract:
 * - `buildReport()` emits exactly the RFC 8460 §4.4 field names:
 *   organization-name, date-range {start-datetime, end-datetime} (RFC 3339,
 *   UTC, whole seconds; the end is the last second of the period, as in the
 *   RFC's example `2016-04-01T23:59:59Z`), contact-info, report-id, and one
 *   `policies[]` element per policy identity with policy {policy-type,
 *   policy-string, policy-domain, mx-host}, summary
 *   {total-successful-session-count, total-failure-session-count} and
 *   failure-details[] {result-type, sending-mta-ip, receiving-mx-hostname,
 *   receiving-mx-helo, receiving-ip, failed-session-count,
 *   failure-reason-code}. Optional members we have no value for are left
 *   out, never sent empty (policy-string and mx-host for `no-policy-found`,
 *   receiving-mx-helo when no greeting was read). `additional-information`
 *   is never set: sealpost has no URI to point at.
 * - Output is deterministic (policies and details sorted), so the same
 *   period gives byte-identical JSON.
 * - `reportId()` is stable for (period, domain, submitter) — a resend after a
 *   crash carries the same id, so a receiver can de-duplicate.
 * - `reportMail()` builds a multipart/report; report-type="tlsrpt" message
 *   with `TLS-Report-Domain`, `TLS-Report-Submitter`, RFC 8460 §5.3's
 *   Subject, and `TLS-Required: No` (RFC 8460 §3, RFC 8689 §5: a report must
 *   not be held back by the TLS policy it reports on); lines end in CRLF as
 *   the queue stores them.
 *
 * Not here: DKIM signing (RFC 8460 §5.3 says the report SHOULD be signed;
 * sealpost has no DKIM yet — docs/tls.md), counting (aggregate.ts), sending.
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { PolicyTotals } from './aggregate.ts';

export interface ReportMeta {
  readonly organization: string;
  readonly contact: string;
  /** The reporting entity's domain (TLS-Report-Submitter, the file name's sender). */
  readonly submitter: string;
  readonly start: number;
  readonly end: number;
}

/** RFC 3339 in UTC with whole seconds: `2016-04-01T00:00:00Z`. */
export function rfc3339(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** The last whole second inside a period that ends (exclusively) at `end`. */
function lastSecond(end: number): number {
  return Math.ceil(end / 1000) * 1000 - 1000;
}

export function reportId(meta: ReportMeta, domain: string): string {
  const h = createHash('sha256').update(`${meta.start}\n${meta.end}\n${domain}`).digest('hex').slice(0, 16);
  return `${rfc3339(meta.start).replace(/[-:]/g, '')}.${h}@${meta.submitter}`;
}

/** RFC 8460 §5.1: `sender!policy-domain!begin-timestamp!end-timestamp.json.gz`. */
export function reportFileName(meta: ReportMeta, domain: string): string {
  return `${meta.submitter}!${domain}!${Math.floor(meta.start / 1000)}!${Math.floor(lastSecond(meta.end) / 1000)}.json.gz`;
}

function policyJson(t: PolicyTotals): Record<string, unknown> {
  const policy: Record<string, unknown> = { 'policy-type': t.policy.type };
  if (t.policy.strings.length > 0) policy['policy-string'] = [...t.policy.strings];
  policy['policy-domain'] = t.policy.domain;
  if (t.policy.mxHosts.length > 0) policy['mx-host'] = [...t.policy.mxHosts];
  const details = [...t.details.values()]
    .map(({ detail: d, count }) => {
      const o: Record<string, unknown> = { 'result-type': d.resultType };
      if (d.sendingIp !== '') o['sending-mta-ip'] = d.sendingIp;
      if (d.mxHostname !== '') o['receiving-mx-hostname'] = d.mxHostname;
      if (d.mxHelo !== '') o['receiving-mx-helo'] = d.mxHelo;
      if (d.receivingIp !== '') o['receiving-ip'] = d.receivingIp;
      o['failed-session-count'] = count;
      if (d.reasonCode !== '') o['failure-reason-code'] = d.reasonCode;
      return o;
    })
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  const out: Record<string, unknown> = {
    policy,
    summary: { 'total-successful-session-count': t.success, 'total-failure-session-count': t.failure },
  };
  if (details.length > 0) out['failure-details'] = details;
  return out;
}

/** The RFC 8460 §4.4 report object for one policy domain. */
export function buildReport(meta: ReportMeta, domain: string, totals: readonly PolicyTotals[]): Record<string, unknown> {
  const policies = totals
    .filter((t) => t.policy.domain === domain)
    .map(policyJson)
    .sort((a, b) => JSON.stringify(a.policy).localeCompare(JSON.stringify(b.policy)));
  return {
    'organization-name': meta.organization,
    'date-range': { 'start-datetime': rfc3339(meta.start), 'end-datetime': rfc3339(lastSecond(meta.end)) },
    'contact-info': meta.contact,
    'report-id': reportId(meta, domain),
    policies,
  };
}

/** The report as it travels: gzip'd JSON (RFC 8460 §5.2, application/tlsrpt+gzip). */
export function gzipReport(report: Record<string, unknown>): Buffer {
  return gzipSync(Buffer.from(JSON.stringify(report), 'utf8'));
}

export interface MailOptions {
  readonly from: string;
  readonly to: readonly string[];
  readonly domain: string;
  readonly submitter: string;
  readonly reportId: string;
  readonly fileName: string;
  readonly gzipped: Buffer;
  readonly date: string;
  readonly messageId: string;
  readonly start: number;
  readonly end: number;
}

function base64Lines(b: Buffer): string[] {
  const text = b.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 76) out.push(text.slice(i, i + 76));
  return out;
}

/** RFC 8460 §5.3 report mail (header + body, CRLF line ends). */
export function reportMail(o: MailOptions): Buffer {
  const boundary = `tlsrpt-${createHash('sha256').update(o.reportId).digest('hex').slice(0, 24)}`;
  const lines = [
    `From: ${o.from}`,
    `To: ${o.to.join(', ')}`,
    `Date: ${o.date}`,
    `Subject: Report Domain: ${o.domain} Submitter: ${o.submitter} Report-ID: <${o.reportId}>`,
    `Message-ID: ${o.messageId}`,
    `TLS-Report-Domain: ${o.domain}`,
    `TLS-Report-Submitter: ${o.submitter}`,
    // RFC 8460 §3 / RFC 8689 §5: deliver the report even where TLS policy fails.
    'TLS-Required: No',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt";`,
    `\tboundary="${boundary}"`,
    '',
    'This is a MIME-formatted message.',
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    'Content-Transfer-Encoding: 7bit',
    '',
    `This is an aggregate TLS report (RFC 8460) from ${o.submitter}`,
    `for the policy domain ${o.domain},`,
    `covering ${rfc3339(o.start)} to ${rfc3339(lastSecond(o.end))}.`,
    '',
    `--${boundary}`,
    'Content-Type: application/tlsrpt+gzip',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment;`,
    `\tfilename="${o.fileName}"`,
    '',
    ...base64Lines(o.gzipped),
    '',
    `--${boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'), 'utf8');
}
