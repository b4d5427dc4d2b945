/**
 * cleanup.ts — turn accepted mail into a queue file the way Postfix's cleanup(8) does, as
 * the content streams in: envelope normalisation, stray CR/LF replacement, the Received:
 * header in front, missing headers at the end of the header, the hop count, SMTPUTF8 and
 * 8-bit detection, then the durable spool write.
 *
 * Contract:
 * - `baseEnvelope()` (pure): `$myorigin` is appended to a bare local part in the sender and
 *   recipients (append_at_myorigin); duplicate recipients are dropped, keeping the first —
 *   the duplicate key is the address compared case-insensitively plus its DSN NOTIFY and
 *   ORCPT (Postfix's duplicate filter keys on the DSN attributes too). DSN, SMTPUTF8, BODY
 *   and REQUIRETLS values are recorded.
 * - `CleanupFilter` (pure, streaming): content in, queue content out, never more than one
 *   header line held. In order: cleanup_replace_stray_cr_lf (stray-cr-lf.ts); the
 *   prepended lines (smtpd's or pickup's Received:); the client's bytes unchanged; the
 *   missing `From:` (the sender, or MAILER-DAEMON for `<>`), `Date:` and `Message-Id:
 *   <YYYYMMDDhhmmss.ID@myhostname>` appended to the primary header when the source may get
 *   them (always_add_missing_headers, local_header_rewrite_clients — postconf(5) — and
 *   always for local submission). It reports what cleanup learns from the primary header
 *   (`facts()`): the hop count (every `Received:` including ours: cleanup_message.c counts
 *   them and refuses at hopcount_limit or more), the message-id to log, `TLS-Required: No`
 *   (RFC 8689 §5, with tls_required_enable), a `Content-Transfer-Encoding: 8bit|binary`
 *   (detect_8bit_encoding_header → the message is 8-bit) and non-ASCII headers or
 *   addresses for smtputf8_autodetect_classes (cleanup_addr.c, cleanup_out.c).
 * - `CleanupStream` runs the filter into a QueueFileStream (queue-write.ts): `write()`
 *   resolves when the disk has taken what the caller may drop (backpressure); `end()`
 *   returns the facts and the final envelope without committing; the caller then either
 *   `commit()`s (file and directory fsynced: only then 250) or `abort()`s (too many hops,
 *   over the size limit, a smuggling rejection, a lost client). A QueueWriteError
 *   propagates: the listener answers 452 4.3.1.
 *
 * Not here: header_checks, canonical/virtual rewriting, milters, MIME part headers (only
 * the primary header is inspected: docs/differences-from-postfix.md); the SMTP replies and
 * what a refused local submission turns into (smtpd/data.ts, daemon/pickup.ts).
 */
import type { ClientInfo, DsnNotify, EnvelopeInput, RecipientInput } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';
import { encodeFields } from '../message/headers.ts';
import { HeaderStream } from '../message/header-stream.ts';
import type { HeaderEnd, StreamField } from '../message/header-stream.ts';
import { mailDate } from '../message/received.ts';
import { REQUIRE_TLS_ESMTP_HEADER } from '../message/require-tls-esmtp.ts';
import { StrayCrLf } from '../message/stray-cr-lf.ts';
import { isAllAscii } from '../smtp/idna.ts';
import { QueueFileStream } from './queue-write.ts';

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
  /** hopcount_limit (default 50). */
  readonly hopcountLimit?: number;
  /** cleanup_replace_stray_cr_lf (default yes). */
  readonly replaceStrayCrLf?: boolean;
  /** smtputf8_enable and smtputf8_autodetect_classes covers this mail source. */
  readonly autodetectSmtputf8?: boolean;
  /** detect_8bit_encoding_header (default yes). */
  readonly detect8BitEncodingHeader?: boolean;
  /** requiretls_enable && requiretls_esmtp_header: honour and add `Require-TLS-ESMTP: yes` (message/require-tls-esmtp.ts). */
  readonly requireTlsEsmtpHeader?: boolean;
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

/** The envelope before the content is seen (its flags may still be raised by the content). */
export function baseEnvelope(t: Transaction, s: CleanupSettings): EnvelopeInput {
  return {
    arrivalTime: t.arrival.getTime(),
    sender: qualify(t.sender, s.myorigin),
    recipients: normaliseRecipients(t.recipients, s.myorigin),
    ...(t.envid !== undefined ? { envid: t.envid } : {}),
    ...(t.ret !== undefined ? { ret: t.ret } : {}),
    smtputf8: t.smtputf8,
    eightBitMime: t.eightBitMime,
    requireTls: t.requireTls,
    tlsRequiredNo: false,
    client: t.client,
  };
}

function stamp(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}

/** Which of the headers cleanup adds were present in the primary header. */
export interface SeenHeaders {
  readonly from: boolean;
  readonly date: boolean;
  /** The Message-ID value, when there was one. */
  readonly messageId: string | undefined;
}

/** The headers cleanup adds when they are missing (none when the source may not get any). */
export function missingFields(seen: SeenHeaders, env: EnvelopeInput, queueId: string, date: Date, s: CleanupSettings): { lines: string[]; messageId: string | undefined } {
  if (!s.addMissingHeaders) return { lines: [], messageId: seen.messageId };
  const lines: string[] = [];
  if (!seen.from) lines.push(`From: ${env.sender === '' ? 'MAILER-DAEMON' : env.sender}`);
  if (!seen.date) lines.push(`Date: ${mailDate(date)}`);
  let messageId = seen.messageId;
  if (messageId === undefined) {
    messageId = `<${stamp(date)}.${queueId}@${s.myhostname}>`;
    lines.push(`Message-Id: ${messageId}`);
  }
  return { lines, messageId };
}

/** What cleanup learned from the content. */
export interface CleanupFacts {
  /** Received: headers in the primary header, the prepended one included. */
  readonly hops: number;
  /** hops ≥ hopcount_limit: cleanup's CLEANUP_STAT_HOPS (`5.4.0 too many hops`). */
  readonly tooManyHops: boolean;
  /** For the `ID: message-id=...` log line (`<>` when there is none). */
  readonly messageId: string;
  readonly tlsRequiredNo: boolean;
  /** A primary `Content-Transfer-Encoding: 8bit` or `binary`. */
  readonly eightBitHeader: boolean;
  /** A primary header (ours included) with non-ASCII bytes. */
  readonly utf8Header: boolean;
  /** Stray CR/LF bytes replaced by spaces. */
  readonly strayReplaced: number;
  /** A primary `Require-TLS-ESMTP: yes` asked for REQUIRETLS (counted only with requireTlsEsmtpHeader). */
  readonly requireTlsEsmtp: boolean;
}

const CRLF = Buffer.from('\r\n');

/** See the header: the content transformation, pure and streaming. */
export class CleanupFilter {
  private readonly stray: StrayCrLf | undefined;
  private readonly headers: HeaderStream;
  private out: Buffer[] = [];
  private hops = 0;
  private from = false;
  private date = false;
  private messageId: string | undefined;
  private addedMessageId: string | undefined;
  private tlsRequiredNo: boolean | undefined;
  private eightBitHeader = false;
  private utf8Header = false;
  private requireTlsEsmtp = false;

  constructor(
    private readonly env: EnvelopeInput,
    private readonly queueId: string,
    prepend: readonly string[],
    private readonly s: CleanupSettings,
    private readonly date_ = new Date(env.arrivalTime),
  ) {
    this.stray = (s.replaceStrayCrLf ?? true) ? new StrayCrLf() : undefined;
    this.headers = new HeaderStream({ data: (b) => this.out.push(b), field: (f) => this.field(f), end: (e) => this.headerEnd(e) });
    for (const line of prepend) {
      if (/^received:/i.test(line)) this.hops++;
      if (!isAllAscii(line)) this.utf8Header = true;
    }
    if (prepend.length > 0) this.out.push(encodeFields(prepend));
  }

  /** Transform one piece of content; returns the pieces to write, in order. */
  push(chunk: Buffer): Buffer[] {
    this.headers.push(this.stray ? this.stray.push(chunk) : chunk);
    return this.take();
  }

  /** The end of the content: the last pieces to write. */
  end(): Buffer[] {
    if (this.stray) {
      const tail = this.stray.end();
      if (tail.length > 0) this.headers.push(tail);
    }
    this.headers.end();
    return this.take();
  }

  private take(): Buffer[] {
    const o = this.out;
    this.out = [];
    return o;
  }

  private field(f: StreamField): void {
    if (f.eightBit) this.utf8Header = true;
    switch (f.key) {
      case 'received':
        this.hops++;
        break;
      case 'from':
        this.from = true;
        break;
      case 'date':
        this.date = true;
        break;
      case 'message-id':
        this.messageId ??= f.value.trim();
        break;
      case 'tls-required':
        // RFC 8689 §5: the first TLS-Required field counts.
        this.tlsRequiredNo ??= f.value.trim().toLowerCase() === 'no';
        break;
      case 'content-transfer-encoding':
        if (/^(8bit|binary)$/i.test(f.value.trim())) this.eightBitHeader = true;
        break;
      case 'require-tls-esmtp':
        if (f.value.trim().toLowerCase() === 'yes') this.requireTlsEsmtp = true;
        break;
    }
  }

  private headerEnd(e: HeaderEnd): void {
    const missing = missingFields({ from: this.from, date: this.date, messageId: this.messageId }, this.env, this.queueId, this.date_, this.s);
    this.addedMessageId = missing.messageId;
    // Postfix 3.11 (REQUIRETLS_README): REQUIRETLS mail without the header gets `Require-TLS-ESMTP: yes`.
    const esmtp = this.s.requireTlsEsmtpHeader === true && this.env.requireTls === true && !this.requireTlsEsmtp ? [REQUIRE_TLS_ESMTP_HEADER] : [];
    const lines = [...missing.lines, ...esmtp];
    if (lines.length === 0) return;
    // A header that ends without a line end (no body at all) gets one before the additions,
    // and a body that followed the header without an empty line gets one after them.
    if (e.openLine) this.out.push(CRLF);
    this.out.push(encodeFields(lines));
    if (!e.separator && !e.atEof) this.out.push(CRLF);
  }

  facts(): CleanupFacts {
    const limit = this.s.hopcountLimit ?? 50;
    return {
      hops: this.hops,
      tooManyHops: this.hops >= limit,
      messageId: this.addedMessageId ?? this.messageId ?? '<>',
      tlsRequiredNo: this.s.tlsRequiredEnable && (this.tlsRequiredNo ?? false),
      eightBitHeader: this.eightBitHeader,
      utf8Header: this.utf8Header,
      strayReplaced: this.stray?.replaced ?? 0,
      requireTlsEsmtp: this.s.requireTlsEsmtpHeader === true && this.requireTlsEsmtp,
    };
  }
}

/**
 * The final envelope: the base one with what the content said. SMTPUTF8 autodetection
 * (smtputf8_autodetect_classes): a non-ASCII sender, recipient or header requests SMTPUTF8.
 */
export function finalEnvelope(base: EnvelopeInput, f: CleanupFacts, s: CleanupSettings): EnvelopeInput {
  const utf8 = !isAllAscii(base.sender) || base.recipients.some((r) => !isAllAscii(r.address)) || f.utf8Header;
  return {
    ...base,
    smtputf8: (base.smtputf8 ?? false) || ((s.autodetectSmtputf8 ?? false) && utf8),
    eightBitMime: (base.eightBitMime ?? false) || ((s.detect8BitEncodingHeader ?? true) && f.eightBitHeader),
    tlsRequiredNo: (base.tlsRequiredNo ?? false) || f.tlsRequiredNo,
    requireTls: (base.requireTls ?? false) || f.requireTlsEsmtp,
  };
}

/** Cleanup into a queue file; see the header. */
export class CleanupStream {
  private ended: { facts: CleanupFacts; envelope: EnvelopeInput } | undefined;

  private constructor(
    private readonly file: QueueFileStream,
    private readonly filter: CleanupFilter,
    private readonly base: EnvelopeInput,
    private readonly s: CleanupSettings,
  ) {}

  /** Open the queue file; `prepend(queueId)` gives the lines to put first (Received:). */
  static async open(spool: Spool, base: EnvelopeInput, s: CleanupSettings, prepend: (queueId: string) => string[], queue: 'incoming' | 'maildrop' = 'incoming'): Promise<CleanupStream> {
    const file = await QueueFileStream.open(spool, base, queue);
    return new CleanupStream(file, new CleanupFilter(base, file.id, prepend(file.id), s), base, s);
  }

  get queueId(): string {
    return this.file.id;
  }

  /** Queue content bytes written so far. */
  get written(): number {
    return this.file.contentLength;
  }

  async write(chunk: Buffer): Promise<void> {
    for (const piece of this.filter.push(chunk)) await this.file.write(piece);
  }

  /** The end of the content: flush it, and say what cleanup learned (nothing committed yet). */
  async end(): Promise<{ facts: CleanupFacts; envelope: EnvelopeInput }> {
    if (this.ended) return this.ended;
    for (const piece of this.filter.end()) await this.file.write(piece);
    const facts = this.filter.facts();
    this.ended = { facts, envelope: finalEnvelope(this.base, facts, this.s) };
    return this.ended;
  }

  /** Make the file durable under its queue ID. */
  async commit(): Promise<string> {
    const { envelope } = await this.end();
    return this.file.finish(envelope);
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}
