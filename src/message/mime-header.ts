/**
 * mime-header.ts — the two MIME header fields whose values decide 8-bit → 7-bit conversion
 * (RFC 2045 §5 Content-Type, §6 Content-Transfer-Encoding), read as Postfix's
 * mime_state.c reads them through header_token(3): comments skipped, quoted strings kept
 * apart from tokens, `;` separating parameters.
 *
 * Contract (pure): `parseContentType()` gives the type class Postfix distinguishes (text,
 * message with its subtype, multipart with its default part type and every `boundary=`
 * value — several are illegal but all are kept, as Postfix keeps them), `other` for a
 * value without tokens, and `unchanged` for any other type (mime_state_content_type()
 * then keeps the type it had).
 * `parseTransferEncoding()` gives the encoding and its domain (7bit, 8bit, binary; base64
 * and quoted-printable are 7bit-domain encodings); an unknown value gives undefined
 * (Postfix then keeps the previous state).
 *
 * Not here: the state machine (mime-convert.ts), RFC 2231 parameter continuations (not
 * glued, as in Postfix), RFC 2047 words.
 */

export type Domain = '7bit' | '8bit' | 'binary';

export interface TransferEncoding {
  readonly encoding: '7bit' | '8bit' | 'binary' | 'base64' | 'quoted-printable';
  readonly domain: Domain;
}

export type ContentType =
  | { readonly kind: 'text' }
  | { readonly kind: 'message'; readonly subtype: 'rfc822' | 'partial' | 'external-body' | 'global' | 'other' }
  | { readonly kind: 'multipart'; readonly digest: boolean; readonly boundaries: readonly string[] }
  /** A value without tokens. */
  | { readonly kind: 'other' }
  /** Any other type (image/png ...): mime_state.c leaves its state as it was. */
  | { readonly kind: 'unchanged' };

type Tok = { readonly type: 'token' | 'qstring' | 'special'; readonly value: string };

/** RFC 2045 tspecials. */
const TSPECIALS = '()<>@,;:\\"/[]?=';

/** Skip a (nested) comment that starts at `i`; returns the index after it. */
function skipComment(s: string, i: number): number {
  let depth = 0;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return i;
}

function quoted(s: string, i: number): { value: string; next: number } {
  let v = '';
  for (i++; i < s.length && s[i] !== '"'; i++) v += s[i] === '\\' && i + 1 < s.length ? s[++i] : s[i];
  return { value: v, next: i + 1 };
}

/**
 * header_token(): the tokens of `s`, split into `;`-separated segments when `specials`
 * (Content-Type), or one whitespace-separated list (Content-Transfer-Encoding).
 */
function tokenize(s: string, specials: boolean): Tok[][] {
  const segments: Tok[][] = [[]];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') i++;
    else if (c === '(') i = skipComment(s, i);
    else if (c === '"') {
      const q = quoted(s, i);
      segments[segments.length - 1]!.push({ type: 'qstring', value: q.value });
      i = q.next;
    } else if (specials && c === ';') {
      segments.push([]);
      i++;
    } else if (specials && TSPECIALS.includes(c)) {
      segments[segments.length - 1]!.push({ type: 'special', value: c });
      i++;
    } else {
      let j = i;
      while (j < s.length && !/[\s(")]/.test(s[j]!) && !(specials && TSPECIALS.includes(s[j]!))) j++;
      segments[segments.length - 1]!.push({ type: 'token', value: s.slice(i, j) });
      i = j;
    }
  }
  return segments;
}

function tokenIs(t: Tok | undefined, text: string): boolean {
  return t !== undefined && t.type === 'token' && t.value.toLowerCase() === text;
}

function subtypeOf(seg: readonly Tok[]): Tok | undefined {
  return seg.length >= 3 && seg[1]!.type === 'special' && seg[1]!.value === '/' ? seg[2] : undefined;
}

/** The value of a Content-Type field (after the colon). */
export function parseContentType(value: string): ContentType {
  const [first = [], ...params] = tokenize(value, true);
  const sub = subtypeOf(first);
  if (tokenIs(first[0], 'text')) return { kind: 'text' };
  if (tokenIs(first[0], 'message')) {
    for (const s of ['rfc822', 'partial', 'external-body', 'global'] as const) if (tokenIs(sub, s)) return { kind: 'message', subtype: s };
    return { kind: 'message', subtype: 'other' };
  }
  if (tokenIs(first[0], 'multipart')) {
    // "Yes, this is supposed to ignore the boundary value type" (mime_state.c).
    const boundaries = params.filter((p) => p.length >= 3 && tokenIs(p[0], 'boundary') && p[1]!.value === '=').map((p) => p[2]!.value);
    return { kind: 'multipart', digest: tokenIs(sub, 'digest'), boundaries };
  }
  // mime_state_content_type(): no token at all means "other"; any other type changes nothing.
  return first.length === 0 ? { kind: 'other' } : { kind: 'unchanged' };
}

const ENCODINGS: Readonly<Record<string, TransferEncoding>> = {
  '7bit': { encoding: '7bit', domain: '7bit' },
  '8bit': { encoding: '8bit', domain: '8bit' },
  binary: { encoding: 'binary', domain: 'binary' },
  base64: { encoding: 'base64', domain: '7bit' },
  'quoted-printable': { encoding: 'quoted-printable', domain: '7bit' },
};

/** The value of a Content-Transfer-Encoding field; undefined when unknown. */
export function parseTransferEncoding(value: string): TransferEncoding | undefined {
  const first = tokenize(value, false)[0]?.[0];
  if (!first || first.type !== 'token') return undefined;
  return ENCODINGS[first.value.toLowerCase()];
}
