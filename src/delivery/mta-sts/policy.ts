/**
 * policy.ts — the MTA-STS policy file (RFC 8461 §3.2): from the bytes the
 * policy host served to a policy value, strictly.
 *
 * Contract: pure, no I/O. `decodePolicyBody(bytes)` accepts UTF-8 text only
 * (a binary body is refused, with the offset of the first bad byte);
 * `parseStsPolicy(text)` applies the §3.2 ABNF:
 *   - lines end in LF or CRLF (`sts-policy-term`); a lone CR, NUL or other
 *     control character is an error; empty lines are tolerated (not in the
 *     ABNF, harmless);
 *   - each line is `key:` *WSP value *WSP, keys case-sensitive
 *     (`sts-policy-ext-name`: a letter or digit, then up to 31 of
 *     letters, digits, `_`, `-`, `.`);
 *   - `version: STSv1`, `mode: enforce|testing|none` and `max_age:` (1–10
 *     digits, at most 31557600) are required, each exactly once;
 *   - `mx:` patterns (`mail.example.com`, `*.example.net`: a wildcard only as
 *     the whole leftmost label, RFC 5321 Domain syntax, stored lower case) —
 *     at least one unless the mode is `none`;
 *   - unknown keys are ignored once their line is well-formed (§3.2: "MUST
 *     be ignored").
 * The error says which line and what is wrong (it is logged and becomes the
 * `sts-policy-invalid` detail).
 *
 * Not here: fetching (fetch.ts), caching (cache.ts), MX matching (match.ts).
 */

export type StsMode = 'enforce' | 'testing' | 'none';

/** RFC 8461 §3.2 max_age upper bound (about one year). */
export const MAX_STS_MAX_AGE = 31557600;

export interface StsPolicy {
  readonly version: 'STSv1';
  readonly mode: StsMode;
  /** `mx:` patterns, lower case, in file order. */
  readonly mx: readonly string[];
  /** Seconds. */
  readonly maxAge: number;
  /** The policy's lines without their terminators (RFC 8460 policy-string). */
  readonly lines: readonly string[];
}

export type StsPolicyParse =
  | { readonly ok: true; readonly policy: StsPolicy }
  | { readonly ok: false; readonly error: string };

export type BodyDecode =
  | { readonly ok: true; readonly text: string }
  | { readonly ok: false; readonly error: string };

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The response body as UTF-8 text (RFC 8461 §3.2: a text/plain resource). */
export function decodePolicyBody(body: Uint8Array): BodyDecode {
  try {
    return { ok: true, text: UTF8.decode(body) };
  } catch {
    return { ok: false, error: `the policy is not UTF-8 text (bad byte at offset ${firstBadByte(body)})` };
  }
}

/** Where UTF-8 decoding first goes wrong (a locator for the log; TextDecoder is the judge). */
function firstBadByte(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    const n = c < 0x80 ? 0 : c >> 5 === 6 ? 1 : c >> 4 === 14 ? 2 : c >> 3 === 30 ? 3 : -1;
    if (n < 0 || i + n >= b.length) return i;
    for (let k = 1; k <= n; k++) if ((b[i + k]! & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return 0;
}

const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
// RFC 5321 Domain: sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str].
const LABEL = '[a-z0-9](?:[a-z0-9-]*[a-z0-9])?';
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})*$`);
// sts-policy-vchar: printable ASCII and any UTF-8 beyond; SP only between them.
const VALUE = /^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$/u;

/** `mail.example.com` or `*.example.net` (wildcard only as the whole leftmost label). */
export function validMxPattern(pattern: string): boolean {
  const p = pattern.toLowerCase();
  const rest = p.startsWith('*.') ? p.slice(2) : p;
  return rest.length <= 253 && DOMAIN.test(rest) && rest.split('.').every((l) => l.length <= 63);
}

interface Fields {
  version?: string;
  mode?: string;
  maxAge?: string;
  mx: string[];
}

/** One line into `fields`; an error text or undefined. */
function takeLine(line: string, n: number, fields: Fields): string | undefined {
  const colon = line.indexOf(':');
  if (colon < 0) return `line ${n}: no "key:" in "${clip(line)}"`;
  const key = line.slice(0, colon);
  const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '');
  if (!KEY.test(key)) return `line ${n}: bad key "${clip(key)}"`;
  if (!VALUE.test(value)) return `line ${n}: bad value for "${key}"`;
  const once = (name: 'version' | 'mode' | 'maxAge'): string | undefined => {
    if (fields[name] !== undefined) return `line ${n}: "${key}" given more than once`;
    fields[name] = value;
    return undefined;
  };
  switch (key) {
    case 'version':
      return once('version');
    case 'mode':
      return once('mode');
    case 'max_age':
      return once('maxAge');
    case 'mx':
      if (!validMxPattern(value)) return `line ${n}: bad mx pattern "${clip(value)}"`;
      fields.mx.push(value.toLowerCase());
      return undefined;
    default:
      return undefined; // RFC 8461 §3.2: unknown fields are ignored.
  }
}

function clip(s: string): string {
  const t = s.length > 64 ? `${s.slice(0, 64)}...` : s;
  return t.replace(/[^\x20-\x7e]/g, '?');
}

/** Parse a policy file (see the header). */
export function parseStsPolicy(text: string): StsPolicyParse {
  const raw = text.split('\n');
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  const fields: Fields = { mx: [] };
  const lines: string[] = [];
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i]!.endsWith('\r') ? raw[i]!.slice(0, -1) : raw[i]!;
    if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) return { ok: false, error: `line ${i + 1}: control character in the policy` };
    if (line.trim() === '') continue;
    const err = takeLine(line, i + 1, fields);
    if (err) return { ok: false, error: err };
    lines.push(line);
  }
  if (fields.version !== 'STSv1') {
    return { ok: false, error: fields.version === undefined ? 'no "version" field' : `unsupported version "${clip(fields.version)}"` };
  }
  const mode = fields.mode;
  if (mode !== 'enforce' && mode !== 'testing' && mode !== 'none') {
    return { ok: false, error: mode === undefined ? 'no "mode" field' : `bad mode "${clip(mode)}"` };
  }
  if (fields.maxAge === undefined) return { ok: false, error: 'no "max_age" field' };
  if (!/^\d{1,10}$/.test(fields.maxAge) || Number(fields.maxAge) > MAX_STS_MAX_AGE) {
    return { ok: false, error: `bad max_age "${clip(fields.maxAge)}" (0 to ${MAX_STS_MAX_AGE} seconds)` };
  }
  if (mode !== 'none' && fields.mx.length === 0) return { ok: false, error: `no "mx" field in mode ${mode}` };
  return {
    ok: true,
    policy: Object.freeze({
      version: 'STSv1', mode, mx: Object.freeze(fields.mx), maxAge: Number(fields.maxAge), lines: Object.freeze(lines),
    }),
  };
}
