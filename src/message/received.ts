/**
 * received.ts — the `Received:` header the SMTP listener prepends, in Postfix
 * smtpd's shape, and Postfix's mail_date() timestamp.
 *
 *     Received: from helo.example (unknown [192.0.2.1])
 *     	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
 *     	(No client certificate requested)
 *     	by mx.example.org (sealpost) with ESMTPS id 3F2A81C0B4
 *     	for <bob@example.org>; Sat, 28 Nov 2026 12:00:00 +0000 (UTC)
 *
 * Contract: pure; returns the header as lines joined by `\n` (the caller
 * encodes CRLF). The TLS lines appear only when smtpd_tls_received_header =
 * yes and the session is encrypted; `for <rcpt>` only when the message has
 * exactly one recipient (Postfix smtpd's rule: it would otherwise leak Bcc
 * recipients), then the date goes after a `;` on the `by` line's successor.
 * IPv6 addresses are shown as `IPv6:addr` (Postfix's rfc_addr).
 *
 * Not here: client certificate verification details (we request none),
 * key-exchange/signature details of Postfix 3.4+ (Node does not expose all of
 * them in a stable way; see docs/intake.md).
 */

export interface ReceivedInfo {
  /** HELO/EHLO argument; the client name is used when none was given. */
  readonly helo: string | undefined;
  readonly clientName: string;
  readonly clientAddress: string;
  readonly myhostname: string;
  readonly mailName: string;
  /** SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA (RFC 3848). */
  readonly protocol: string;
  /** The client sent MAIL FROM with SMTPUTF8: RFC 6531 §3.7.3 `UTF8SMTP` with-keywords. */
  readonly smtputf8?: boolean;
  readonly queueId: string;
  /** The recipients (internal form); `for <...>` is shown only for exactly one. */
  readonly recipients: readonly string[];
  readonly date: Date;
  readonly tls?: { readonly protocol: string; readonly cipher: string; readonly bits: number; readonly algBits: number };
  /** smtpd_sasl_authenticated_header = yes and the client authenticated. */
  readonly authenticatedSender?: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Zone abbreviations by UTC offset: Intl is slow (about 0.2 ms a call) and the name changes only with the offset. */
const zoneNames = new Map<number, string>();
let zoneFormat: Intl.DateTimeFormat | undefined;

function zoneName(d: Date, utc: boolean): string {
  if (utc) return 'UTC';
  const offset = d.getTimezoneOffset();
  let name = zoneNames.get(offset);
  if (name === undefined) {
    zoneFormat ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
    name = zoneFormat.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? 'UTC';
    zoneNames.set(offset, name);
  }
  return name;
}

/**
 * mail_date(3): `%a, %e %b %Y %H:%M:%S +hhmm (%Z)` — RFC 5322 §3.3 date-time,
 * day of month space-padded as Postfix prints it. `utc` forces UTC (tests).
 */
export function mailDate(d: Date, utc = false): string {
  // One formatting per second: local-time getters cost a time-zone lookup each.
  const second = Math.floor(d.getTime() / 1000);
  if (lastDate && lastDate.second === second && lastDate.utc === utc) return lastDate.text;
  const text = formatMailDate(d, utc);
  lastDate = { second, utc, text };
  return text;
}

let lastDate: { second: number; utc: boolean; text: string } | undefined;

function formatMailDate(d: Date, utc: boolean): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const off = utc ? 0 : -d.getTimezoneOffset();
  const get = utc
    ? { day: d.getUTCDay(), date: d.getUTCDate(), mon: d.getUTCMonth(), y: d.getUTCFullYear(), h: d.getUTCHours(), m: d.getUTCMinutes(), s: d.getUTCSeconds() }
    : { day: d.getDay(), date: d.getDate(), mon: d.getMonth(), y: d.getFullYear(), h: d.getHours(), m: d.getMinutes(), s: d.getSeconds() };
  const sign = off < 0 ? '-' : '+';
  const abs = Math.abs(off);
  const zone = `${sign}${two(Math.floor(abs / 60))}${two(abs % 60)}`;
  return `${DAYS[get.day]}, ${String(get.date).padStart(2, ' ')} ${MONTHS[get.mon]} ${get.y} ${two(get.h)}:${two(get.m)}:${two(get.s)} ${zone} (${zoneName(d, utc)})`;
}

/** Postfix's rfc_addr: IPv6 literals carry the `IPv6:` tag. */
export function rfcAddress(address: string): string {
  return address.includes(':') ? `IPv6:${address}` : address;
}

/** RFC 5321 quoting of a local part that needs it (quote_822_local, simplified). */
function quoteRecipient(address: string): string {
  const at = address.lastIndexOf('@');
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? '' : address.slice(at);
  if (local === '' || /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\x80-\uffff-]+$/.test(local)) return address;
  return `"${local.replace(/(["\\])/g, '\\$1')}"${domain}`;
}

/**
 * The `with` keyword. smtpd.c: "UTF8SMTP" when the client asked for SMTPUTF8, with RFC
 * 3848's `S` (TLS) and `A` (AUTH) appended only for ESMTP — RFC 6531 §3.7.3's UTF8SMTP,
 * UTF8SMTPS, UTF8SMTPA and UTF8SMTPSA.
 */
export function withKeyword(protocol: string, smtputf8: boolean): string {
  return smtputf8 && protocol.startsWith('ESMTP') ? `UTF8SMTP${protocol.slice(5)}` : protocol;
}

/** The whole header, lines joined by `\n`, without a final line end. */
export function formatReceived(r: ReceivedInfo, utc = false): string {
  const lines = [`Received: from ${r.helo ?? r.clientName} (${r.clientName} [${rfcAddress(r.clientAddress)}])`];
  if (r.tls) {
    lines.push(`\t(using ${r.tls.protocol} with cipher ${r.tls.cipher} (${r.tls.bits}/${r.tls.algBits} bits))`);
    lines.push('\t(No client certificate requested)');
  }
  if (r.authenticatedSender !== undefined) lines.push(`\t(Authenticated sender: ${r.authenticatedSender})`);
  const date = mailDate(r.date, utc);
  const protocol = withKeyword(r.protocol, r.smtputf8 ?? false);
  if (r.recipients.length === 1) {
    lines.push(`\tby ${r.myhostname} (${r.mailName}) with ${protocol} id ${r.queueId}`);
    lines.push(`\tfor <${quoteRecipient(r.recipients[0]!)}>; ${date}`);
  } else {
    lines.push(`\tby ${r.myhostname} (${r.mailName}) with ${protocol} id ${r.queueId};`);
    lines.push(`\t${date}`);
  }
  return lines.join('\n');
}
