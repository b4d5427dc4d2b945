/**
 * fail.ts — the `fail:` table: every lookup is an *error* result (Postfix's
 * dict_fail, DICT_ERR_RETRY), never "not found". The name is for logging
 * only. It exists to test that callers fail closed on table errors.
 *
 * Contract: lookup() returns `{ kind: 'error' }` with the message
 * `fail:NAME: Application error` (the errno text Postfix prints); no sequence.
 *
 * Not here: anything else.
 */
import { lookupError } from './types.ts';
import type { LookupResult, LookupTable, OpenOptions, TableType } from './types.ts';

export async function openFail(name: string, spec: string, _options: OpenOptions): Promise<LookupTable> {
  const result = lookupError(`${spec}: Application error`);
  return {
    type: 'fail',
    name,
    spec,
    keyKind: 'fixed',
    lookup: async (): Promise<LookupResult> => result,
    close: async () => {},
  };
}

export const failType: TableType = { type: 'fail', keyKind: 'fixed', listed: true, open: openFail };
