/**
 * braces.ts — Postfix's `{ ... }` grouping helpers (balpar(), extpar(),
 * mystrtokq() with CHARS_BRACE), used by `inline:` and `static:` names.
 *
 * Contract: pure string functions; errors are returned as Postfix's texts
 * ("missing '}' in ...", "syntax error after '}' in ..."), never thrown.
 *
 * Not here: the table types themselves (inline.ts, static.ts).
 */
import { isSpace } from './source-file.ts';

/** Length of the balanced `{...}` group at the start of `s`, or 0 when `s` does not start with one or it is unbalanced. */
export function balancedLength(s: string): number {
  if (s[0] !== '{') return 0;
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i + 1;
  }
  return 0;
}

/**
 * extpar(EXTPAR_FLAG_STRIP): `{ text }` → `text` (braces and surrounding
 * whitespace removed). Returns `{ error }` in Postfix's words when malformed.
 */
export function extractBraced(s: string): { text: string } | { error: string } {
  const len = balancedLength(s);
  if (len === 0) return { error: `missing '}' in "${s}"` };
  if (len !== s.length) return { error: `syntax error after '}' in "${s}"` };
  let inner = s.slice(1, len - 1);
  let b = 0;
  while (b < inner.length && isSpace(inner[b])) b++;
  let e = inner.length;
  while (e > b && isSpace(inner[e - 1])) e--;
  inner = inner.slice(b, e);
  return { text: inner };
}

/** mystrtokq(CHARS_COMMA_SP, CHARS_BRACE): split on commas/whitespace outside braces. */
export function splitOutsideBraces(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  const isSep = (c: string | undefined) => c === ',' || isSpace(c);
  while (i < s.length) {
    while (i < s.length && isSep(s[i])) i++;
    if (i >= s.length) break;
    const start = i;
    let depth = 0;
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '{') depth++;
      else if (c === '}' && depth > 0) depth--;
      else if (depth === 0 && isSep(c)) break;
    }
    out.push(s.slice(start, i));
  }
  return out;
}
