/**
 * static.ts — the `static:` table: every lookup returns the table name
 * (`static:value`, or `static:{ text with spaces }` with the braces and the
 * surrounding whitespace removed), as Postfix's dict_static.
 *
 * Contract: never "not found", never an error; keys are ignored; no
 * `sequence` (postmap -s: "sequence operation is not supported").
 *
 * Not here: anything file based.
 */
import { UserError } from '../lib/errors.ts';
import { extractBraced } from './braces.ts';
import { found } from './types.ts';
import type { LookupResult, LookupTable, OpenOptions, TableType } from './types.ts';

/** The value a static: name stands for; throws Postfix's syntax error. */
export function staticValue(name: string): string {
  if (!name.startsWith('{')) return name;
  const r = extractBraced(name);
  // dict_static.c: "bad static:name syntax: missing '}' in ..."
  if ('error' in r) throw new UserError(`bad static:name syntax: ${r.error}`);
  return r.text;
}

export async function openStatic(name: string, spec: string, _options: OpenOptions): Promise<LookupTable> {
  const value = staticValue(name);
  const result = found(value);
  return {
    type: 'static',
    name,
    spec,
    keyKind: 'fixed',
    lookup: async (): Promise<LookupResult> => result,
    close: async () => {},
  };
}

export const staticType: TableType = { type: 'static', keyKind: 'fixed', listed: true, open: openStatic };
