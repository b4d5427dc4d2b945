/**
 * wire.ts — read a DNS reply from its bytes (RFC 1035 §4.1): the header,
 * the question and the answer section as raw records, plus the rdata
 * decoders delivery needs (A, AAAA, MX, TXT, CNAME). TLSA rdata is parsed
 * in tlsa.ts.
 *
 * Contract: pure functions over a Buffer, no I/O. Every read is bounds
 * checked; a malformed message throws `WireError` (never a RangeError, never
 * a record read from the wrong offset). Compression pointers (§4.1.4) are
 * followed only backwards and at most 64 times, so a loop cannot hang us.
 * Names come back lower-case-preserving, without the trailing dot, in the
 * presentation form (`mx.example.com`; the root is `.`).
 * `parseReply` reads the answer section only (authority and additional
 * records are not needed by delivery and are not parsed).
 *
 * Not here: building queries (dns-client.ts uses dns-packet for that),
 * deciding what an answer means (resolver.ts), DNSSEC (we trust the AD bit).
 */

export class WireError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

/** RFC 1035 TYPE values delivery asks for. */
export const RR_TYPE = Object.freeze({ A: 1, CNAME: 5, MX: 15, TXT: 16, AAAA: 28, TLSA: 52 });

export interface WireHeader {
  readonly id: number;
  readonly flags: number;
  /** QR bit: this is a response. */
  readonly response: boolean;
  /** RFC 4035 §3.2.3 AD bit. */
  readonly authenticatedData: boolean;
  readonly truncated: boolean;
  /** The 4-bit RCODE (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...). */
  readonly rcode: number;
}

export interface WireQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface RawRecord {
  /** Owner name (the CNAME target for records found behind an alias). */
  readonly name: string;
  readonly type: number;
  readonly class: number;
  readonly ttl: number;
  readonly rdata: Buffer;
  /** Offset of rdata in the whole message (names inside rdata may point back into it). */
  readonly rdataOffset: number;
}

export interface WireReply {
  readonly header: WireHeader;
  readonly question: WireQuestion | undefined;
  readonly answers: readonly RawRecord[];
}

const MAX_POINTERS = 64;

function need(msg: Buffer, offset: number, n: number, what: string): void {
  if (offset < 0 || offset + n > msg.length) throw new WireError(`truncated DNS message while reading ${what}`);
}

/** Read a (possibly compressed) domain name at `offset`; returns it and the offset after it. */
export function readName(msg: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  let jumps = 0;
  let length = 0;
  for (;;) {
    need(msg, pos, 1, 'a name');
    const len = msg[pos]!;
    if (len === 0) {
      pos += 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      need(msg, pos, 2, 'a compression pointer');
      const target = msg.readUInt16BE(pos) & 0x3fff;
      // Pointers must point backwards (to a prior occurrence), else a loop is possible.
      if (target >= pos || ++jumps > MAX_POINTERS) throw new WireError('bad compression pointer in DNS name');
      if (next < 0) next = pos + 2;
      pos = target;
      continue;
    }
    if (kind !== 0) throw new WireError('unsupported label type in DNS name');
    need(msg, pos + 1, len, 'a label');
    labels.push(labelText(msg.subarray(pos + 1, pos + 1 + len)));
    length += len + 1;
    // RFC 1035 §2.3.4: names are at most 255 octets.
    if (length > 255) throw new WireError('DNS name longer than 255 octets');
    pos += 1 + len;
  }
  return { name: labels.length === 0 ? '.' : labels.join('.'), next: next >= 0 ? next : pos };
}

/** Presentation form of one label: dots and odd bytes escaped as RFC 4343 does (`\.`, `\DDD`). */
function labelText(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x2e || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b > 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\${String(b).padStart(3, '0')}`;
  }
  return out;
}

export function readHeader(msg: Buffer): WireHeader {
  need(msg, 0, 12, 'the header');
  const flags = msg.readUInt16BE(2);
  return {
    id: msg.readUInt16BE(0),
    flags,
    response: (flags & 0x8000) !== 0,
    authenticatedData: (flags & 0x0020) !== 0,
    truncated: (flags & 0x0200) !== 0,
    rcode: flags & 0x000f,
  };
}

/** Parse the header, the first question and the answer section. Throws WireError. */
export function parseReply(msg: Buffer): WireReply {
  const header = readHeader(msg);
  const qdcount = msg.readUInt16BE(4);
  const ancount = msg.readUInt16BE(6);
  let pos = 12;
  let question: WireQuestion | undefined;
  for (let i = 0; i < qdcount; i++) {
    const n = readName(msg, pos);
    need(msg, n.next, 4, 'a question');
    if (i === 0) question = { name: n.name, type: msg.readUInt16BE(n.next), class: msg.readUInt16BE(n.next + 2) };
    pos = n.next + 4;
  }
  const answers: RawRecord[] = [];
  for (let i = 0; i < ancount; i++) {
    const n = readName(msg, pos);
    need(msg, n.next, 10, 'a resource record');
    const rdlength = msg.readUInt16BE(n.next + 8);
    const rdataOffset = n.next + 10;
    need(msg, rdataOffset, rdlength, 'rdata');
    answers.push({
      name: n.name,
      type: msg.readUInt16BE(n.next),
      class: msg.readUInt16BE(n.next + 2),
      ttl: msg.readUInt32BE(n.next + 4),
      rdata: msg.subarray(rdataOffset, rdataOffset + rdlength),
      rdataOffset,
    });
    pos = rdataOffset + rdlength;
  }
  return { header, question, answers };
}

// ------------------------------------------------------------ rdata decoders

/** A: four octets (RFC 1035 §3.4.1). */
export function decodeA(rdata: Buffer): string {
  if (rdata.length !== 4) throw new WireError(`A record with ${rdata.length} octets of data`);
  return [...rdata].join('.');
}

/** AAAA: sixteen octets (RFC 3596 §2.2), printed in the RFC 5952 short form. */
export function decodeAAAA(rdata: Buffer): string {
  if (rdata.length !== 16) throw new WireError(`AAAA record with ${rdata.length} octets of data`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(rdata.readUInt16BE(i));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** A name inside rdata (MX exchange, CNAME target) may be compressed against the whole message. */
function nameInRdata(msg: Buffer, rec: RawRecord, offset: number): { name: string; next: number } {
  const r = readName(msg, rec.rdataOffset + offset);
  if (r.next > rec.rdataOffset + rec.rdata.length) throw new WireError('name runs past the end of its record');
  return r;
}

/** MX: preference and exchange (RFC 1035 §3.3.9). */
export function decodeMx(msg: Buffer, rec: RawRecord): { preference: number; exchange: string } {
  if (rec.rdata.length < 3) throw new WireError('MX record too short');
  const exchange = nameInRdata(msg, rec, 2).name;
  return { preference: rec.rdata.readUInt16BE(0), exchange: exchange === '.' ? '' : exchange };
}

/** CNAME target (RFC 1035 §3.3.1). */
export function decodeCname(msg: Buffer, rec: RawRecord): string {
  return nameInRdata(msg, rec, 0).name;
}

/**
 * TXT: one or more <character-string>s (RFC 1035 §3.3.14), returned as the
 * separate strings. RFC 8461 §3.1 (and RFC 7208 §3.3) read a record as the
 * strings concatenated without spaces: `txtText()`.
 */
export function decodeTxt(rdata: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < rdata.length) {
    const len = rdata[pos]!;
    if (pos + 1 + len > rdata.length) throw new WireError('TXT character-string runs past its record');
    out.push(rdata.subarray(pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  return out;
}

/** The strings of one TXT record joined without spaces, as latin1 text (bytes kept one to one). */
export function txtText(strings: readonly Buffer[]): string {
  return Buffer.concat(strings).toString('latin1');
}

/** Owner names compare case-insensitively (RFC 4343). */
export function sameName(a: string, b: string): boolean {
  return a.replace(/\.$/, '').toLowerCase() === b.replace(/\.$/, '').toLowerCase();
}

/**
 * The end of the CNAME chain for `qname` in an answer section: follow CNAME
 * records from qname (at most 16 steps) and return the final owner name.
 */
export function chaseCname(msg: Buffer, answers: readonly RawRecord[], qname: string): string {
  let name = qname.replace(/\.$/, '');
  for (let i = 0; i < 16; i++) {
    const c = answers.find((a) => a.type === RR_TYPE.CNAME && sameName(a.name, name));
    if (!c) return name;
    name = decodeCname(msg, c);
  }
  throw new WireError(`CNAME chain too long for ${qname}`);
}
