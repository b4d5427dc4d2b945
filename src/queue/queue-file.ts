/**
 * queue-file.ts — the sealpost queue-file codec (format version 1), pure: bytes in,
 * values out, no I/O. The layout is documented in docs/queue-format.md.
 *
 * Contract:
 * - A queue file is: a 64-byte fixed header; one status byte per recipient
 *   (`P` pending, `D` done); the envelope as UTF-8 JSON; the message content
 *   (header + body) exactly as received, never re-encoded.
 * - The header carries a magic, the format version, the counts and lengths of
 *   every section and CRC-32s of the envelope, the content and the header
 *   itself, so a truncated or corrupt file is detected (QueueFileFormatError).
 * - Mutable state lives in single bytes outside every checksum: the recipient
 *   status bytes and the forced-expire byte. They are flipped in place with one
 *   positioned write + fsync, as Postfix flips a recipient record's type to
 *   "done" in place (qmgr_message_kill_record / REC_TYPE_DONE). Each mutable byte
 *   is validated by value on read.
 * - `message_size` is counted as Postfix counts it: header + body bytes with
 *   each CRLF counted as one byte (Postfix stores lines with a bare newline).
 *
 * Not here: files, directories, fsync, queue IDs (spool.ts, queue-id.ts); the
 * per-recipient delay reasons (the `defer/ID` log, defer-log.ts).
 */
import { crc32 } from 'node:zlib';

export const QUEUE_FILE_MAGIC = Buffer.from([0x53, 0x50, 0x51, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]); // "SPQF\r\n\x1a\n"
export const QUEUE_FILE_VERSION = 1;
export const HEADER_LENGTH = 64;
/** Offset of the forced-expire byte (`-` no, `E` yes); see postsuper -e/-f. */
export const FORCED_EXPIRE_OFFSET = 40;
export const STATUS_PENDING = 0x50; // 'P'
export const STATUS_DONE = 0x44; // 'D'
export const EXPIRE_NO = 0x2d; // '-'
export const EXPIRE_YES = 0x45; // 'E'

/** The byte offset of recipient `index`'s status byte. */
export function statusOffset(index: number): number {
  return HEADER_LENGTH + index;
}

/** A queue file that does not parse: truncated, corrupt, or of an unknown version. */
export class QueueFileFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'QueueFileFormatError';
  }
}

/** RFC 3461 §4.1 NOTIFY: NEVER, or any of SUCCESS, FAILURE, DELAY. */
export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface RecipientInput {
  /** The envelope recipient (RCPT TO address, without angle brackets). */
  readonly address: string;
  /** The address before any rewriting (Postfix's original_recipient); defaults to address. */
  readonly origAddress?: string;
  /** RFC 3461 §4.2 ORCPT as given: `addr-type;xtext`, e.g. `rfc822;bob@example.com`. */
  readonly orcpt?: string;
  /** RFC 3461 §4.1 NOTIFY values; absent when the client gave none. */
  readonly notify?: readonly DsnNotify[];
}

export interface ClientInfo {
  readonly name: string;
  readonly address: string;
  readonly port?: number;
  readonly helo?: string;
  /** SMTP, ESMTP, ESMTPS, ESMTPSA ... or `sendmail` for local submission. */
  readonly protocol?: string;
  readonly saslUser?: string;
}

export interface EnvelopeInput {
  /** Arrival time, milliseconds since the epoch (Postfix's message_arrival_time). */
  readonly arrivalTime: number;
  /** Envelope sender; '' for the null sender `<>`. */
  readonly sender: string;
  readonly recipients: readonly RecipientInput[];
  /** RFC 3461 §4.4 ENVID. */
  readonly envid?: string;
  /** RFC 3461 §4.3 RET. */
  readonly ret?: 'FULL' | 'HDRS';
  /** RFC 6531 SMTPUTF8 given on MAIL FROM. */
  readonly smtputf8?: boolean;
  /** RFC 6152 BODY=8BITMIME given on MAIL FROM. */
  readonly eightBitMime?: boolean;
  /** RFC 8689 REQUIRETLS given on MAIL FROM. */
  readonly requireTls?: boolean;
  /** RFC 8689 §4.2 `TLS-Required: No` header present. */
  readonly tlsRequiredNo?: boolean;
  readonly client?: ClientInfo;
}

export type RecipientStatus = 'pending' | 'done';

export interface QueueRecipient {
  readonly index: number;
  readonly address: string;
  readonly origAddress: string;
  readonly orcpt?: string;
  readonly notify?: readonly DsnNotify[];
  readonly status: RecipientStatus;
}

/** A decoded envelope: everything but the content bytes. */
export interface QueueEnvelope {
  readonly version: number;
  readonly arrivalTime: number;
  readonly sender: string;
  readonly recipients: readonly QueueRecipient[];
  readonly envid?: string;
  readonly ret?: 'FULL' | 'HDRS';
  readonly smtputf8: boolean;
  readonly eightBitMime: boolean;
  readonly requireTls: boolean;
  readonly tlsRequiredNo: boolean;
  readonly client?: ClientInfo;
  readonly forcedExpire: boolean;
  /** Postfix's message_size: header + body bytes, CRLF counted as one. */
  readonly messageSize: number;
  /** Bytes of the content up to and including the empty line that ends the header. */
  readonly headerLength: number;
  readonly contentLength: number;
  /** Byte offset of the content in the file. */
  readonly contentOffset: number;
  /** Total file length the header promises. */
  readonly fileLength: number;
}

interface FixedHeader {
  readonly recipientCount: number;
  readonly envelopeLength: number;
  readonly envelopeCrc: number;
  readonly contentLength: number;
  readonly contentCrc: number;
  readonly forcedExpire: boolean;
}

/** Postfix's message_size: content bytes, with each CRLF counted as one byte. */
export function countedMessageSize(content: Uint8Array): number {
  let crlf = 0;
  for (let i = content.indexOf(0x0d); i >= 0 && i < content.length - 1; i = content.indexOf(0x0d, i + 1)) {
    if (content[i + 1] === 0x0a) crlf++;
  }
  return content.length - crlf;
}

/** Length of the header section: through the first empty line (LF or CRLF), or all of it. */
export function headerSectionLength(content: Uint8Array): number {
  if (content[0] === 0x0a) return 1;
  if (content[0] === 0x0d && content[1] === 0x0a) return 2;
  for (let i = content.indexOf(0x0a); i >= 0; i = content.indexOf(0x0a, i + 1)) {
    if (content[i + 1] === 0x0a) return i + 2;
    if (content[i + 1] === 0x0d && content[i + 2] === 0x0a) return i + 3;
  }
  return content.length;
}

function envelopeJson(env: EnvelopeInput, messageSize: number, headerLength: number): string {
  // Fixed member order so that equal envelopes encode to equal bytes.
  const o: Record<string, unknown> = {
    arrival_time: env.arrivalTime,
    sender: env.sender,
    recipients: env.recipients.map((r) => {
      const x: Record<string, unknown> = { address: r.address, orig_address: r.origAddress ?? r.address };
      if (r.orcpt !== undefined) x.orcpt = r.orcpt;
      if (r.notify !== undefined) x.notify = [...r.notify];
      return x;
    }),
  };
  if (env.envid !== undefined) o.envid = env.envid;
  if (env.ret !== undefined) o.ret = env.ret;
  o.smtputf8 = env.smtputf8 ?? false;
  o.eightbitmime = env.eightBitMime ?? false;
  o.requiretls = env.requireTls ?? false;
  o.tls_required_no = env.tlsRequiredNo ?? false;
  if (env.client !== undefined) o.client = { ...env.client };
  o.message_size = messageSize;
  o.header_length = headerLength;
  return JSON.stringify(o);
}

/** Encode a complete queue file (all recipients pending, not expired). */
export function encodeQueueFile(env: EnvelopeInput, content: Uint8Array): Buffer {
  if (!Number.isFinite(env.arrivalTime)) throw new TypeError('arrivalTime must be a number');
  const envBytes = Buffer.from(envelopeJson(env, countedMessageSize(content), headerSectionLength(content)), 'utf8');
  const n = env.recipients.length;
  const out = Buffer.allocUnsafe(HEADER_LENGTH + n + envBytes.length + content.length);
  out.fill(0, 0, HEADER_LENGTH);
  QUEUE_FILE_MAGIC.copy(out, 0);
  out.writeUInt16BE(QUEUE_FILE_VERSION, 8);
  out.writeUInt16BE(HEADER_LENGTH, 10);
  out.writeUInt32BE(n, 12);
  out.writeUInt32BE(envBytes.length, 16);
  out.writeUInt32BE(crc32(envBytes), 20);
  out.writeBigUInt64BE(BigInt(content.length), 24);
  out.writeUInt32BE(crc32(content), 32);
  out.writeUInt32BE(crc32(out.subarray(0, 36)), 36);
  out[FORCED_EXPIRE_OFFSET] = EXPIRE_NO;
  out.fill(STATUS_PENDING, HEADER_LENGTH, HEADER_LENGTH + n);
  envBytes.copy(out, HEADER_LENGTH + n);
  out.set(content, HEADER_LENGTH + n + envBytes.length);
  return out;
}

function decodeFixedHeader(buf: Uint8Array): FixedHeader {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < HEADER_LENGTH) throw new QueueFileFormatError(`truncated header (${b.length} of ${HEADER_LENGTH} bytes)`);
  if (!b.subarray(0, 8).equals(QUEUE_FILE_MAGIC)) throw new QueueFileFormatError('not a sealpost queue file (bad magic)');
  const version = b.readUInt16BE(8);
  if (version !== QUEUE_FILE_VERSION) throw new QueueFileFormatError(`unsupported queue file version ${version}`);
  if (b.readUInt16BE(10) !== HEADER_LENGTH) throw new QueueFileFormatError('bad header length');
  if (b.readUInt32BE(36) !== crc32(b.subarray(0, 36))) throw new QueueFileFormatError('header checksum mismatch');
  const expire = b[FORCED_EXPIRE_OFFSET];
  if (expire !== EXPIRE_NO && expire !== EXPIRE_YES) throw new QueueFileFormatError('bad forced-expire byte');
  const contentLength = b.readBigUInt64BE(24);
  if (contentLength > BigInt(Number.MAX_SAFE_INTEGER)) throw new QueueFileFormatError('bad content length');
  return {
    recipientCount: b.readUInt32BE(12),
    envelopeLength: b.readUInt32BE(16),
    envelopeCrc: b.readUInt32BE(20),
    contentLength: Number(contentLength),
    contentCrc: b.readUInt32BE(32),
    forcedExpire: expire === EXPIRE_YES,
  };
}

/** How many leading bytes decodeEnvelope() needs, given at least the fixed header. */
export function envelopePrefixLength(head: Uint8Array): number {
  const h = decodeFixedHeader(head);
  return HEADER_LENGTH + h.recipientCount + h.envelopeLength;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw new QueueFileFormatError(`envelope: ${what} is not a string`);
  return v;
}
function optStr(v: unknown, what: string): string | undefined {
  return v === undefined ? undefined : str(v, what);
}
function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new QueueFileFormatError(`envelope: ${what} is not a boolean`);
  return v;
}
function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new QueueFileFormatError(`envelope: ${what} is not a number`);
  return v;
}

const NOTIFY_WORDS = new Set(['NEVER', 'SUCCESS', 'FAILURE', 'DELAY']);

function decodeRecipient(v: unknown, index: number, statusByte: number | undefined): QueueRecipient {
  if (typeof v !== 'object' || v === null) throw new QueueFileFormatError(`envelope: recipient ${index} is not an object`);
  const r = v as Record<string, unknown>;
  let status: RecipientStatus;
  if (statusByte === STATUS_PENDING) status = 'pending';
  else if (statusByte === STATUS_DONE) status = 'done';
  else throw new QueueFileFormatError(`bad status byte for recipient ${index}`);
  let notify: DsnNotify[] | undefined;
  if (r.notify !== undefined) {
    if (!Array.isArray(r.notify) || !r.notify.every((w) => typeof w === 'string' && NOTIFY_WORDS.has(w))) {
      throw new QueueFileFormatError(`envelope: recipient ${index} has a bad notify list`);
    }
    notify = r.notify as DsnNotify[];
  }
  const address = str(r.address, 'recipient address');
  const out: { -readonly [K in keyof QueueRecipient]: QueueRecipient[K] } = {
    index,
    address,
    origAddress: optStr(r.orig_address, 'orig_address') ?? address,
    status,
  };
  const orcpt = optStr(r.orcpt, 'orcpt');
  if (orcpt !== undefined) out.orcpt = orcpt;
  if (notify !== undefined) out.notify = notify;
  return out;
}

function decodeClient(v: unknown): ClientInfo | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null) throw new QueueFileFormatError('envelope: client is not an object');
  const c = v as Record<string, unknown>;
  const out: { -readonly [K in keyof ClientInfo]: ClientInfo[K] } = { name: str(c.name, 'client name'), address: str(c.address, 'client address') };
  if (c.port !== undefined) out.port = num(c.port, 'client port');
  const helo = optStr(c.helo, 'client helo');
  if (helo !== undefined) out.helo = helo;
  const protocol = optStr(c.protocol, 'client protocol');
  if (protocol !== undefined) out.protocol = protocol;
  const sasl = optStr(c.saslUser, 'client saslUser');
  if (sasl !== undefined) out.saslUser = sasl;
  return out;
}

/**
 * Decode the envelope from the leading bytes of a queue file (at least
 * envelopePrefixLength() of them). `fileLength`, when given, must equal the
 * length the header promises: this is how a truncated file is detected
 * without reading its content.
 */
export function decodeEnvelope(prefix: Uint8Array, fileLength?: number): QueueEnvelope {
  const h = decodeFixedHeader(prefix);
  const envStart = HEADER_LENGTH + h.recipientCount;
  const envEnd = envStart + h.envelopeLength;
  const total = envEnd + h.contentLength;
  if (prefix.length < envEnd) throw new QueueFileFormatError(`truncated envelope (${prefix.length} of ${envEnd} bytes)`);
  if (fileLength !== undefined && fileLength !== total) {
    throw new QueueFileFormatError(fileLength < total ? `truncated file (${fileLength} of ${total} bytes)` : `trailing garbage (${fileLength} bytes, expected ${total})`);
  }
  const envBytes = prefix.subarray(envStart, envEnd);
  if (crc32(envBytes) !== h.envelopeCrc) throw new QueueFileFormatError('envelope checksum mismatch');
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(Buffer.from(envBytes.buffer, envBytes.byteOffset, envBytes.byteLength).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new QueueFileFormatError('envelope is not valid JSON');
  }
  if (typeof o !== 'object' || o === null || !Array.isArray(o.recipients)) throw new QueueFileFormatError('envelope: no recipient list');
  if (o.recipients.length !== h.recipientCount) throw new QueueFileFormatError('envelope: recipient count mismatch');
  const recipients = o.recipients.map((r, i) => decodeRecipient(r, i, prefix[HEADER_LENGTH + i]));
  const ret = o.ret;
  if (ret !== undefined && ret !== 'FULL' && ret !== 'HDRS') throw new QueueFileFormatError('envelope: bad ret');
  const out: { -readonly [K in keyof QueueEnvelope]: QueueEnvelope[K] } = {
    version: QUEUE_FILE_VERSION,
    arrivalTime: num(o.arrival_time, 'arrival_time'),
    sender: str(o.sender, 'sender'),
    recipients,
    smtputf8: bool(o.smtputf8, 'smtputf8'),
    eightBitMime: bool(o.eightbitmime, 'eightbitmime'),
    requireTls: bool(o.requiretls, 'requiretls'),
    tlsRequiredNo: bool(o.tls_required_no, 'tls_required_no'),
    forcedExpire: h.forcedExpire,
    messageSize: num(o.message_size, 'message_size'),
    headerLength: num(o.header_length, 'header_length'),
    contentLength: h.contentLength,
    contentOffset: envEnd,
    fileLength: total,
  };
  const envid = optStr(o.envid, 'envid');
  if (envid !== undefined) out.envid = envid;
  if (ret !== undefined) out.ret = ret;
  const client = decodeClient(o.client);
  if (client !== undefined) out.client = client;
  if (out.headerLength > out.contentLength) throw new QueueFileFormatError('envelope: header_length beyond content');
  return out;
}

/** Verify and return the content section of a complete queue file. */
export function decodeContent(file: Uint8Array, env: QueueEnvelope): Buffer {
  if (file.length !== env.fileLength) throw new QueueFileFormatError(`truncated file (${file.length} of ${env.fileLength} bytes)`);
  const content = Buffer.from(file.buffer, file.byteOffset + env.contentOffset, env.contentLength);
  const h = decodeFixedHeader(file);
  if (crc32(content) !== h.contentCrc) throw new QueueFileFormatError('content checksum mismatch');
  return content;
}

/** Decode a whole queue file, content included (both checksums verified). */
export function decodeQueueFile(file: Uint8Array): { envelope: QueueEnvelope; content: Buffer } {
  const envelope = decodeEnvelope(file, file.length);
  return { envelope, content: decodeContent(file, envelope) };
}

// ---------------------------------------------------------------- streaming encoder

/** What the envelope and the fixed header need to know about content written in pieces. */
export interface ContentFacts {
  readonly contentLength: number;
  readonly contentCrc: number;
  readonly messageSize: number;
  readonly headerLength: number;
}

/**
 * The content facts gathered chunk by chunk, with the same rules as countedMessageSize()
 * and headerSectionLength() applied to the whole content: CRLFs counted across chunk
 * boundaries, the header section ending at the first empty line.
 */
export class ContentCounter {
  private length = 0;
  private crc = 0;
  private crlf = 0;
  private headerEnd: number | undefined;
  /** The last two bytes seen (for pairs and triples that straddle chunks). */
  private prev1 = -1;
  private prev2 = -1;

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.crc = crc32(chunk, this.crc);
    for (let i = chunk.indexOf(0x0a); i >= 0; i = chunk.indexOf(0x0a, i + 1)) {
      const b1 = i >= 1 ? chunk[i - 1]! : this.prev1;
      const b2 = i >= 2 ? chunk[i - 2]! : i === 1 ? this.prev1 : this.prev2;
      if (b1 === 0x0d) this.crlf++;
      if (this.headerEnd !== undefined) continue;
      const at = this.length + i;
      // An empty line: "\n" right after "\n", "\r\n" right after "\n", or the content starts with one.
      if (at === 0 || (b1 === 0x0a) || (b1 === 0x0d && (b2 === 0x0a || at === 1))) this.headerEnd = at + 1;
    }
    this.prev2 = chunk.length >= 2 ? chunk[chunk.length - 2]! : this.prev1;
    this.prev1 = chunk[chunk.length - 1]!;
    this.length += chunk.length;
  }

  get bytes(): number {
    return this.length;
  }

  facts(): ContentFacts {
    return { contentLength: this.length, contentCrc: this.crc >>> 0, messageSize: this.length - this.crlf, headerLength: this.headerEnd ?? this.length };
  }
}

/** The largest value a number in the envelope can take, for reserving its width. */
const WIDEST_NUMBER = Number.MAX_SAFE_INTEGER;

/**
 * Bytes to reserve for the envelope of a file whose content is written before the
 * envelope is final: the envelope JSON with message_size and header_length at their
 * widest and every flag at its longest (`false`). Flags, sizes and lengths may change
 * until the file is finished; addresses, recipients and the client may not.
 */
export function envelopeReserve(env: EnvelopeInput): number {
  const widest: EnvelopeInput = { ...env, smtputf8: false, eightBitMime: false, requireTls: false, tlsRequiredNo: false };
  return Buffer.byteLength(envelopeJson(widest, WIDEST_NUMBER, WIDEST_NUMBER), 'utf8');
}

/**
 * The fixed header, the recipient status bytes and the envelope, for a file whose
 * `facts.contentLength` content bytes follow. With `reserve`, the envelope JSON is padded
 * with spaces to exactly that many bytes (JSON allows trailing white space, so readers
 * see the same envelope): the content was written before the envelope was final.
 */
export function encodeQueueFileHead(env: EnvelopeInput, facts: ContentFacts, reserve?: number): Buffer {
  if (!Number.isFinite(env.arrivalTime)) throw new TypeError('arrivalTime must be a number');
  let json = envelopeJson(env, facts.messageSize, facts.headerLength);
  if (reserve !== undefined) {
    const pad = reserve - Buffer.byteLength(json, 'utf8');
    if (pad < 0) throw new RangeError(`envelope (${reserve - pad} bytes) does not fit its reserved ${reserve} bytes`);
    json += ' '.repeat(pad);
  }
  const envBytes = Buffer.from(json, 'utf8');
  const n = env.recipients.length;
  const out = Buffer.alloc(HEADER_LENGTH + n + envBytes.length);
  QUEUE_FILE_MAGIC.copy(out, 0);
  out.writeUInt16BE(QUEUE_FILE_VERSION, 8);
  out.writeUInt16BE(HEADER_LENGTH, 10);
  out.writeUInt32BE(n, 12);
  out.writeUInt32BE(envBytes.length, 16);
  out.writeUInt32BE(crc32(envBytes), 20);
  out.writeBigUInt64BE(BigInt(facts.contentLength), 24);
  out.writeUInt32BE(facts.contentCrc, 32);
  out.writeUInt32BE(crc32(out.subarray(0, 36)), 36);
  out[FORCED_EXPIRE_OFFSET] = EXPIRE_NO;
  out.fill(STATUS_PENDING, HEADER_LENGTH, HEADER_LENGTH + n);
  envBytes.copy(out, HEADER_LENGTH + n);
  return out;
}

/** The content CRC-32 a file's fixed header promises (for readers that stream the content). */
export function contentCrcOf(head: Uint8Array): number {
  const h = decodeFixedHeader(head);
  return h.contentCrc;
}

/** The per-message flags an envelope carries (for a requeued copy, a delivery request): the one place they are listed. */
export function messageFlags(e: QueueEnvelope): Pick<QueueEnvelope, 'envid' | 'ret' | 'smtputf8' | 'eightBitMime' | 'requireTls' | 'tlsRequiredNo'> {
  return {
    ...(e.envid !== undefined ? { envid: e.envid } : {}),
    ...(e.ret !== undefined ? { ret: e.ret } : {}),
    smtputf8: e.smtputf8,
    eightBitMime: e.eightBitMime,
    requireTls: e.requireTls,
    tlsRequiredNo: e.tlsRequiredNo,
  };
}
