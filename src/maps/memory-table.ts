/**
 * memory-table.ts — a fixed-string LookupTable over an in-memory Map, the
 * common body of `inline:` and `texthash:` (both hold every entry in memory).
 *
 * Contract: keys in `map` are already folded when `fold` is true; lookups
 * fold the query key the same way. `sequence()` yields entries in map order.
 * Such tables are never stale: inline has no file, and texthash is not
 * reopened on change (dict_thash, like Postfix).
 */
import { foldKey } from './source-file.ts';
import { found, NOT_FOUND } from './types.ts';
import type { LookupResult, LookupTable } from './types.ts';

export function memoryTable(type: string, name: string, spec: string, map: ReadonlyMap<string, string>, fold: boolean): LookupTable {
  return {
    type,
    name,
    spec,
    keyKind: 'fixed',
    lookup: async (key: string): Promise<LookupResult> => {
      const v = map.get(fold ? foldKey(key) : key);
      return v === undefined ? NOT_FOUND : found(v);
    },
    sequence: async function* () {
      yield* map;
    },
    isStale: () => false,
    close: async () => {},
  };
}
