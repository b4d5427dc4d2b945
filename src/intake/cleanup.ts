/**
 * cleanup.ts — turn an accepted SMTP transaction into a queue file, the way
 * Postfix's cleanup(8) does for mail from smtpd(8): envelope normalisation,
 * the Received: header, missing headers, then the durable spool write.
 *
 * Contract:
 * - `buildEnvelope()` (pure): `$myorigin` is appended to a bare local part in
 *   the sender and recipients (append_at_myorigin); duplicate recipients are
 *   dropped, keeping the first — the duplicate key is the address compared
 *   case-insensitively plus its DSN NOTIFY and ORCPT (Postfix's cleanup
 *   duplicate filter keys on the DSN attributes too, so a duplicate with
 *   other DSN parameters is kept, not merged). DSN, SMTPUTF8, BODY and
 *   REQUIRETLS values are recorded; `TLS-Required: No` (RFC 8689 §5) in the
 *   header sets `tlsRequiredNo` when tls_required_enable = yes; a
 *   `Require-TLS-ESMTP: yes` header sets REQUIRETLS, and REQUIRETLS mail
 *   without one gets it appended (requireTlsEsmtpHeader; Postfix 3.11).
 * - `buildContent()` (pure): prepends `Received:` (received.ts); when the
 *   client may have headers added (always_add_missing_headers, or the client
 *   matches local_header_rewrite_clients — postconf(5): Postfix ≥ 2.6 adds
 *   missing headers only then) appends the missing `From:` (the sender, or
 *   MAILER-DAEMON for `<>`), `Date:` and `Message-Id: <YYYYMMDDhhmmss.ID@myhostname>`.
 * - `queueMessage()` writes through the spool (queue-write.ts) and returns the
 *   queue ID and the message-id for the `ID: message-id=<...>` log line
 *   (`<>` when the message has none and none was added, as cleanup logs it).
 *   A QueueWriteError propagates: the listener answers 452 4.3.1.
 *
 * Not here: header_checks, canonical/virtual rewriting, hop counting,
 * milters; the SMTP replies.
 */
import type { ClientInfo, DsnNotify, EnvelopeInput, RecipientInput } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';
import { findHeader, parseHeaders, withHeaders } from '../message/headers.ts';
import { formatReceived, mailDate } from '../message/received.ts';
import { requireTlsEsmtp } from '../message/require-tls-esmtp.ts';
import type { ReceivedInfo } from '../message/received.ts';
import { writeWithQueueId } from './queue-write.ts';

export interface AcceptedRecipient {
  readonly address: string;
  readonly notify?: readonly DsnNotify[] | undefined;
  /** RFC 3461 ORCPT as `type;address` (decoded address). */
  readonly orcpt?: string | undefined;
}

export interface Transaction {
  readonly sender: string;
  readonly recipients: readonly AcceptedRecipient[];
  readonly envid?: string | undefined;
  readonly ret?: 'FULL' | 'HDRS' | undefined;
  readonly smtputf8: boolean;
  readonly eightBitMime: boolean;
  readonly requireTls: boolean;
  readonly arrival: Date;
  readonly client: ClientInfo;
}

export interface CleanupSettings {
  readonly myorigin: string;
  readonly myhostname: string;
  readonly mailName: string;
  readonly tlsRequiredEnable: boolean;
  /** The client may get missing headers added (always_add_missing_headers or local_header_rewrite_clients). */
  readonly addMissingHeaders: boolean;
  /** requiretls_enable && requiretls_esmtp_header: honour and add `Require-TLS-ESMTP: yes` (message/require-tls-esmtp.ts). */
  readonly requireTlsEsmtpHeader?: boolean;
}

export interface ContentContext {
  readonly received: Omit<ReceivedInfo, 'queueId' | 'recipients' | 'date'>;
}

/** append_at_myorigin: `user` → `user@$myorigin`; `<>` stays empty. */
export function qualify(address: string, myorigin: string): string {
  if (address === '' || address.includes('@')) return address;
  return `${address}@${myorigin}`;
}

function duplicateKey(r: AcceptedRecipient): string {
  return `${r.address.toLowerCase()}\n${(r.notify ?? []).join(',')}\n${r.orcpt ?? ''}`;
}

/** Recipients with $myorigin appended and duplicates removed (first wins). */
export function normaliseRecipients(list: readonly AcceptedRecipient[], myorigin: string): RecipientInput[] {
  const seen = new Set<string>();
  const out: RecipientInput[] = [];
  for (const r of list) {
    const q = { ...r, address: qualify(r.address, myorigin) };
    const key = duplicateKey(q);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({
      address: q.address,
      origAddress: r.address,
      ...(q.orcpt !== undefined ? { orcpt: q.orcpt } : {}),
      ...(q.notify !== undefined ? { notify: q.notify } : {}),
    });
  }
  return out;
}

/** RFC 8689 §5: a `TLS-Required: No` header field (value compared case-insensitively). */
export function hasTlsRequiredNo(data: Buffer): boolean {
  const f = findHeader(parseHeaders(data), 'TLS-Required');
  return f !== undefined && f.value.trim().toLowerCase() === 'no';
}

export function buildEnvelope(t: Transaction, data: Buffer, s: CleanupSettings): EnvelopeInput {
  return {
    arrivalTime: t.arrival.getTime(),
    sender: qualify(t.sender, s.myorigin),
    recipients: normaliseRecipients(t.recipients, s.myorigin),
    ...(t.envid !== undefined ? { envid: t.envid } : {}),
    ...(t.ret !== undefined ? { ret: t.ret } : {}),
    smtputf8: t.smtputf8,
    eightBitMime: t.eightBitMime,
    requireTls: requireTlsEsmtp(data, t.requireTls, s.requireTlsEsmtpHeader === true).requireTls,
    tlsRequiredNo: s.tlsRequiredEnable && hasTlsRequiredNo(data),
    client: t.client,
  };
}

function stamp(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}

/** The headers cleanup adds when they are missing (empty when the client may not get any). */
export function missingHeaders(data: Buffer, env: EnvelopeInput, queueId: string, date: Date, s: CleanupSettings): { lines: string[]; messageId: string | undefined } {
  const block = parseHeaders(data);
  const existing = findHeader(block, 'Message-ID');
  if (!s.addMissingHeaders) return { lines: [], messageId: existing?.value.trim() };
  const lines: string[] = [];
  if (!findHeader(block, 'From')) lines.push(`From: ${env.sender === '' ? 'MAILER-DAEMON' : env.sender}`);
  if (!findHeader(block, 'Date')) lines.push(`Date: ${mailDate(date)}`);
  let messageId = existing?.value.trim();
  if (!existing) {
    messageId = `<${stamp(date)}.${queueId}@${s.myhostname}>`;
    lines.push(`Message-Id: ${messageId}`);
  }
  return { lines, messageId };
}

/** The queued content: Received: first, then the client's bytes, then any missing headers. */
export function buildContent(data: Buffer, env: EnvelopeInput, t: Transaction, ctx: ContentContext, s: CleanupSettings, queueId: string): { content: Buffer; messageId: string | undefined } {
  const received = formatReceived({ ...ctx.received, queueId, recipients: env.recipients.map((r) => r.address), date: t.arrival });
  const missing = missingHeaders(data, env, queueId, t.arrival, s);
  const reqtls = requireTlsEsmtp(data, t.requireTls, s.requireTlsEsmtpHeader === true).append;
  return { content: withHeaders(data, [received], [...missing.lines, ...reqtls]), messageId: missing.messageId };
}

/** Write the message durably; returns the queue ID and the message-id to log. */
export async function queueMessage(spool: Spool, t: Transaction, data: Buffer, ctx: ContentContext, s: CleanupSettings): Promise<{ queueId: string; messageId: string }> {
  const env = buildEnvelope(t, data, s);
  let messageId: string | undefined;
  const queueId = await writeWithQueueId(spool, env, (id) => {
    const built = buildContent(data, env, t, ctx, s, id);
    messageId = built.messageId;
    return built.content;
  });
  return { queueId, messageId: messageId ?? '<>' };
}
