/**
 * indexed.ts — sealpost's own indexed table file, used for `hash:`, `btree:`
 * and `lmdb:` (Postfix's Berkeley DB and LMDB files need native libraries;
 * sealpost builds its own with `sealpost postmap`). See docs/table-format.md.
 *
 * Contract:
 * - File names as Postfix's: hash/btree → NAME.db, lmdb → NAME.lmdb.
 * - Layout (little-endian): a 32-byte header (magic `SEALPOSTDB1\0`, order,
 *   record count, slot count, index offset), the records (klen, vlen, key,
 *   value; UTF-8, no NUL terminators — `-N`/`-n` do not apply), then an
 *   open-addressing index of (FNV-1a hash, record offset) slots, a power of
 *   two at least twice the record count, linear probing, offset 0 = empty.
 * - Lookups read the file once into memory; a lookup is one hash, one or two
 *   probes and one byte comparison.
 * - `postmap -s` order: index-slot order for `hash:` (like Berkeley DB's hash
 *   order: not the input order), byte-sorted key order for `btree:`/`lmdb:`.
 * - Writes (build, `-i`, `-d`) rewrite the whole file atomically: a temp file
 *   in the same directory, fsync, rename.
 * - A Berkeley DB or LMDB file made by Postfix is recognised and refused with
 *   the command that rebuilds it.
 *
 * Not here: the source syntax (source-file.ts); locking (a rename is atomic,
 * and concurrent `postmap` runs on one table are the postmaster's problem, as
 * with cdb).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { UserError } from '../lib/errors.ts';
import { foldKey } from './source-file.ts';
import { found, NOT_FOUND } from './types.ts';
import type { LookupResult, LookupTable, OpenOptions, TableType } from './types.ts';
import { openFailure, resolvePath, staleCheck, warnIfOlder, writeFileAtomic } from './file-table.ts';
import type { DupMode } from './cdb.ts';

export const MAGIC = Buffer.from('SEALPOSTDB1\0', 'latin1');
export const HEADER_SIZE = 32;
/** Format limit: offsets are uint32. */
const MAX_FILE = 0xffffffff;

export type IndexedType = 'hash' | 'btree' | 'lmdb';
export const ORDER_HASH = 0;
export const ORDER_SORTED = 1;

/** The on-disk file for a table name. */
export function indexedSuffix(type: IndexedType): string {
  return type === 'lmdb' ? '.lmdb' : '.db';
}

/** FNV-1a 32-bit over bytes [0, len). */
export function fnv1a(bytes: Uint8Array, len: number = bytes.length): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < len; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function slotCountFor(n: number): number {
  let s = 8;
  while (s < n * 2) s *= 2;
  return s;
}

/** Encode entries into a file image. `sorted` writes records in byte order of the keys. */
export function encodeIndexed(entries: Iterable<readonly [string, string]>, sorted: boolean): Buffer {
  let list: Array<[Buffer, Buffer]> = [];
  for (const [k, v] of entries) list.push([Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')]);
  if (sorted) list = list.sort((a, b) => Buffer.compare(a[0], b[0]));
  const slots = slotCountFor(list.length);
  let size = HEADER_SIZE;
  for (const [k, v] of list) size += 8 + k.length + v.length;
  const indexOffset = size;
  size += slots * 8;
  if (size > MAX_FILE) throw new UserError('table would exceed 4 GB, the limit of the sealpost table format: split it');
  const out = Buffer.alloc(size);
  MAGIC.copy(out, 0);
  out.writeUInt8(sorted ? ORDER_SORTED : ORDER_HASH, 12);
  out.writeUInt32LE(list.length, 16);
  out.writeUInt32LE(slots, 20);
  out.writeUInt32LE(indexOffset, 24);
  let pos = HEADER_SIZE;
  const mask = slots - 1;
  for (const [k, v] of list) {
    out.writeUInt32LE(k.length, pos);
    out.writeUInt32LE(v.length, pos + 4);
    k.copy(out, pos + 8);
    v.copy(out, pos + 8 + k.length);
    const h = fnv1a(k);
    let s = h & mask;
    while (out.readUInt32LE(indexOffset + s * 8 + 4) !== 0) s = (s + 1) & mask;
    out.writeUInt32LE(h, indexOffset + s * 8);
    out.writeUInt32LE(pos, indexOffset + s * 8 + 4);
    pos += 8 + k.length + v.length;
  }
  return out;
}

/** What a foreign file looks like, for the error message. */
export function foreignKind(buf: Buffer): string | undefined {
  if (buf.length >= 16) {
    const le = buf.readUInt32LE(12);
    const be = buf.readUInt32BE(12);
    // Berkeley DB meta page magic numbers: hash 0x061561, btree 0x053162.
    if ([0x061561, 0x053162].includes(le) || [0x061561, 0x053162].includes(be)) return "a Berkeley DB file made by Postfix's postmap?";
  }
  // LMDB meta page: MDB_MAGIC 0xBEEFC0DE after the 16-byte page header.
  if (buf.length >= 20 && buf.readUInt32LE(16) === 0xbeefc0de) return "an LMDB file made by Postfix's postmap?";
  return undefined;
}

/** Read-only view of an indexed file image. */
export class IndexedReader {
  readonly count: number;
  readonly sorted: boolean;
  private readonly slots: number;
  private readonly indexOffset: number;
  private scratch = Buffer.alloc(256);

  /** Throws a plain Error naming the problem when the image is not ours or is damaged. */
  constructor(readonly buf: Buffer) {
    if (buf.length < HEADER_SIZE || buf.compare(MAGIC, 0, MAGIC.length, 0, MAGIC.length) !== 0) {
      throw new Error(foreignKind(buf) ?? 'bad magic number');
    }
    this.sorted = buf.readUInt8(12) === ORDER_SORTED;
    this.count = buf.readUInt32LE(16);
    this.slots = buf.readUInt32LE(20);
    this.indexOffset = buf.readUInt32LE(24);
    if (this.slots === 0 || (this.slots & (this.slots - 1)) !== 0 || this.indexOffset + this.slots * 8 !== buf.length) {
      throw new Error('damaged header (truncated file?)');
    }
  }

  /** Find the value bytes for UTF-8 key bytes [0, len) of `key`. */
  private findBytes(key: Buffer, len: number): Buffer | undefined {
    const b = this.buf;
    const h = fnv1a(key, len);
    const mask = this.slots - 1;
    let s = h & mask;
    for (let n = 0; n < this.slots; n++) {
      const at = this.indexOffset + s * 8;
      const rpos = b.readUInt32LE(at + 4);
      if (rpos === 0) return undefined;
      if (b.readUInt32LE(at) === h && b.readUInt32LE(rpos) === len) {
        const k = rpos + 8;
        if (b.compare(key, 0, len, k, k + len) === 0) {
          const vlen = b.readUInt32LE(rpos + 4);
          return b.subarray(k + len, k + len + vlen);
        }
      }
      s = (s + 1) & mask;
    }
    return undefined;
  }

  get(key: string): string | undefined {
    const max = key.length * 3;
    if (this.scratch.length < max) this.scratch = Buffer.alloc(Math.max(max, this.scratch.length * 2));
    const len = this.scratch.write(key, 0, 'utf8');
    return this.findBytes(this.scratch, len)?.toString('utf8');
  }

  private recordAt(rpos: number): [string, string] {
    const b = this.buf;
    const klen = b.readUInt32LE(rpos);
    const vlen = b.readUInt32LE(rpos + 4);
    const k = rpos + 8;
    return [b.toString('utf8', k, k + klen), b.toString('utf8', k + klen, k + klen + vlen)];
  }

  /** Records in file order (sorted for btree/lmdb). */
  *records(): Generator<[string, string]> {
    let pos = HEADER_SIZE;
    for (let i = 0; i < this.count; i++) {
      const rec = this.recordAt(pos);
      pos += 8 + this.buf.readUInt32LE(pos) + this.buf.readUInt32LE(pos + 4);
      yield rec;
    }
  }

  /** Records in index-slot order (the `hash:` sequence order). */
  *slotOrder(): Generator<[string, string]> {
    for (let s = 0; s < this.slots; s++) {
      const rpos = this.buf.readUInt32LE(this.indexOffset + s * 8 + 4);
      if (rpos !== 0) yield this.recordAt(rpos);
    }
  }
}

/** Read and validate NAME.db / NAME.lmdb; a UserError naming the fix when it is not usable. */
export function readIndexedFile(type: IndexedType, name: string, baseDir?: string): { reader: IndexedReader; path: string; shown: string; mtimeMs: number; st: Stats } {
  const path = `${resolvePath(name, baseDir)}${indexedSuffix(type)}`;
  const shown = `${name}${indexedSuffix(type)}`;
  let buf: Buffer;
  let st: Stats;
  try {
    st = statSync(path);
    buf = readFileSync(path);
  } catch (err) {
    throw openFailure(type, name, shown, err);
  }
  try {
    return { reader: new IndexedReader(buf), path, shown, mtimeMs: st.mtimeMs, st };
  } catch (err) {
    throw new UserError(`${shown}: not a sealpost table (${(err as Error).message}): rebuild it with "sealpost postmap ${type}:${name}"`);
  }
}

/**
 * Collects entries for a new or updated file, with Berkeley DB's duplicate
 * semantics: `warn`/`ignore` keep the first value, `replace` the last.
 */
export class IndexedBuilder {
  private readonly map: Map<string, string>;

  constructor(
    private readonly dup: DupMode,
    existing?: Iterable<readonly [string, string]>,
  ) {
    this.map = new Map(existing ?? []);
  }

  /** Returns true when the key already existed. */
  put(key: string, value: string): boolean {
    const exists = this.map.has(key);
    if (!exists || this.dup === 'replace') this.map.set(key, value);
    return exists;
  }

  /** Returns true when the key existed. */
  delete(key: string): boolean {
    return this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }

  image(type: IndexedType): Buffer {
    return encodeIndexed(this.map, type !== 'hash');
  }
}

/** Write an image for `type:name` atomically. */
export function writeIndexedFile(type: IndexedType, name: string, image: Uint8Array, mode = 0o644, baseDir?: string): void {
  const path = `${resolvePath(name, baseDir)}${indexedSuffix(type)}`;
  writeFileAtomic(path, `${path}.tmp.${process.pid}`, image, mode);
}

class IndexedTable implements LookupTable {
  readonly keyKind = 'fixed' as const;
  private readonly fold: boolean;

  constructor(
    readonly type: IndexedType,
    readonly name: string,
    readonly spec: string,
    private readonly reader: IndexedReader,
    options: OpenOptions,
    private readonly stale: () => boolean,
  ) {
    this.fold = options.fold ?? true;
  }

  async lookup(key: string): Promise<LookupResult> {
    const v = this.reader.get(this.fold ? foldKey(key) : key);
    return v === undefined ? NOT_FOUND : found(v);
  }

  async *sequence(): AsyncIterable<readonly [string, string]> {
    yield* this.type === 'hash' ? this.reader.slotOrder() : this.reader.records();
  }

  isStale(): boolean {
    return this.stale();
  }

  async close(): Promise<void> {}
}

function opener(type: IndexedType) {
  return async (name: string, spec: string, options: OpenOptions): Promise<LookupTable> => {
    const { reader, path, shown, mtimeMs, st } = readIndexedFile(type, name, options.baseDir);
    warnIfOlder(shown, name, resolvePath(name, options.baseDir), mtimeMs, options.warn);
    return new IndexedTable(type, name, spec, reader, options, staleCheck(path, st));
  };
}

export const hashType: TableType = { type: 'hash', keyKind: 'fixed', listed: true, open: opener('hash') };
export const btreeType: TableType = { type: 'btree', keyKind: 'fixed', listed: true, open: opener('btree') };
export const lmdbType: TableType = { type: 'lmdb', keyKind: 'fixed', listed: true, open: opener('lmdb') };
