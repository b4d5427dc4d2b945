/**
 * protocols.ts — smtp_tls_protocols / smtp_tls_mandatory_protocols /
 * `protocols=` (postconf(5); tls_protocol_mask() in tls_misc.c) → Node's
 * minVersion/maxVersion.
 *
 * Syntax: `>=TLSv1.2`, `<=TLSv1.3`, hex `>=0x0303` (Postfix ≥3.6), and the
 * legacy include/exclude forms `!SSLv2, !SSLv3` / `TLSv1.2 TLSv1.3`. main.cf
 * separates items with whitespace, commas or colons; a policy table value can
 * only use colons (the parser already split on whitespace and commas), so the
 * same splitter serves both. Empty = every protocol.
 *
 * Contract: pure; returns `{ error }` in one line for an unknown name or an
 * empty range. SSLv2/SSLv3 are known names but never enabled (Node has
 * neither). Node takes one contiguous range: when exclusions leave a hole
 * (`!TLSv1.1` with TLSv1 and TLSv1.2 on) the highest contiguous run is used —
 * stricter than Postfix's OpenSSL bit mask, never weaker.
 *
 * Not here: ciphers (ciphers.ts).
 */

/** Node's protocol names, weakest first. */
export const NODE_PROTOCOLS = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'] as const;
export type NodeProtocol = (typeof NODE_PROTOCOLS)[number];

/** Every name Postfix knows, with its wire version. */
const VERSIONS: ReadonlyMap<string, number> = new Map([
  ['sslv2', 0x0002],
  ['sslv3', 0x0300],
  ['tlsv1', 0x0301],
  ['tlsv1.1', 0x0302],
  ['tlsv1.2', 0x0303],
  ['tlsv1.3', 0x0304],
]);
const NODE_VERSION: ReadonlyMap<number, NodeProtocol> = new Map([
  [0x0301, 'TLSv1'],
  [0x0302, 'TLSv1.1'],
  [0x0303, 'TLSv1.2'],
  [0x0304, 'TLSv1.3'],
]);

export interface ProtocolRange {
  readonly min: NodeProtocol;
  readonly max: NodeProtocol;
}

function version(name: string): number | undefined {
  const v = VERSIONS.get(name.toLowerCase());
  if (v !== undefined) return v;
  // Postfix ≥3.6: a hex protocol version, `0x0303` or `0303`.
  const m = /^(?:0x)?([0-9a-f]{4})$/i.exec(name);
  return m ? parseInt(m[1]!, 16) : undefined;
}

/** Parse a protocol list; `separators` is a regex class of item separators. */
export function parseProtocols(text: string, separators: RegExp = /[\s,:]+/): ProtocolRange | { error: string } {
  let lo = 0x0301;
  let hi = 0x0304;
  const include = new Set<number>();
  const exclude = new Set<number>();
  for (const item of text.split(separators).filter((s) => s !== '')) {
    let m: RegExpExecArray | null;
    if ((m = /^(>=|<=|!)(.*)$/.exec(item))) {
      const v = version(m[2]!);
      if (v === undefined) return { error: `Invalid TLS protocol list "${text}": unknown protocol "${m[2]}"` };
      if (m[1] === '>=') lo = Math.max(lo, v);
      else if (m[1] === '<=') hi = Math.min(hi, v);
      else exclude.add(v);
    } else {
      const v = version(item);
      if (v === undefined) return { error: `Invalid TLS protocol list "${text}": unknown protocol "${item}"` };
      include.add(v);
    }
  }
  const enabled = [...NODE_VERSION.keys()].filter((v) => v >= lo && v <= hi && !exclude.has(v) && (include.size === 0 || include.has(v)));
  if (enabled.length === 0) return { error: `Invalid TLS protocol list "${text}": no protocol left enabled` };
  // Highest contiguous run (Node has min/max only).
  let start = enabled.length - 1;
  while (start > 0 && enabled[start - 1] === enabled[start]! - 1) start--;
  return { min: NODE_VERSION.get(enabled[start]!)!, max: NODE_VERSION.get(enabled[enabled.length - 1]!)! };
}

/** main.cf form: whitespace, commas and colons separate. */
export function parseMainCfProtocols(text: string): ProtocolRange | { error: string } {
  return parseProtocols(text, /[\s,:]+/);
}

/** Policy table form: colon-separated only. */
export function parseTableProtocols(text: string): ProtocolRange | { error: string } {
  return parseProtocols(text, /:+/);
}
