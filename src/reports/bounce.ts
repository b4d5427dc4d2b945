/**
 * bounce.ts — RFC 3464 delivery status notifications as Postfix's bounce(8)
 * writes them (bounce_notify_util.c and the built-in templates that
 * `postconf -t` prints): non-delivery ("failure"), delay warnings ("delay")
 * and success notices, plus the postmaster copies that notify_classes asks for.
 *
 * Contract:
 * - Pure: the caller passes the envelope, the original content, the
 *   recipients with their outcomes, the Config and the clock (`now`). The
 *   result is the envelope (sender, recipient) and the content with CRLF
 *   line ends, ready to be queued. Nothing is written here.
 * - Never a bounce of a bounce: the null sender (and the double-bounce
 *   address) get no notice from buildBounce(); postmasterCopy() sends the
 *   double bounce to $2bounce_notice_recipient instead when notify_classes
 *   has `bounce` or `2bounce` (bounce_notify_service.c).
 * - RFC 3461 NOTIFY: a failure notice lists recipients whose NOTIFY is absent
 *   or has FAILURE; a delay notice, absent or DELAY; a success notice only
 *   SUCCESS. NOTIFY=NEVER is never listed. No listed recipient → no notice.
 * - RFC 3461 RET: a failure notice returns the whole message (RET=FULL, the
 *   default) or its header (RET=HDRS); delay and success notices and
 *   postmaster copies return the header only. A message larger than
 *   bounce_size_limit is returned as header only (bounce_original()).
 * - Layout (bounce_notify_util.c): headers; "This is a MIME-encapsulated
 *   message."; part 1 text/plain (template text, then one line per
 *   recipient, wrapped at 79 columns with a 4-space indent, line_wrap(3));
 *   part 2 message/delivery-status (message/global-delivery-status when the
 *   message used SMTPUTF8); part 3 message/rfc822 or text/rfc822-headers
 *   starting with `Return-Path: <sender>`. Boundary
 *   `QUEUEID.UNIXTIME/$myhostname`.
 * - The headers cleanup(8) would add to Postfix's bounce are written here:
 *   the From: rewritten to `MAILER-DAEMON@$myorigin (Mail Delivery System)`,
 *   `Message-Id: <YYYYMMDDHHMMSS.QUEUEID@$myhostname>` (the original's queue
 *   ID: the notice has none yet) and `Date:`, appended after the other
 *   headers as cleanup appends missing ones; an unqualified notice recipient
 *   (`postmaster`) gets `@$myorigin` (append_at_myorigin). The MIME encoding
 *   is 8bit when smtputf8_enable is on (Postfix's default), as bounce(8) does.
 * - Vendor fields follow $mail_name as Postfix's do (`X-Postfix-Queue-ID` with
 *   Postfix's default): sealpost's mail_name gives `X-sealpost-Queue-ID`,
 *   `X-sealpost-Sender`, `Diagnostic-Code: X-sealpost; ...`.
 *
 * - RFC 8689 §5 (bounce.c edit_notification_properties, requiretls_enable =
 *   yes): the notice for a message sent with REQUIRETLS is redacted when
 *   requiretls_redact_dsn = yes — the original's header only (as RET=HDRS) and
 *   the notice itself without REQUIRETLS (`requireTls: false`), so that it can
 *   travel back over a path without REQUIRETLS; with requiretls_redact_dsn = no
 *   the notice keeps RET and asks for REQUIRETLS itself (`requireTls: true`).
 *   `TLS-Required: No` (tls_required_enable = yes) is copied into the notice's
 *   header (and `tlsRequiredNo: true` set) only when REQUIRETLS was not
 *   requested (bounce_notify_util.c bounce_header()).
 *
 * Not here: bounce_template_file (the built-in templates only), VERP,
 * Received: (the queue manager queues the notice as it is), queueing and
 * the `sender non-delivery notification: ID` log line (the queue manager).
 */
import type { Config } from '../config/types.ts';
import { headerSectionLength, type DsnNotify, type QueueEnvelope } from '../queue/queue-file.ts';
import { mailDate } from '../message/received.ts';
import { quoteAddress } from '../smtp/address.ts';
import { hasEightBit } from '../lib/bytes.ts';

export type BounceKind = 'failure' | 'delay' | 'success';

export interface BounceRecipient {
  readonly index: number;
  readonly address: string;
  readonly origAddress: string;
  /** RFC 3461 ORCPT as received (`rfc822;bob@example.com`). */
  readonly orcpt?: string;
  readonly notify?: readonly DsnNotify[];
  /** RFC 3463 status `5.1.1`. */
  readonly status: string;
  readonly action: 'failed' | 'delayed' | 'delivered';
  /** The reason as logged in `status=... (reason)`. */
  readonly reason: string;
  /** Remote host name, for `Remote-MTA: dns; host`. */
  readonly remoteMta?: string;
  /** The remote server's reply, for `Diagnostic-Code: smtp; reply`. */
  readonly remoteReply?: string;
}

export interface BounceParams {
  readonly kind: BounceKind;
  readonly queueId: string;
  readonly envelope: QueueEnvelope;
  /** The original message (header + body). */
  readonly content: Buffer;
  readonly recipients: readonly BounceRecipient[];
  readonly config: Config;
  /** ms since the epoch. */
  readonly now: number;
  /** Override the generated Message-Id (with angle brackets). */
  readonly messageId?: string;
}

export interface BounceMessage {
  readonly sender: string;
  readonly recipient: string;
  readonly content: Buffer;
  /**
   * The envelope flags the notice is queued with (post_mail_fopen() gets the original's
   * sendopts): SMTPUTF8 as the original message requested it, 8BITMIME when the notice itself
   * is 8bit (its `Content-Transfer-Encoding: 8bit`, which cleanup's
   * detect_8bit_encoding_header turns into the 8bit encoding attribute), and REQUIRETLS only
   * when the notice is not redacted (requiretls_redact_dsn = no; see noticeTlsProperties).
   */
  readonly smtputf8: boolean;
  readonly eightBitMime: boolean;
  readonly requireTls: boolean;
  /** The notice carries `TLS-Required: No` (queue it with tlsRequiredNo). */
  readonly tlsRequiredNo?: boolean;
}

/** RFC 8689 §5 / bounce.c edit_notification_properties(): how a notice treats REQUIRETLS and TLS-Required: No. */
export function noticeTlsProperties(envelope: QueueEnvelope, config: Config): { readonly redact: boolean; readonly requireTls: boolean; readonly tlsRequiredNo: boolean } {
  const reqtls = config.getBool('requiretls_enable') && envelope.requireTls;
  const redact = reqtls && config.getBool('requiretls_redact_dsn');
  return {
    redact,
    requireTls: reqtls && !redact,
    // REQUIRETLS wins over TLS-Required: No (it is not propagated then).
    tlsRequiredNo: config.getBool('tls_required_enable') && envelope.tlsRequiredNo && !reqtls,
  };
}

interface Template {
  readonly subject: string;
  readonly postmasterSubject?: string;
  /** Body lines; `$name` expanded by expandTemplate(). */
  readonly text: readonly string[];
}

const ASSISTANCE = [
  'For further assistance, please send mail to postmaster.',
  '',
  'If you do so, please include this problem report. You can',
  'delete your own text from the attached returned message.',
  '',
  '                   The mail system',
];

/** Postfix's built-in templates (bounce_templates.c; `postconf -t`). */
const TEMPLATES: Readonly<Record<BounceKind, Template>> = {
  failure: {
    subject: 'Undelivered Mail Returned to Sender',
    postmasterSubject: 'Postmaster Copy: Undelivered Mail',
    text: [
      'This is the mail system at host $myhostname.',
      '',
      "I'm sorry to have to inform you that your message could not",
      "be delivered to one or more recipients. It's attached below.",
      '',
      ...ASSISTANCE,
    ],
  },
  delay: {
    subject: 'Delayed Mail (still being retried)',
    postmasterSubject: 'Postmaster Warning: Delayed Mail',
    text: [
      'This is the mail system at host $myhostname.',
      '',
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      'Your message could not be delivered for more than $delay_warning_time_hours hour(s).',
      'It will be retried until it is $maximal_queue_lifetime_days day(s) old.',
      '',
      ...ASSISTANCE,
    ],
  },
  success: {
    subject: 'Successful Mail Delivery Report',
    text: [
      'This is the mail system at host $myhostname.',
      '',
      'Your message was successfully delivered to the destination(s)',
      'listed below. If the message was delivered to mailbox you will',
      'receive no further notifications. Otherwise you may still receive',
      'notifications of mail delivery errors from other systems.',
      '',
      '                   The mail system',
    ],
  },
};

/** bounce_notify_util.c: LENGTH and INDENT of bounce_print_wrap(). */
const WRAP_LENGTH = 79;
const WRAP_INDENT = 4;

/**
 * The notice to the sender, or undefined when none is due (null sender,
 * double-bounce sender, no recipient whose NOTIFY asks for this kind).
 */
export function buildBounce(p: BounceParams): (BounceMessage & { readonly sender: '' }) | undefined {
  const sender = p.envelope.sender;
  if (sender === '' || isDoubleBounce(sender, p.config)) return undefined;
  const listed = p.recipients.filter((r) => wantsNotice(p.kind, r.notify));
  if (listed.length === 0) return undefined;
  // bounce_notify_service.c: failure returns RET (default FULL); bounce_warn_service.c
  // and bounce_trace_service.c return headers only.
  const tls = noticeTlsProperties(p.envelope, p.config);
  const ret = p.kind === 'failure' && !tls.redact ? (p.envelope.ret ?? 'FULL') : 'HDRS';
  const content = compose(p, { to: sender, postmaster: false, ret, boilerplate: true, recipients: listed });
  return { sender: '', recipient: sender, content, ...noticeFlags(p, tls) };
}

/**
 * notify_classes: the postmaster copy of a failure notice (`bounce`, to
 * $bounce_notice_recipient, header of the original only) or a delay notice
 * (`delay`, to $delay_notice_recipient); for a failed null-sender message, the
 * double bounce (`bounce` or `2bounce`, to $2bounce_notice_recipient, whole
 * message). Sent from the double-bounce address; all recipients listed,
 * whatever their NOTIFY (DSN_NOTIFY_OVERRIDE).
 */
export function postmasterCopy(p: BounceParams): BounceMessage | undefined {
  if (p.kind === 'success' || p.recipients.length === 0) return undefined;
  const classes = p.config.getList('notify_classes').map((c) => c.toLowerCase());
  const sender = p.envelope.sender;
  const from = `${p.config.get('double_bounce_sender')}@${p.config.get('myhostname')}`;
  if (isDoubleBounce(sender, p.config)) return undefined; // "undeliverable postmaster notification discarded"
  let to: string;
  let ret: 'FULL' | 'HDRS' = 'HDRS';
  if (p.kind === 'delay') {
    if (!classes.includes('delay')) return undefined;
    to = p.config.get('delay_notice_recipient');
  } else if (sender === '') {
    if (!classes.includes('bounce') && !classes.includes('2bounce')) return undefined;
    to = p.config.get('2bounce_notice_recipient');
    ret = 'FULL';
  } else {
    if (!classes.includes('bounce')) return undefined;
    to = p.config.get('bounce_notice_recipient');
  }
  to = qualify(to, p.config);
  const tls = noticeTlsProperties(p.envelope, p.config);
  if (tls.redact) ret = 'HDRS';
  const content = compose(p, { to, postmaster: true, ret, boilerplate: false, recipients: p.recipients });
  return { sender: from, recipient: to, content, ...noticeFlags(p, tls) };
}

/**
 * cleanup(8) append_at_myorigin: an unqualified notice recipient (`postmaster`)
 * becomes `postmaster@$myorigin`, as Postfix's cleanup would rewrite it.
 */
function qualify(address: string, config: Config): string {
  if (address.includes('@') || !config.getBool('append_at_myorigin')) return address;
  return `${address}@${config.get('myorigin')}`;
}

/** RFC 3461 §4.1 NOTIFY filter (bounce_diagnostic_log's notify_filter; absent = compat). */
export function wantsNotice(kind: BounceKind, notify: readonly DsnNotify[] | undefined): boolean {
  if (notify === undefined || notify.length === 0) return kind !== 'success';
  if (notify.includes('NEVER')) return false;
  return notify.includes(kind === 'failure' ? 'FAILURE' : kind === 'delay' ? 'DELAY' : 'SUCCESS');
}

function isDoubleBounce(address: string, config: Config): boolean {
  const local = config.get('double_bounce_sender').toLowerCase();
  const a = address.toLowerCase();
  return a === local || a === `${local}@${config.get('myhostname').toLowerCase()}`;
}

interface ComposeOptions {
  readonly to: string;
  readonly postmaster: boolean;
  readonly ret: 'FULL' | 'HDRS';
  readonly boilerplate: boolean;
  readonly recipients: readonly BounceRecipient[];
}

/**
 * bounce_mail_alloc(): the notice is 8bit when smtputf8_enable (addresses and $myhostname
 * may be 8bit), else when the original was.
 */
function isEightBit(p: BounceParams): boolean {
  return p.config.getBool('smtputf8_enable') || p.envelope.eightBitMime || hasEightBit(p.content);
}

/**
 * post_mail_fopen(..., sendopts): SMTPUTF8_FLAG_REQUESTED → CLEANUP_FLAG_SMTPUTF8 follows the
 * original into the notice; REQUIRETLS only when the notice is not redacted, and `TLS-Required:
 * No` (copied into the notice's header by compose()) only without REQUIRETLS —
 * noticeTlsProperties() decides both (bounce.c edit_notification_properties()).
 */
function noticeFlags(p: BounceParams, tls: ReturnType<typeof noticeTlsProperties>): { smtputf8: boolean; eightBitMime: boolean; requireTls: boolean; tlsRequiredNo?: true } {
  return { smtputf8: p.envelope.smtputf8, eightBitMime: isEightBit(p), requireTls: tls.requireTls, ...(tls.tlsRequiredNo ? { tlsRequiredNo: true as const } : {}) };
}

function compose(p: BounceParams, o: ComposeOptions): Buffer {
  const { config, envelope } = p;
  const template = TEMPLATES[p.kind];
  const host = config.get('myhostname');
  const boundary = `${p.queueId}.${Math.floor(p.now / 1000)}/${host}`;
  const eightBit = isEightBit(p);
  const utf8 = envelope.smtputf8;
  const mailName = config.get('mail_name').replace(/[ \t\r\n()<>@,;:\\".[\]]/g, '-');
  const lines: string[] = [];
  const add = (...l: string[]) => lines.push(...l);
  const wrap = (text: string) => lines.push(...lineWrap(text, WRAP_LENGTH, WRAP_INDENT));

  // bounce_header(): the template headers, threading, RFC 3834, MIME.
  add(`From: MAILER-DAEMON@${config.get('myorigin')} (Mail Delivery System)`);
  add(`Subject: ${o.postmaster && template.postmasterSubject ? template.postmasterSubject : template.subject}`);
  add(`To: ${quoteAddress(o.to)}`);
  const origId = config.getBool('enable_threaded_bounces') ? messageIdOf(p.content) : undefined;
  if (origId) add(`References: ${origId}`, `In-Reply-To: ${origId}`);
  // bounce_header(): availability over confidentiality for a TLS-Required: No original.
  if (noticeTlsProperties(envelope, config).tlsRequiredNo) add('TLS-Required: no');
  // RFC 3834 §5: auto-replied to the sender, auto-generated for the postmaster.
  add(`Auto-Submitted: ${o.postmaster ? 'auto-generated' : 'auto-replied'}`);
  add('MIME-Version: 1.0', 'Content-Type: multipart/report; report-type=delivery-status;', `\tboundary="${boundary}"`);
  add(`Content-Transfer-Encoding: ${eightBit ? '8bit' : '7bit'}`);
  add(`Message-Id: ${p.messageId ?? defaultMessageId(p.now, p.queueId, host, o.postmaster)}`);
  add(`Date: ${mailDate(new Date(p.now))}`);
  add('', 'This is a MIME-encapsulated message.', '');

  // Part 1: the human-readable report.
  add(`--${boundary}`, 'Content-Description: Notification', `Content-Type: text/plain; charset=${eightBit ? 'utf-8' : 'us-ascii'}`);
  if (eightBit) add('Content-Transfer-Encoding: 8bit');
  add('');
  if (o.boilerplate) add(...expandTemplate(template.text, config));
  for (const r of o.recipients) {
    add('');
    const orig = r.origAddress !== '' && r.origAddress !== r.address ? ` (expanded from <${r.origAddress}>)` : '';
    wrap(`<${r.address}>${orig}: ${r.reason}`);
  }

  // Part 2: RFC 3464 §2.2 per-message fields, §2.3 per-recipient fields.
  add('', `--${boundary}`, 'Content-Description: Delivery report', `Content-Type: message/${utf8 ? 'global-' : ''}delivery-status`);
  if (eightBit && utf8) add('Content-Transfer-Encoding: 8bit');
  add('', `Reporting-MTA: dns; ${host}`);
  if (envelope.envid) add(`Original-Envelope-Id: ${envelope.envid}`);
  add(`X-${mailName}-Queue-ID: ${p.queueId}`);
  // bounce_mail_alloc(): the null sender is shown as MAILER-DAEMON (here and in Return-Path).
  const shownSender = quoteAddress(envelope.sender || 'MAILER-DAEMON');
  add(`X-${mailName}-Sender: ${addrType(envelope.sender, utf8)}; ${shownSender}`);
  add(`Arrival-Date: ${mailDate(new Date(envelope.arrivalTime))}`);
  for (const r of o.recipients) {
    add('', `Final-Recipient: ${addrType(r.address, utf8)}; ${r.address}`);
    // RFC 3464 §2.3.1; Postfix also reports the original address when no ORCPT was given.
    if (r.orcpt) add(`Original-Recipient: ${r.orcpt}`);
    else if (r.origAddress !== '' && r.origAddress !== r.address) add(`Original-Recipient: ${addrType(r.origAddress, utf8)}; ${r.origAddress}`);
    add(`Action: ${p.kind === 'failure' ? 'failed' : r.action}`, `Status: ${r.status}`);
    if (r.remoteMta) wrap(`Remote-MTA: dns; ${r.remoteMta}`);
    if (r.remoteReply) wrap(`Diagnostic-Code: smtp; ${r.remoteReply}`);
    else wrap(`Diagnostic-Code: X-${mailName}; ${r.reason}`);
    if (p.kind === 'delay') {
      add(`Will-Retry-Until: ${mailDate(new Date(envelope.arrivalTime + config.getTime('maximal_queue_lifetime') * 1000))}`);
    }
  }

  // Part 3: the original, whole or header only (bounce_original()).
  const limit = config.getInt('bounce_size_limit');
  const headersOnly = o.ret === 'HDRS' || (limit > 0 && (envelope.messageSize <= 0 || envelope.messageSize > limit));
  const undelivered = p.kind !== 'success' ? 'Undelivered ' : '';
  add('', `--${boundary}`, `Content-Description: ${undelivered}${headersOnly ? 'Message Headers' : 'Message'}`);
  if (utf8) add(`Content-Type: message/${headersOnly ? 'global-headers' : 'global'}`);
  else add(`Content-Type: ${headersOnly ? 'text/rfc822-headers' : 'message/rfc822'}`);
  if (eightBit) add('Content-Transfer-Encoding: 8bit');
  add('', `Return-Path: <${shownSender}>`);
  const head = Buffer.from(lines.join('\r\n') + '\r\n', 'utf8');
  const original = toCrlf(headersOnly ? headerSection(p.content) : p.content);
  const tail = Buffer.from(`${endsWithNewline(original) ? '' : '\r\n'}\r\n--${boundary}--\r\n`, 'utf8');
  return Buffer.concat([head, original, tail]);
}

function expandTemplate(text: readonly string[], config: Config): string[] {
  const vars: Record<string, () => string> = {
    myhostname: () => config.get('myhostname'),
    delay_warning_time_hours: () => String(Math.floor(config.getTime('delay_warning_time') / 3600)),
    maximal_queue_lifetime_days: () => String(Math.floor(config.getTime('maximal_queue_lifetime') / 86400)),
  };
  return text.map((line) => line.replace(/\$([a-z_]+)/g, (m, name: string) => (vars[name] ? vars[name]() : m)));
}

/** `utf-8` for a non-ASCII address when the message used SMTPUTF8 (RFC 6533), else `rfc822`. */
function addrType(address: string, smtputf8: boolean): string {
  return smtputf8 && /[^\x00-\x7f]/.test(address) ? 'utf-8' : 'rfc822';
}

function defaultMessageId(now: number, queueId: string, host: string, postmaster: boolean): string {
  const d = new Date(now);
  const two = (n: number) => String(n).padStart(2, '0');
  const stamp = `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
  return `<${stamp}.${queueId}${postmaster ? '.postmaster' : ''}@${host}>`;
}

/**
 * line_wrap(3): break at blanks so lines stay within `len` columns; lines
 * after the first get `indent` spaces; words longer than a line are not
 * broken; trailing blanks are dropped.
 */
export function lineWrap(text: string, len: number, indent: number): string[] {
  const out: string[] = [];
  const isBlank = (c: string | undefined) => c === ' ' || c === '\t';
  let curIndent = indent < 0 ? -indent : 0;
  let curLen = indent < 0 ? len + indent : len;
  const emit = (s: string) => out.push(' '.repeat(curIndent) + s.replace(/\s+$/, ''));
  let start = 0;
  for (let word: number | undefined = 0; word !== undefined; ) {
    let nextSpace: number = word;
    while (nextSpace < text.length && !isBlank(text[nextSpace])) nextSpace++;
    if (word > start && nextSpace - start > curLen) {
      emit(text.slice(start, word));
      let w = word;
      while (w < text.length && /\s/.test(text[w]!)) w++;
      if (start === 0) {
        curIndent += indent;
        curLen -= indent;
      }
      start = w;
    }
    word = nextSpace < text.length ? nextSpace + 1 : undefined;
  }
  emit(text.slice(start));
  return out;
}

/**
 * The header section without the empty line that ends it: queue-file.ts
 * headerSectionLength is the one definition of where the header ends (through
 * the first empty line, LF or CRLF); this drops that empty line. No empty
 * line: all of it is header; a leading empty line: no header.
 */
function headerSection(content: Buffer): Buffer {
  const len = headerSectionLength(content);
  const lf = 0x0a;
  let emptyLine = 0;
  if (content[len - 1] === lf && (len === 1 || content[len - 2] === lf)) emptyLine = 1;
  else if (content[len - 1] === lf && content[len - 2] === 0x0d && (len === 2 || content[len - 3] === lf)) emptyLine = 2;
  return content.subarray(0, len - emptyLine);
}

/** The Message-ID of the original, for threaded bounces (enable_threaded_bounces). */
function messageIdOf(content: Buffer): string | undefined {
  const head = headerSection(content).toString('latin1');
  const m = /^message-id:[ \t]*(<[^\r\n>]*>)[ \t]*\r?$/im.exec(head);
  return m?.[1];
}

function endsWithNewline(b: Buffer): boolean {
  return b.length === 0 || b[b.length - 1] === 0x0a;
}

/** Bare LF → CRLF; CRLF kept; bytes otherwise untouched (binary-safe). */
export function toCrlf(b: Buffer): Buffer {
  let bare = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) bare++;
  if (bare === 0) return b;
  const out = Buffer.alloc(b.length + bare);
  let j = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] === 0x0a && (i === 0 || b[i - 1] !== 0x0d)) out[j++] = 0x0d;
    out[j++] = b[i]!;
  }
  return out;
}
