/**
 * cidr.ts — the `cidr:` table type (cidr_table(5)): `network/prefix result`
 * rules over IPv4 and IPv6 addresses, with `!pattern` negation and
 * `if pattern` ... `endif` (Postfix 3.2), first match wins.
 *
 * Contract:
 * - Patterns: `a.b.c.d`, `a.b.c.d/len`, IPv6 `x:x::x`, `x::/len`, each also
 *   inside `[...]` (cidr_table(5): "address information may be enclosed inside
 *   []"). Host bits under the mask must be zero. A bad rule (bad address, bad
 *   mask, non-zero host bits, no result, a stray ENDIF ...) is skipped with
 *   Postfix's warning, `cidr map FILE, line N: <why>: skipping this rule`
 *   (dict_cidr.c, cidr_match.c), and the rest of the table works.
 * - Keys: a bare IPv4 or IPv6 address (no brackets), compared in binary, so
 *   `2001:0db8:0::1` equals `2001:db8::1`. A rule applies only to keys of its
 *   own address family: an IPv4 key skips IPv6 rules (also `!pattern` and
 *   `if`), and vice versa (`::ffff:1.2.3.4` is IPv6). A key that is not an
 *   address is simply not found (no rule, not even a `!pattern`, applies).
 * - IPv4 octets are strict decimal: a leading zero (`010.1.2.3`) is not an
 *   address, as with Postfix (which rejects octal notation).
 *
 * Not here: the line grammar and if/endif evaluation (pattern-table.ts).
 */
import { ConfigError } from '../lib/errors.ts';
import { found, NOT_FOUND } from './types.ts';
import type { LookupTable, OpenOptions, TableType } from './types.ts';
import { buildRules, evaluate, fileChanged, isEndif, isIf, loadPatternRules, logicalLines, mapPrefix, RuleSkip } from './pattern-table.ts';
import type { LineParser, LineResult, Place, Rule, Test } from './pattern-table.ts';

/** Parse a dotted-quad IPv4 address (strict: four decimal octets, no leading zeros). */
export function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

/** Parse an IPv6 address (with `::` and an optional trailing dotted quad) into 16 bytes. */
export function parseIPv6(text: string): Uint8Array | undefined {
  if (!/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const parts = s.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseIPv4(p);
        if (!v4) return undefined;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
        continue;
      }
      if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  // A dotted quad is only allowed at the very end.
  if (halves.length === 2 && halves[0]!.includes('.')) return undefined;
  const count = head.length + tail.length;
  if (halves.length === 1 ? count !== 8 : count > 7) return undefined;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** A key or pattern address: IPv4 (4 bytes) or IPv6 (16 bytes). */
export function parseAddress(text: string): Uint8Array | undefined {
  return text.includes(':') ? parseIPv6(text) : parseIPv4(text);
}

export interface Network {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/** True when `addr` lies inside `net` (same family, same leading `prefix` bits). */
export function inNetwork(addr: Uint8Array, net: Network): boolean {
  if (addr.length !== net.bytes.length) return false;
  const full = net.prefix >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== net.bytes[i]) return false;
  const bits = net.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((addr[full]! ^ net.bytes[full]!) & mask) === 0;
}

function formatAddress(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Compress the longest run of zero groups (RFC 5952), as inet_ntop does.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * cidr_match.c cidr_match_parse(): `addr`, `addr/len`, `[addr]`, `[addr]/len`.
 * Throws RuleSkip with Postfix's reason (without ": skipping this rule"), or,
 * when `place` is given (a network in a parameter value), a ConfigError there.
 */
export function parseNetwork(token: string, place?: Place): Network {
  if (place === undefined) return parseNetworkToken(token);
  try {
    return parseNetworkToken(token);
  } catch (err) {
    if (err instanceof RuleSkip) throw new ConfigError(err.reason, place.file, place.line);
    throw err;
  }
}

function parseNetworkToken(token: string): Network {
  let pattern = token;
  let maskSearch: string;
  if (pattern.startsWith('[')) {
    pattern = pattern.slice(1);
    const close = pattern.indexOf(']');
    if (close < 0) throw new RuleSkip(`missing ']' character after "[${pattern}"`);
    const after = pattern.slice(close + 1);
    pattern = pattern.slice(0, close);
    if (after !== '' && !after.startsWith('/')) throw new RuleSkip(`garbage after "[${pattern}]"`);
    maskSearch = after;
  } else {
    const slash = pattern.indexOf('/');
    maskSearch = slash < 0 ? '' : pattern.slice(slash);
    if (slash >= 0) pattern = pattern.slice(0, slash);
  }
  if (!maskSearch.startsWith('/')) {
    const bytes = parseAddress(pattern);
    if (!bytes) throw new RuleSkip(`bad address pattern: "${pattern}"`);
    return { bytes, prefix: bytes.length * 8 };
  }
  const mask = maskSearch.slice(1);
  // CIDR_MATCH_ADDR_FAMILY(): a colon means IPv6.
  const maxBits = pattern.includes(':') ? 128 : 32;
  const bytes = pattern.includes(':') ? parseIPv6(pattern) : parseIPv4(pattern);
  let problem: string | undefined;
  if (!/^[0-9]*$/.test(mask)) problem = 'bad mask value';
  else if (Number(mask || '0') > maxBits) problem = 'bad mask length';
  else if (!bytes) problem = 'bad network value';
  if (problem) throw new RuleSkip(`${problem} in "${pattern}/${mask}"`);
  const prefix = Number(mask || '0');
  const clean = maskAddress(bytes!, prefix);
  if (clean.some((b, i) => b !== bytes![i])) {
    // cidr_table(5): "the other bits in the network_address part must be zero".
    throw new RuleSkip(`non-null host address bits in "${pattern}/${mask}", perhaps you should use "${formatAddress(clean)}/${prefix}" instead`);
  }
  return { bytes: bytes!, prefix };
}

function maskAddress(bytes: Uint8Array, prefix: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bitsHere = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = bytes[i]! & ((0xff << (8 - bitsHere)) & 0xff);
  }
  return out;
}

/** The last key parsed: every rule of one lookup tests the same key. */
let lastKey: string | undefined;
let lastAddr: Uint8Array | undefined;
function cachedAddress(key: string): Uint8Array | undefined {
  if (key !== lastKey) {
    lastKey = key;
    lastAddr = parseAddress(key);
  }
  return lastAddr;
}

/** The test of one network: captures for a hit, null for a miss, undefined for the other family. */
function networkTest(net: Network): Test {
  return (key) => {
    const addr = cachedAddress(key);
    // Postfix cidr_match: an entry applies only to keys of its own address family.
    if (!addr || addr.length !== net.bytes.length) return undefined;
    return inNetwork(addr, net) ? [key] : null;
  };
}

/** Leading `!` and blanks: the negation count decides (dict_cidr_parse_rule()). */
function negations(text: string): { negate: boolean; rest: string } {
  let negate = false;
  let i = 0;
  for (; i < text.length; i++) {
    if (text[i] === '!') negate = !negate;
    else if (!/\s/.test(text[i]!)) break;
  }
  return { negate, rest: text.slice(i) };
}

function cidrRule(text: string, nesting: number): LineResult {
  if (isIf(text)) {
    const { negate, rest } = negations(text.slice(2));
    if (rest.trim() === '') throw new RuleSkip('no address pattern');
    return { kind: 'if', test: networkTest(parseNetworkToken(rest.trim())), negate };
  }
  if (isEndif(text)) {
    if (text.slice(5).trim() !== '') throw new RuleSkip('garbage after ENDIF');
    if (nesting === 0) throw new RuleSkip('ENDIF without IF');
    return { kind: 'endif' };
  }
  const { negate, rest } = negations(text);
  const m = /^(\S*)\s*([\s\S]*)$/.exec(rest)!;
  if (m[1] === '') throw new RuleSkip('no address pattern');
  const net = parseNetworkToken(m[1]!);
  const value = m[2]!.trim();
  if (value === '') throw new RuleSkip('no lookup result');
  return { kind: 'match', test: networkTest(net), negate, result: [value] };
}

/** One cidr_table(5) logical line; a bad one is skipped with dict_cidr.c's warning. */
export const parseCidrLine: LineParser = (text, place, nesting, warn) => {
  try {
    return cidrRule(text, nesting);
  } catch (err) {
    if (!(err instanceof RuleSkip)) throw err;
    warn(`${mapPrefix('cidr', place)}${err.reason}: skipping this rule`);
    return { kind: 'skip' };
  }
};

/** Parse a whole cidr table text (no I/O); warnings go to `warn`. */
export function parseCidrTable(text: string, file: string, warn: (message: string) => void = () => {}): Rule[] {
  return buildRules(logicalLines(text, file, warn), file, 'cidr', parseCidrLine, warn);
}

async function openCidr(name: string, spec: string, options: OpenOptions): Promise<LookupTable> {
  const { rules, path, mtimeMs } = await loadPatternRules('cidr', name, spec, options, parseCidrLine);
  return {
    type: 'cidr',
    name,
    spec,
    keyKind: 'pattern',
    // cidr_table(5): "Patterns are applied in the order as specified in the table".
    lookup: async (key) => {
      // A key that is not an address matches nothing, not even a !pattern.
      if (cachedAddress(key) === undefined) return NOT_FOUND;
      const value = evaluate(rules, key);
      return value === undefined ? NOT_FOUND : found(value);
    },
    isStale: () => fileChanged(path, mtimeMs),
    close: async () => {},
  };
}

export const cidrType: TableType = { type: 'cidr', keyKind: 'pattern', listed: true, open: openCidr };
