/**
 * cdb.ts — D. J. Bernstein's constant database format (cdb), read and
 * written byte for byte as Postfix's `postmap cdb:` (tinycdb) builds it,
 * and the `cdb:` lookup table on top of it.
 *
 * Format (http://cr.yp.to/cdb/cdb.txt): a 2048-byte header of 256
 * (position, slot count) pairs, then records (klen, vlen, key, value), then
 * 256 open-addressing hash tables of (hash, record position) slots. All
 * integers are little-endian uint32; hash h = ((h << 5) + h) ^ c from 5381;
 * table = h & 255, first slot = (h >>> 8) % slots, linear probing.
 *
 * Contract (tinycdb cdb_make.c / cdb_make_put.c, Postfix dict_cdb.c):
 * - Records are written in insertion order; each table has 2 × (its record
 *   count) slots, filled in insertion order; an empty table points at the
 *   position where it would have started (so the file is deterministic and
 *   identical to Postfix's for the same input).
 * - Duplicates: `warn` (Postfix default, CDB_PUT_INSERT) keeps the first and
 *   reports the duplicate; `replace` (-r, CDB_PUT_REPLACE) removes every
 *   earlier record of the key and appends the new one; `ignore` (-w,
 *   CDB_PUT_ADD) appends unconditionally (both records stay; lookups find the
 *   first), silently.
 * - Keys and values carry no trailing NUL unless `-N` (dict_cdb.c: "choose a
 *   default to not append a null byte when creating a cdb"); lookups try with
 *   and without the NUL unless told which (DICT_FLAG_TRY1NULL/TRY0NULL).
 * - The file is written to NAME.cdb.tmp, fsynced, and renamed to NAME.cdb.
 *
 * Not here: the postmap source syntax (source-file.ts), key folding policy
 * beyond the `fold` open option.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { UserError } from '../lib/errors.ts';
import { foldKey } from './source-file.ts';
import { found, NOT_FOUND } from './types.ts';
import type { LookupResult, LookupTable, OpenOptions, TableType } from './types.ts';
import { openFailure, resolvePath, staleCheck, warnIfOlder, writeFileAtomic } from './file-table.ts';

const HEADER = 2048;

/** cdb hash over bytes. */
export function cdbHash(bytes: Uint8Array): number {
  let h = 5381;
  for (let i = 0; i < bytes.length; i++) h = (((h << 5) + h) ^ bytes[i]!) >>> 0;
  return h >>> 0;
}

export type DupMode = 'warn' | 'replace' | 'ignore';

/** Builds a cdb image in memory with tinycdb's put semantics. */
export class CdbBuilder {
  /** Record bytes (klen, vlen, key, value) back to back, as they will be written. */
  private data = Buffer.alloc(1 << 16);
  private used = 0;
  private readonly starts: number[] = [];
  private readonly sizes: number[] = [];
  private readonly hashes: number[] = [];
  /** Records removed by a later -r put (indexes). */
  private readonly dead = new Set<number>();
  /** Key bytes (as latin1 text) → index of its latest live record. */
  private readonly byKey = new Map<string, number>();

  constructor(private readonly dup: DupMode = 'warn') {}

  /** Add a record. Returns true when the key already existed (a duplicate). */
  put(key: Uint8Array, value: Uint8Array): boolean {
    const k = Buffer.isBuffer(key) ? key : Buffer.from(key);
    const id = k.toString('latin1');
    const prior = this.byKey.get(id);
    const exists = prior !== undefined;
    if (exists && this.dup === 'warn') return true; // CDB_PUT_INSERT: keep the first
    // CDB_PUT_REPLACE removes the earlier record; CDB_PUT_ADD (ignore) keeps both.
    if (exists && this.dup === 'replace') this.dead.add(prior);
    const size = 8 + k.length + value.length;
    this.reserve(size);
    const at = this.used;
    this.data.writeUInt32LE(k.length, at);
    this.data.writeUInt32LE(value.length, at + 4);
    this.data.set(k, at + 8);
    this.data.set(value, at + 8 + k.length);
    this.used += size;
    const index = this.starts.length;
    this.starts.push(at);
    this.sizes.push(size);
    this.hashes.push(cdbHash(k));
    if (!exists || this.dup === 'replace') this.byKey.set(id, index);
    return exists;
  }

  private reserve(n: number): void {
    if (this.used + n <= this.data.length) return;
    let cap = this.data.length * 2;
    while (cap < this.used + n) cap *= 2;
    const next = Buffer.alloc(cap);
    this.data.copy(next, 0, 0, this.used);
    this.data = next;
  }

  /** The finished file image. */
  finish(): Buffer {
    const live: number[] = [];
    let dataBytes = 0;
    for (let i = 0; i < this.starts.length; i++) {
      if (this.dead.has(i)) continue;
      live.push(i);
      dataBytes += this.sizes[i]!;
    }
    const total = HEADER + dataBytes + live.length * 16;
    if (total > 0xffffffff) throw new UserError('cdb file would exceed 4 GB: split the table');
    const out = Buffer.alloc(total);
    const positions = new Uint32Array(this.starts.length);
    let pos = HEADER;
    if (this.dead.size === 0) {
      this.data.copy(out, HEADER, 0, this.used);
      for (const i of live) positions[i] = HEADER + this.starts[i]!;
      pos += this.used;
    } else {
      for (const i of live) {
        positions[i] = pos;
        this.data.copy(out, pos, this.starts[i]!, this.starts[i]! + this.sizes[i]!);
        pos += this.sizes[i]!;
      }
    }
    const perTable: number[][] = Array.from({ length: 256 }, () => []);
    for (const i of live) perTable[this.hashes[i]! & 255]!.push(i);
    for (let t = 0; t < 256; t++) {
      const members = perTable[t]!;
      const slots = members.length * 2;
      out.writeUInt32LE(pos, t * 8);
      out.writeUInt32LE(slots, t * 8 + 4);
      if (slots === 0) continue;
      const hv = new Uint32Array(slots);
      const rp = new Uint32Array(slots);
      for (const i of members) {
        const h = this.hashes[i]!;
        let s = (h >>> 8) % slots;
        while (rp[s] !== 0) if (++s === slots) s = 0;
        hv[s] = h;
        rp[s] = positions[i]!;
      }
      for (let s = 0; s < slots; s++) {
        out.writeUInt32LE(hv[s]!, pos);
        out.writeUInt32LE(rp[s]!, pos + 4);
        pos += 8;
      }
    }
    return out;
  }
}

/** Why a buffer is not a cdb file, or undefined when its header is sane. */
function headerProblem(buf: Buffer): string | undefined {
  if (buf.length < HEADER) return 'file is shorter than the 2048-byte cdb header';
  for (let t = 0; t < 256; t++) {
    const p = buf.readUInt32LE(t * 8);
    const n = buf.readUInt32LE(t * 8 + 4);
    if (p < HEADER || p + n * 8 > buf.length) return `hash table ${t} points outside the file`;
  }
  return undefined;
}

/** Read-only view of a cdb image. */
export class CdbReader {
  /** End of the record area (start of the first hash table). */
  readonly dataEnd: number;

  constructor(readonly buf: Buffer) {
    const problem = headerProblem(buf);
    if (problem) throw new Error(problem);
    let end = buf.length;
    for (let t = 0; t < 256; t++) end = Math.min(end, buf.readUInt32LE(t * 8));
    this.dataEnd = end;
  }

  /** The value of the first record with this key, or undefined. */
  find(key: Uint8Array): Buffer | undefined {
    const b = this.buf;
    const h = cdbHash(key);
    const t = (h & 255) * 8;
    const tpos = b.readUInt32LE(t);
    const slots = b.readUInt32LE(t + 4);
    if (slots === 0) return undefined;
    let s = (h >>> 8) % slots;
    for (let n = 0; n < slots; n++) {
      const at = tpos + s * 8;
      const rpos = b.readUInt32LE(at + 4);
      if (rpos === 0) return undefined;
      if (b.readUInt32LE(at) === h && rpos + 8 <= b.length) {
        const klen = b.readUInt32LE(rpos);
        if (klen === key.length) {
          const vlen = b.readUInt32LE(rpos + 4);
          const kstart = rpos + 8;
          if (kstart + klen + vlen > b.length) throw new Error(`record at offset ${rpos} runs past the end of the file`);
          if (b.compare(key, 0, key.length, kstart, kstart + klen) === 0) return b.subarray(kstart + klen, kstart + klen + vlen);
        }
      }
      if (++s === slots) s = 0;
    }
    return undefined;
  }

  /** Every record in file order (tinycdb cdb_seqnext). */
  *entries(): Generator<[Buffer, Buffer]> {
    const b = this.buf;
    let pos = HEADER;
    while (pos + 8 <= this.dataEnd) {
      const klen = b.readUInt32LE(pos);
      const vlen = b.readUInt32LE(pos + 4);
      const k = pos + 8;
      if (k + klen + vlen > this.dataEnd) throw new Error(`record at offset ${pos} runs past the record area`);
      yield [b.subarray(k, k + klen), b.subarray(k + klen, k + klen + vlen)];
      pos = k + klen + vlen;
    }
  }
}

/** How NUL terminators are handled (postmap -N / -n). */
export type NulMode = 'auto' | 'with' | 'without';

/** Write a cdb image atomically: NAME.cdb.tmp, fsync, rename (dict_cdbm_close). */
export function writeCdbFile(cdbPath: string, image: Uint8Array, mode = 0o644): void {
  writeFileAtomic(cdbPath, `${cdbPath}.tmp`, image, mode);
}

/** Encode a key/value for writing, with or without the trailing NUL. */
export function encodeField(s: string, nul: boolean): Buffer {
  return nul ? Buffer.from(`${s}\0`, 'utf8') : Buffer.from(s, 'utf8');
}

/** The `cdb:` lookup table (dict_cdbq_*). */
class CdbTable implements LookupTable {
  readonly type = 'cdb';
  readonly keyKind = 'fixed' as const;
  private tryWith: boolean;
  private tryWithout: boolean;
  private readonly fold: boolean;
  private readonly isStaleFn: () => boolean;

  constructor(
    readonly name: string,
    readonly spec: string,
    private readonly reader: CdbReader,
    options: OpenOptions & { nul?: NulMode },
    stale: () => boolean,
  ) {
    const nul = options.nul ?? 'auto';
    this.tryWith = nul !== 'without';
    this.tryWithout = nul !== 'with';
    this.fold = options.fold ?? true;
    this.isStaleFn = stale;
  }

  async lookup(key: string): Promise<LookupResult> {
    const k = this.fold ? foldKey(key) : key;
    // dict_cdb.c: try with one NUL appended, then without; remember which worked.
    if (this.tryWith) {
      const v = this.reader.find(Buffer.from(`${k}\0`, 'utf8'));
      if (v !== undefined) {
        this.tryWithout = false;
        return found(stripNul(v));
      }
    }
    if (this.tryWithout) {
      const v = this.reader.find(Buffer.from(k, 'utf8'));
      if (v !== undefined) {
        this.tryWith = false;
        return found(v.toString('utf8'));
      }
    }
    return NOT_FOUND;
  }

  async *sequence(): AsyncIterable<readonly [string, string]> {
    for (const [k, v] of this.reader.entries()) yield [stripNul(k), stripNul(v)];
  }

  isStale(): boolean {
    return this.isStaleFn();
  }

  async close(): Promise<void> {}
}

function stripNul(b: Buffer): string {
  const n = b.length > 0 && b[b.length - 1] === 0 ? b.length - 1 : b.length;
  return b.toString('utf8', 0, n);
}

/** Open NAME.cdb for lookups. */
export async function openCdb(name: string, spec: string, options: OpenOptions & { nul?: NulMode }): Promise<LookupTable> {
  const source = resolvePath(name, options.baseDir);
  const file = `${source}.cdb`;
  const shown = `${name}.cdb`;
  let buf: Buffer;
  let st: Stats;
  try {
    st = statSync(file);
    buf = readFileSync(file);
  } catch (err) {
    throw openFailure('cdb', name, shown, err);
  }
  let reader: CdbReader;
  try {
    reader = new CdbReader(buf);
  } catch (err) {
    throw new UserError(`${shown}: not a cdb file (${(err as Error).message}): rebuild it with "sealpost postmap cdb:${name}"`);
  }
  warnIfOlder(shown, name, source, st.mtimeMs, options.warn);
  return new CdbTable(name, spec, reader, options, staleCheck(file, st));
}

export const cdbType: TableType = { type: 'cdb', keyKind: 'fixed', listed: true, open: openCdb };
