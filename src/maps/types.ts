/**
 * types.ts — the one `type:name` lookup-table interface that every part of
 * sealpost shares (routing, TLS policy, relay control, SASL passwords ...).
 *
 * Contract:
 * - `lookup(key)` never throws for a table problem: it returns a `LookupResult`
 *   that is `found`, `notfound`, or `error`. An `error` (unreachable socketmap,
 *   unreadable or corrupt file) is NOT "not found": callers must fail closed
 *   on it (defer, never downgrade). This mirrors Postfix's `dict->error`
 *   (DICT_ERR_RETRY) versus a null result.
 * - Key folding: fixed-string tables (hash, btree, lmdb, cdb, texthash, inline,
 *   and the like) fold the query key to lowercase when `fold` was requested at
 *   open time (Postfix's DICT_FLAG_FOLD_FIX, the default for every table that a
 *   daemon opens and for `postmap -q` without `-f`). Pattern tables (regexp,
 *   pcre, cidr) never fold: the pattern says whether it is case-insensitive.
 * - Tables are opened through `openTable()` in registry.ts; a table is reopened
 *   on reload by opening it again (the old instance is closed).
 *
 * Not here: lookup *orders* (transport(5), TLS policy walk) — see domain-walk.ts.
 */

export type LookupError = {
  /** One line naming the table and the problem, e.g. `socketmap:inet:127.0.0.1:8461:postfix: connect: Connection refused`. */
  readonly message: string;
};

export type LookupResult =
  | { readonly kind: 'found'; readonly value: string }
  | { readonly kind: 'notfound' }
  | { readonly kind: 'error'; readonly error: LookupError };

export const NOT_FOUND: LookupResult = Object.freeze({ kind: 'notfound' });
export function found(value: string): LookupResult {
  return { kind: 'found', value };
}
export function lookupError(message: string): LookupResult {
  return { kind: 'error', error: { message } };
}

/** What kind of keys a table holds: decides folding and which lookup orders apply. */
export type KeyKind = 'fixed' | 'pattern';

export interface OpenOptions {
  /** Fold fixed-string query keys to lowercase (Postfix DICT_FLAG_FOLD_FIX). Default true. */
  readonly fold?: boolean;
  /** Directory used to resolve relative file names (normally the config directory). */
  readonly baseDir?: string;
  /** Called with one-line warnings (e.g. "database X is older than source file X"). */
  readonly warn?: (message: string) => void;
  /** Socketmap and other network tables: per-request deadline in ms. */
  readonly timeoutMs?: number;
}

export interface LookupTable {
  /** Table type, e.g. `hash`. */
  readonly type: string;
  /** Table name as given after the colon, e.g. `/etc/sealpost/tls_policy`. */
  readonly name: string;
  /** `type:name` exactly as configured. */
  readonly spec: string;
  readonly keyKind: KeyKind;
  lookup(key: string): Promise<LookupResult>;
  /** Every (key, value) pair in table order, for `postmap -s`. Absent when the type cannot enumerate. */
  sequence?(): AsyncIterable<readonly [string, string]>;
  /** True when the file behind the table changed since it was opened (a reload should reopen it). */
  isStale?(): boolean;
  close(): Promise<void>;
}

/** Opens one table type. Registered per type in registry.ts. */
export type TableOpener = (name: string, spec: string, options: OpenOptions) => Promise<LookupTable>;

/**
 * One table type (`hash`, `regexp`, `socketmap`, ...) as registry.ts knows it.
 * Each table module exports its descriptor(s); registry.ts lists them all.
 */
export interface TableType {
  readonly type: string;
  readonly keyKind: KeyKind;
  /** Shown by `postconf -m` (Postfix lists every type it can open). */
  readonly listed: boolean;
  readonly open: TableOpener;
}
