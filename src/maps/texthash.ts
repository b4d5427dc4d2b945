/**
 * texthash.ts — the `texthash:` table (Postfix's dict_thash): the postmap
 * source file read straight into memory, no `postmap` step needed.
 *
 * Contract:
 * - Same syntax as postmap(1) sources (source-file.ts), with dict_thash's
 *   wording: `FILE, line N: expected format: key whitespace value -- ignoring
 *   this line`, `FILE, line N: duplicate entry: "KEY"` (the key as written;
 *   the first entry wins).
 * - Keys fold to lowercase unless `fold: false`.
 * - Like Postfix, the table is NOT reopened when the file changes
 *   (isStale() is always false): a reload or restart picks up edits.
 * - A missing or unreadable file is a UserError naming the file.
 *
 * Not here: writing (texthash cannot be built: postmap refuses it).
 */
import { readFileSync } from 'node:fs';
import { foldKey, parseSource, problemMessage } from './source-file.ts';
import { memoryTable } from './memory-table.ts';
import type { LookupTable, OpenOptions, TableType } from './types.ts';
import { openFailure, resolvePath } from './file-table.ts';

/** Parse texthash source text into a map; warnings go to `warn` in file order. */
export function loadTexthash(text: string, file: string, fold: boolean, warn?: (m: string) => void): Map<string, string> {
  const map = new Map<string, string>();
  for (const item of parseSource(text)) {
    if (item.kind !== 'entry') {
      warn?.(problemMessage(file, item, 'texthash'));
      continue;
    }
    const key = fold ? foldKey(item.key) : item.key;
    if (map.has(key)) {
      warn?.(`${file}, line ${item.line}: duplicate entry: "${item.key}"`);
      continue;
    }
    map.set(key, item.value);
  }
  return map;
}

export async function openTexthash(name: string, spec: string, options: OpenOptions): Promise<LookupTable> {
  const fold = options.fold ?? true;
  let text: string;
  try {
    text = readFileSync(resolvePath(name, options.baseDir), 'utf8');
  } catch (err) {
    throw openFailure('texthash', name, name, err, false);
  }
  const map = loadTexthash(text, name, fold, options.warn);
  return memoryTable('texthash', name, spec, map, fold);
}

export const texthashType: TableType = { type: 'texthash', keyKind: 'fixed', listed: true, open: openTexthash };
