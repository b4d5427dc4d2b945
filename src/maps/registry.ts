/**
 * registry.ts — `type:name` → LookupTable. The one place that knows every
 * table type, and the table cache daemons use (TableSet).
 *
 * Contract:
 * - `openTable(spec)` splits at the first colon (Postfix split_at()); a spec
 *   without a colon uses `defaultType` (`$default_database_type`, default
 *   `hash`). An empty type or name is Postfix's `open dictionary: expecting
 *   "type:name" form instead of "SPEC"`; an unknown type is `unsupported
 *   dictionary type: foo` plus the list of supported types. Both UserErrors.
 * - `supportedTypes()` lists the types shown by `postconf -m`, sorted.
 * - `TableSet` opens each spec once and shares it; `reopen()` opens every
 *   table again and swaps them in only when all opened (a broken table leaves
 *   the old set in place and throws), then closes the old instances.
 *
 * Not here: the table formats (one module per type), lookup orders
 * (domain-walk.ts).
 */
import { UserError } from '../lib/errors.ts';
import type { LookupTable, OpenOptions, TableType } from './types.ts';
import { btreeType, hashType, lmdbType } from './indexed.ts';
import { cdbType } from './cdb.ts';
import { texthashType } from './texthash.ts';
import { inlineType } from './inline.ts';
import { staticType } from './static.ts';
import { failType } from './fail.ts';
import { regexpType } from './regexp.ts';
import { pcreType } from './pcre.ts';
import { cidrType } from './cidr.ts';
import { socketmapType } from './socketmap.ts';

const TYPES: readonly TableType[] = [
  hashType,
  btreeType,
  lmdbType,
  cdbType,
  texthashType,
  inlineType,
  staticType,
  failType,
  regexpType,
  pcreType,
  cidrType,
  socketmapType,
];

const BY_NAME: ReadonlyMap<string, TableType> = new Map(TYPES.map((t) => [t.type, t]));

/** The descriptor of a type, or undefined. */
export function tableType(type: string): TableType | undefined {
  return BY_NAME.get(type);
}

/** Types listed by `postconf -m`, sorted. */
export function supportedTypes(): string[] {
  return TYPES.filter((t) => t.listed)
    .map((t) => t.type)
    .sort();
}

export interface OpenTableOptions extends OpenOptions {
  /** `$default_database_type`, used for a spec without `type:`. Default `hash`. */
  readonly defaultType?: string;
  /** postmap -N / -n: NUL-terminated keys and values (only `cdb:` files can carry them). */
  readonly nul?: 'auto' | 'with' | 'without';
}

/** A parsed `type:name`. */
export interface TableSpec {
  readonly type: string;
  readonly name: string;
}

/** Split a spec as Postfix does (first colon); validates the form, not the type. */
export function parseSpec(spec: string, defaultType = 'hash'): TableSpec {
  const colon = spec.indexOf(':');
  if (colon < 0) {
    if (spec === '') throw new UserError(`open dictionary: expecting "type:name" form instead of "${spec}"`);
    return { type: defaultType, name: spec };
  }
  const type = spec.slice(0, colon);
  const name = spec.slice(colon + 1);
  // dict_open.c: "open dictionary: expecting "type:name" form instead of ..."
  if (type === '' || name === '') throw new UserError(`open dictionary: expecting "type:name" form instead of "${spec}"`);
  return { type, name };
}

/** The error for an unknown type: Postfix's words, plus what is supported. */
export function unsupportedType(type: string): UserError {
  return new UserError(`unsupported dictionary type: ${type} (supported: ${supportedTypes().join(' ')})`);
}

/** Open one table. Throws UserError for a bad spec, an unknown type or an unusable table. */
export async function openTable(spec: string, options: OpenTableOptions = {}): Promise<LookupTable> {
  const { type, name } = parseSpec(spec, options.defaultType ?? 'hash');
  const t = BY_NAME.get(type);
  if (!t) throw unsupportedType(type);
  const fullSpec = spec.includes(':') ? spec : `${type}:${name}`;
  return t.open(name, fullSpec, options);
}

/**
 * The tables a daemon uses: each spec opened once (callers share the
 * instance), reopened together on reload.
 */
export class TableSet {
  private tables = new Map<string, Promise<LookupTable>>();

  constructor(private options: OpenTableOptions = {}) {}

  /** The open table for `spec` (opened on first use). */
  get(spec: string): Promise<LookupTable> {
    let p = this.tables.get(spec);
    if (!p) {
      p = openTable(spec, this.options);
      // A failed open is not cached: the next get() tries again.
      p.catch(() => {
        if (this.tables.get(spec) === p) this.tables.delete(spec);
      });
      this.tables.set(spec, p);
    }
    return p;
  }

  /** Specs currently open. */
  specs(): string[] {
    return [...this.tables.keys()];
  }

  /** True when any file behind an open table changed since it was opened. */
  async anyStale(): Promise<boolean> {
    for (const p of this.tables.values()) {
      const t = await p.catch(() => undefined);
      if (t?.isStale?.()) return true;
    }
    return false;
  }

  /**
   * Reopen every table. All-or-nothing: when one fails, the new instances are
   * closed, the old ones stay in use, and the error is thrown.
   */
  async reopen(options: OpenTableOptions = this.options): Promise<void> {
    const specs = this.specs();
    const results = await Promise.allSettled(specs.map((s) => openTable(s, options)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.close() : undefined)));
      throw failed.reason;
    }
    const old = this.tables;
    this.options = options;
    this.tables = new Map(specs.map((s, i) => [s, Promise.resolve((results[i] as PromiseFulfilledResult<LookupTable>).value)]));
    await closeAll(old);
  }

  /** Close every table. */
  async close(): Promise<void> {
    const old = this.tables;
    this.tables = new Map();
    await closeAll(old);
  }
}

async function closeAll(tables: Map<string, Promise<LookupTable>>): Promise<void> {
  await Promise.all([...tables.values()].map(async (p) => (await p.catch(() => undefined))?.close()));
}
