/**
 * discover.ts — MTA-STS policy discovery (RFC 8461 §3.1): the
 * `_mta-sts.<domain>` TXT record and its policy `id`.
 *
 * Contract:
 * - `parseStsTxt(text)` is pure and follows the §3.1 ABNF: `v=STSv1` first
 *   (case-sensitive), then fields separated by `;` with optional blanks
 *   around it, a trailing `;` allowed; `id=` 1–32 letters and digits,
 *   exactly once; other fields are extensions (`name=value`, the ABNF's
 *   characters) and are kept but not used. A second `id` is refused (which
 *   policy would it name?).
 * - `discoverSts(resolver, domain)` asks for the TXT RRset (each record's
 *   strings already concatenated without spaces by the resolver), drops
 *   records that do not start with `v=STSv1` then `;`, and answers
 *     `record`   — exactly one remained and it parses;
 *     `none`     — no TXT at all, no STS record, more than one, or the one
 *                  left does not parse (§3.1: "assume the recipient domain
 *                  does not have an available MTA-STS Policy");
 *     `tempfail` — the lookup itself failed.
 *   Neither `none` nor `tempfail` removes a cached policy (§3.1 note, §5.1):
 *   the caller (service.ts) decides that.
 *
 * Not here: fetching the policy, caching.
 */
import type { PolicyResolver } from '../dns/resolver.ts';

export interface StsTxtRecord {
  readonly id: string;
  /** Extension fields, as found. */
  readonly extensions: Readonly<Record<string, string>>;
}

export type StsTxtParse =
  | { readonly ok: true; readonly record: StsTxtRecord }
  | { readonly ok: false; readonly error: string };

export type StsDiscovery =
  | { readonly kind: 'record'; readonly id: string; readonly text: string }
  | { readonly kind: 'none'; readonly why: 'no-record' | 'no-sts-record' | 'multiple' | 'invalid'; readonly detail: string }
  | { readonly kind: 'tempfail'; readonly detail: string };

const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** The owner of the discovery record. */
export function stsTxtName(domain: string): string {
  return `_mta-sts.${domain.replace(/\.$/, '')}`;
}

/** §3.1: records that do not begin with "v=STSv1;" are discarded (blanks before `;` are ABNF-legal). */
export function isStsRecord(text: string): boolean {
  return /^v=STSv1[ \t]*;/.test(text);
}

/** Parse one `v=STSv1; id=...;` record (see the header). */
export function parseStsTxt(text: string): StsTxtParse {
  if (!isStsRecord(text)) return { ok: false, error: 'does not start with "v=STSv1;"' };
  const body = text.replace(/^v=STSv1[ \t]*;[ \t]*/, '').replace(/[ \t]*;?[ \t]*$/, '');
  let id: string | undefined;
  const extensions: Record<string, string> = {};
  for (const field of body === '' ? [] : body.split(/[ \t]*;[ \t]*/)) {
    const eq = field.indexOf('=');
    const name = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? '' : field.slice(eq + 1);
    if (name === 'id') {
      if (id !== undefined) return { ok: false, error: 'more than one "id" field' };
      if (!/^[A-Za-z0-9]{1,32}$/.test(value)) return { ok: false, error: `bad id "${printable(value)}" (1 to 32 letters and digits)` };
      id = value;
    } else if (!EXT_NAME.test(name) || !EXT_VALUE.test(value)) {
      return { ok: false, error: `bad field "${printable(field)}"` };
    } else {
      extensions[name] = value;
    }
  }
  if (id === undefined) return { ok: false, error: 'no "id" field' };
  return { ok: true, record: Object.freeze({ id, extensions: Object.freeze(extensions) }) };
}

function printable(s: string): string {
  const t = s.length > 48 ? `${s.slice(0, 48)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, '?');
}

/** Look up and judge `_mta-sts.<domain>` (see the header). */
export async function discoverSts(resolver: Pick<PolicyResolver, 'txt'>, domain: string): Promise<StsDiscovery> {
  const name = stsTxtName(domain);
  const r = await resolver.txt(name);
  if (r.status === 'tempfail') return { kind: 'tempfail', detail: r.reason };
  if (r.status === 'notfound') return { kind: 'none', why: 'no-record', detail: `no TXT record at ${name} (${r.reason})` };
  const sts = r.records.filter(isStsRecord);
  if (sts.length === 0) return { kind: 'none', why: 'no-sts-record', detail: `no "v=STSv1" TXT record at ${name}` };
  if (sts.length > 1) return { kind: 'none', why: 'multiple', detail: `${sts.length} "v=STSv1" TXT records at ${name} (exactly one is allowed)` };
  const p = parseStsTxt(sts[0]!);
  if (!p.ok) return { kind: 'none', why: 'invalid', detail: `invalid TXT record at ${name}: ${p.error}` };
  return { kind: 'record', id: p.record.id, text: sts[0]! };
}
