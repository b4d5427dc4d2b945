/**
 * inline.ts — the `inline:{ key=value, { key = text with spaces } }` table
 * (Postfix's dict_inline): a read-only in-memory table written in main.cf.
 *
 * Contract (dict_inline.c, split_nameval.c):
 * - The name must be one balanced `{...}` group; elements are separated by
 *   commas and/or whitespace outside braces; an element is `key=value`, or
 *   `{ key = value }` whose value may hold spaces and commas.
 * - `key = value` spacing is allowed only inside braces (split_nameval trims
 *   around `=`); a later duplicate key replaces the earlier one silently.
 * - Errors are Postfix's texts: `bad syntax`, `empty table`, `missing '='
 *   after attribute name`, `missing attribute name`, `missing '}' in ...`,
 *   `syntax error after '}' in ...`, each followed by
 *   `: "inline:NAME"; need "inline:{name=value...}"`.
 * - Keys fold to lowercase (fixed-string table) unless `fold: false`.
 *
 * Not here: file I/O (there is none).
 */
import { UserError } from '../lib/errors.ts';
import { balancedLength, extractBraced, splitOutsideBraces } from './braces.ts';
import { foldKey, isSpace } from './source-file.ts';
import { memoryTable } from './memory-table.ts';
import type { LookupTable, OpenOptions, TableType } from './types.ts';

/** split_nameval(): `name = value` → [name, value], or an error text. */
export function splitNameValue(text: string): [string, string] | { error: string } {
  let i = 0;
  while (i < text.length && isSpace(text[i])) i++;
  if (i >= text.length || text[i] === '=') return { error: 'missing attribute name' };
  const start = i;
  while (i < text.length && !isSpace(text[i]) && text[i] !== '=') i++;
  const name = text.slice(start, i);
  while (i < text.length && isSpace(text[i])) i++;
  if (text[i] !== '=') return { error: "missing '=' after attribute name" };
  i++;
  while (i < text.length && isSpace(text[i])) i++;
  let e = text.length;
  while (e > i && isSpace(text[e - 1])) e--;
  return [name, text.slice(i, e)];
}

/** Parse an inline: name into its pairs (in order, duplicates included). */
export function parseInline(name: string): Array<[string, string]> {
  const fail = (what: string) => new UserError(`${what}: "inline:${name}"; need "inline:{name=value...}"`);
  const len = balancedLength(name);
  if (len === 0 || len !== name.length || len === 2) throw fail('bad syntax');
  const pairs: Array<[string, string]> = [];
  for (const token of splitOutsideBraces(name.slice(1, -1))) {
    let text = token;
    if (token.startsWith('{')) {
      const r = extractBraced(token);
      if ('error' in r) throw fail(r.error);
      text = r.text;
    }
    const nv = splitNameValue(text);
    if (!Array.isArray(nv)) throw fail(nv.error);
    pairs.push(nv);
  }
  if (pairs.length === 0) throw fail('empty table');
  return pairs;
}

export async function openInline(name: string, spec: string, options: OpenOptions): Promise<LookupTable> {
  const fold = options.fold ?? true;
  const map = new Map<string, string>();
  for (const [k, v] of parseInline(name)) map.set(fold ? foldKey(k) : k, v);
  return memoryTable('inline', name, spec, map, fold);
}

export const inlineType: TableType = { type: 'inline', keyKind: 'fixed', listed: true, open: openInline };
