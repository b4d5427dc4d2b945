/**
 * discover.ts — RFC 8460 §3 policy discovery: the `_smtp._tls.<domain>` TXT
 * record (`v=TLSRPTv1; rua=mailto:...,https://...`) parsed strictly, and the
 * lookup through an injected TXT resolver.
 *
 * Contract:
 * - `parseTlsRptRecord()` (pure) follows the §3 ABNF: the version field
 *   `v=TLSRPTv1` first (case-sensitive, %s in the ABNF), fields separated by
 *   `;` with optional blanks, an optional trailing `;`, `rua=` holding one or
 *   more URIs separated by `,` (blanks allowed around it), unknown
 *   `name=value` extensions ignored, a repeated `rua` or a malformed field
 *   invalidates the record. Only `mailto:` and `https:` URIs are used (§3:
 *   the two defined schemes); others are ignored.
 * - `discoverRua()`: TXT RRs whose strings (joined without separator, RFC
 *   7208-style) do not start with `v=TLSRPTv1` are discarded; if not exactly
 *   one remains the domain does not implement TLSRPT (§3: "If the number of
 *   resulting records is not one, senders MUST assume the recipient domain
 *   does not implement TLSRPT"). NXDOMAIN/NODATA = no record, no report; a
 *   temporary DNS failure is `tempfail` (the caller retries later, never
 *   concludes "no record").
 *
 * Not here: DNS I/O (txt.ts), what is sent (send.ts).
 */
import type { LookupResult } from '../../delivery/dns/resolver.ts';

/** What discovery needs from DNS: the TXT RRs of a name, each RR's strings joined. */
export interface TxtLookup {
  txt(name: string): Promise<LookupResult<string>>;
}

export type Rua = { readonly scheme: 'mailto'; readonly uri: string; readonly addresses: readonly string[] } | { readonly scheme: 'https'; readonly uri: string };

export type ParsedRecord = { readonly ok: true; readonly rua: readonly Rua[] } | { readonly ok: false; readonly error: string };

const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

function parseUri(text: string): Rua | undefined {
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  const scheme = text.slice(0, colon).toLowerCase();
  if (scheme === 'https') {
    try {
      const u = new URL(text);
      return u.hostname !== '' ? { scheme: 'https', uri: text } : undefined;
    } catch {
      return undefined;
    }
  }
  if (scheme !== 'mailto') return undefined;
  // RFC 6068: addresses before '?', percent-encoded; several separated by (encoded) commas.
  let to: string;
  try {
    to = decodeURIComponent(text.slice(colon + 1).split('?')[0]!);
  } catch {
    return undefined;
  }
  const addresses = to.split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (addresses.length === 0 || !addresses.every((a) => /^[^@\s<>]+@[^@\s<>]+$/.test(a))) return undefined;
  return { scheme: 'mailto', uri: text, addresses };
}

/** RFC 8460 §3 record syntax; see the header. Pure. */
export function parseTlsRptRecord(text: string): ParsedRecord {
  const fields = text.split(/[ \t]*;[ \t]*/);
  if (fields[0] !== 'v=TLSRPTv1') return { ok: false, error: 'the record does not start with v=TLSRPTv1' };
  if (fields.length > 1 && fields[fields.length - 1] === '') fields.pop();
  let uris: string[] | undefined;
  for (const f of fields.slice(1)) {
    const eq = f.indexOf('=');
    const name = f.slice(0, eq);
    const value = f.slice(eq + 1);
    if (eq <= 0 || !EXT_NAME.test(name)) return { ok: false, error: `malformed field "${f}"` };
    if (name === 'rua') {
      if (uris) return { ok: false, error: 'more than one rua field' };
      uris = value.split(/[ \t]*,[ \t]*/);
      if (uris.some((u) => u === '' || /[\s;]/.test(u))) return { ok: false, error: `malformed rua "${value}"` };
    } else if (!EXT_VALUE.test(value)) {
      return { ok: false, error: `malformed field "${f}"` };
    }
  }
  if (!uris) return { ok: false, error: 'no rua field' };
  const rua = uris.map(parseUri).filter((r): r is Rua => r !== undefined);
  if (rua.length === 0) return { ok: false, error: 'no usable mailto: or https: URI in rua' };
  return { ok: true, rua };
}

export type Discovery =
  | { readonly kind: 'record'; readonly rua: readonly Rua[] }
  | { readonly kind: 'none'; readonly why: string }
  | { readonly kind: 'tempfail'; readonly why: string };

/** Look up and parse `_smtp._tls.<domain>`. */
export async function discoverRua(domain: string, dns: TxtLookup): Promise<Discovery> {
  const name = `_smtp._tls.${domain}`;
  const r = await dns.txt(name);
  if (r.status === 'tempfail') return { kind: 'tempfail', why: r.reason };
  if (r.status === 'notfound') return { kind: 'none', why: `${name}: ${r.reason}` };
  const candidates = r.records.filter((t) => t.startsWith('v=TLSRPTv1'));
  if (candidates.length !== 1) return { kind: 'none', why: `${name}: ${candidates.length} TLSRPTv1 records (exactly one is required)` };
  const parsed = parseTlsRptRecord(candidates[0]!);
  if (!parsed.ok) return { kind: 'none', why: `${name}: ${parsed.error}` };
  return { kind: 'record', rua: parsed.rua };
}
