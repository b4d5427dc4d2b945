/**
 * postmap.ts — `sealpost postmap`: build, query, dump and edit lookup tables,
 * as postmap(1).
 *
 *   sealpost postmap [-fFiNnoprsuUvw] [-c config_dir] [-d key] [-q key] [type:]file ...
 *
 * Contract (postmap(1), postmap.c of Postfix 3.x):
 * - Without -q/-s/-d: build each table from its source file (`type:file`, or
 *   `$default_database_type` for a bare name). Buildable: hash, btree, lmdb
 *   (sealpost's indexed format) and cdb (the real format). Source warnings,
 *   duplicate handling (-r replace, -w ignore, default warn and keep the
 *   first), -f (no folding), -F (values are file lists, stored base64), -i
 *   (incremental entries from stdin), -p (mode 0644 instead of the source's
 *   group/other read bits).
 * - `-q key`: first table that has the key wins, value on stdout, exit 0;
 *   exit 1 when no table has it. `-q -`: keys from stdin, `key<TAB>value` per
 *   found key, exit 0 when any was found. A table error is fatal.
 * - `-s`: every entry of the FIRST table as `key<TAB>value` (Postfix ignores
 *   the others). Types that cannot enumerate fail with Postfix's words.
 * - `-d key` / `-d -`: delete from each table (hash/btree/lmdb), exit 0 when
 *   any key was found.
 * - -s, -q and -d exclude each other, with Postfix's message.
 * - Every bad input is one `fatal:` line (a UserError); nothing writes to
 *   process.stdout directly.
 *
 * Not here: the message query modes -b/-h/-m (refused with a clear error),
 * privilege dropping (-o is accepted and ignored: sealpost never runs
 * postmap as root on behalf of another user), UTF-8 checks (-u/-U accepted).
 */
import { readFileSync, statSync } from 'node:fs';
import { UsageError, UserError } from '../lib/errors.ts';
import type { CommandContext } from './context.ts';
import { warn as warnLine } from './context.ts';
import { getopt } from './getopt.ts';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { openTable, parseSpec, tableType, unsupportedType } from '../maps/registry.ts';
import { foldKey, parseSource, problemMessage } from '../maps/source-file.ts';
import { errnoText } from '../maps/file-table.ts';
import { IndexedBuilder, indexedSuffix, readIndexedFile, writeIndexedFile } from '../maps/indexed.ts';
import type { IndexedType } from '../maps/indexed.ts';
import { CdbBuilder, encodeField, writeCdbFile } from '../maps/cdb.ts';
import type { DupMode, NulMode } from '../maps/cdb.ts';
import type { LookupTable } from '../maps/types.ts';
import { progress, type Progress } from '../lib/progress.ts';

const OPTSTRING = 'bc:d:fFhimnNopq:rsuUvw';

function usageLine(prog: string): string {
  return `usage: ${prog} [-bfFhimnNoprsuUvw] [-c config_dir] [-d key] [-q key] [map_type:]file...`;
}

/** Everything the options decide. */
interface Flags {
  fold: boolean;
  fileValues: boolean;
  incremental: boolean;
  nul: NulMode;
  dup: DupMode;
  keepMode: boolean;
  query?: string;
  del?: string;
  sequence: boolean;
}

/** Read the options in order, with postmap.c's exclusivity checks. */
function parseFlags(argv: readonly string[], prog: string): { flags: Flags; configDir?: string; maps: string[] } {
  const opts = getopt(argv, OPTSTRING, usageLine(prog));
  const flags: Flags = { fold: true, fileValues: false, incremental: false, nul: 'auto', dup: 'warn', keepMode: true, sequence: false };
  let configDir: string | undefined;
  for (const [f, arg] of opts.list) {
    switch (f) {
      case 'c':
        configDir = arg;
        break;
      case 'd':
        // postmap.c: the message differs with the option order, as here.
        if (flags.sequence || flags.query !== undefined || flags.del !== undefined) throw new UserError('specify only one of -s -q or -d');
        flags.del = arg;
        break;
      case 'q':
        if (flags.sequence || flags.query !== undefined || flags.del !== undefined) throw new UserError('specify only one of -s -q or -d');
        flags.query = arg;
        break;
      case 's':
        if (flags.query !== undefined || flags.del !== undefined) throw new UserError('specify only one of -s or -q or -d');
        flags.sequence = true;
        break;
      case 'f':
        flags.fold = false;
        break;
      case 'F':
        flags.fileValues = true;
        break;
      case 'i':
        flags.incremental = true;
        break;
      case 'N':
        flags.nul = 'with';
        break;
      case 'n':
        flags.nul = 'without';
        break;
      case 'p':
        flags.keepMode = false;
        break;
      case 'r':
        flags.dup = 'replace';
        break;
      case 'w':
        flags.dup = 'ignore';
        break;
      case 'b':
      case 'h':
      case 'm':
        throw new UserError(`-${f}: the message body/header query modes (-b, -h, -m) are not supported by sealpost postmap; query keys with "-q -" instead`);
      default:
        // -o, -u, -U, -v: accepted, no effect (see the header comment).
        break;
    }
  }
  return { flags, configDir, maps: opts.rest };
}

export async function main(ctx: CommandContext): Promise<number> {
  const { flags, configDir, maps } = parseFlags(ctx.argv, ctx.prog);
  const warn = (m: string) => warnLine(ctx, m);
  const config = loadConfig({ configDir: resolveConfigDir(configDir, ctx.env), warn });
  const defaultType = config.get('default_database_type') || 'hash';
  const env: Env = { ctx, flags, warn, defaultType };
  if (flags.del !== undefined) {
    if (maps.length === 0) throw new UsageError(usageLine(ctx.prog));
    return deleteKeys(env, flags.del, maps);
  }
  if (flags.query !== undefined) {
    if (maps.length === 0) throw new UsageError(usageLine(ctx.prog));
    return flags.query === '-' ? queryStdin(env, maps) : queryOne(env, flags.query, maps);
  }
  if (flags.sequence) {
    // postmap.c: only the first table is listed; no table is exit 1.
    if (maps.length === 0) return 1;
    await sequence(env, maps[0]!);
    return 0;
  }
  if (maps.length === 0) throw new UsageError(usageLine(ctx.prog));
  for (const spec of maps) await build(env, spec);
  return 0;
}

interface Env {
  readonly ctx: CommandContext;
  readonly flags: Flags;
  readonly warn: (m: string) => void;
  readonly defaultType: string;
  readonly progress?: Progress;
}

// ---------------------------------------------------------------- output

/** Buffered writer for large outputs (-s on a million entries), honouring back-pressure. */
class Out {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly stream: NodeJS.WritableStream) {}
  async write(s: string): Promise<void> {
    this.parts.push(s);
    this.size += s.length;
    if (this.size >= 1 << 16) await this.flush();
  }
  async flush(): Promise<void> {
    if (this.parts.length === 0) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (!this.stream.write(chunk)) await new Promise<void>((r) => this.stream.once('drain', () => r()));
  }
}

async function readStdin(ctx: CommandContext): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** vstring_get_nonl(): lines without their newline; a last line without newline counts. */
function stdinLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

// ---------------------------------------------------------------- -F values

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** dict_file_to_b64(): concatenate the named files (newline between) and base64 them. */
export function filesToBase64(list: string): Buffer | { error: string } {
  const names = list.split(/[\s,]+/).filter((n) => n !== '');
  if (names.length === 0) return { error: `empty pathname list: >>${list}<<'` };
  const parts: Buffer[] = [];
  for (const [i, n] of names.entries()) {
    try {
      if (i > 0) parts.push(Buffer.from('\n'));
      parts.push(readFileSync(n));
    } catch (err) {
      return { error: `open ${n}: ${errnoText(err)}` };
    }
  }
  return Buffer.from(Buffer.concat(parts).toString('base64'), 'latin1');
}

/** dict_file_from_b64(): the decoded text, or undefined when the value is not base64. */
function fromBase64(value: string): string | undefined {
  if (!BASE64.test(value)) return undefined;
  return Buffer.from(value, 'base64').toString('utf8');
}

// ---------------------------------------------------------------- queries

async function open(env: Env, spec: string): Promise<LookupTable> {
  return openTable(spec, { defaultType: env.defaultType, fold: env.flags.fold, warn: env.warn, nul: env.flags.nul });
}

/** Look a key up in one table: the value to print, undefined (not found), or a fatal error. */
async function lookupValue(env: Env, table: LookupTable, key: string): Promise<string | undefined> {
  const r = await table.lookup(key);
  if (r.kind === 'error') {
    const msg = r.error.message.startsWith(`${table.spec}: `) ? r.error.message.slice(table.spec.length + 2) : r.error.message;
    throw new UserError(`table ${table.spec}: query error: ${msg}`);
  }
  if (r.kind === 'notfound') return undefined;
  let value = r.value;
  if (env.flags.fileValues) {
    const decoded = fromBase64(value);
    if (decoded === undefined) {
      env.warn(`table ${table.spec}: key ${key}: malformed BASE64 value: ${value}`);
      throw new UserError(`table ${table.spec}: query error`);
    }
    value = decoded;
  }
  if (value === '') {
    env.warn(`table ${table.spec}: key ${key}: empty string result is not allowed`);
    env.warn(`table ${table.spec} should return NO RESULT in case of NOT FOUND`);
  }
  return value;
}

async function queryOne(env: Env, key: string, maps: readonly string[]): Promise<number> {
  for (const spec of maps) {
    const table = await open(env, spec);
    try {
      const value = await lookupValue(env, table, key);
      if (value !== undefined) {
        env.ctx.stdout.write(`${value}\n`);
        return 0;
      }
    } finally {
      await table.close();
    }
  }
  return 1;
}

async function queryStdin(env: Env, maps: readonly string[]): Promise<number> {
  const keys = stdinLines(await readStdin(env.ctx));
  // postmap.c opens tables lazily, on the first key.
  const tables: Array<LookupTable | undefined> = maps.map(() => undefined);
  const out = new Out(env.ctx.stdout);
  let any = false;
  try {
    for (const key of keys) {
      for (let i = 0; i < maps.length; i++) {
        const table = (tables[i] ??= await open(env, maps[i]!));
        const value = await lookupValue(env, table, key);
        if (value !== undefined) {
          await out.write(`${key}\t${value}\n`);
          any = true;
          break;
        }
      }
    }
  } finally {
    await out.flush();
    for (const t of tables) await t?.close();
  }
  return any ? 0 : 1;
}

async function sequence(env: Env, spec: string): Promise<void> {
  const table = await open(env, spec);
  try {
    if (!table.sequence) throw new UserError(`table ${table.spec}: sequence operation is not supported`);
    const out = new Out(env.ctx.stdout);
    for await (const [key, raw] of table.sequence()) {
      if (key === '') env.warn(`table ${table.spec}: empty lookup key value is not allowed`);
      else if (raw === '') {
        env.warn(`table ${table.spec}: key ${key}: empty string result is not allowed`);
        env.warn(`table ${table.spec} should return NO RESULT in case of NOT FOUND`);
      }
      let value = raw;
      if (env.flags.fileValues) {
        const decoded = fromBase64(raw);
        if (decoded === undefined) {
          env.warn(`table ${table.spec}: key ${key}: malformed BASE64 value: ${raw}`);
          continue;
        }
        value = decoded;
      }
      await out.write(`${key}\t${value}\n`);
    }
    await out.flush();
  } finally {
    await table.close();
  }
}

// ---------------------------------------------------------------- building

const INDEXED: ReadonlySet<string> = new Set(['hash', 'btree', 'lmdb']);

/** Resolve and check a spec for writing: a known, writable type. */
function writableSpec(env: Env, spec: string): { type: string; name: string } {
  const { type, name } = parseSpec(spec, env.defaultType);
  if (!tableType(type)) throw unsupportedType(type);
  if (!INDEXED.has(type) && type !== 'cdb') {
    // postmap.c / mkmap_open(): Postfix's exact words.
    throw new UserError(`unsupported dictionary type: ${type} does not support bulk-mode creation.`);
  }
  return { type, name };
}

/** The mode of a new table: the source's group/other read bits unless -p (postmap(1)). */
function newFileMode(env: Env, sourcePath: string | undefined): number {
  if (!env.flags.keepMode || sourcePath === undefined) return 0o644;
  try {
    const st = statSync(sourcePath);
    if (!st.isFile()) return 0o644;
    return 0o644 & ~(0o022 | (~st.mode & 0o077));
  } catch {
    return 0o644;
  }
}

/** Source text and the name used in warnings. */
async function sourceText(env: Env, name: string): Promise<{ text: string; label: string }> {
  if (env.flags.incremental) return { text: await readStdin(env.ctx), label: 'stdin' };
  try {
    return { text: readFileSync(name, 'utf8'), label: name };
  } catch (err) {
    // postmap.c: "open %s: %m".
    throw new UserError(`open ${name}: ${errnoText(err)}`);
  }
}

async function build(env: Env, spec: string): Promise<void> {
  const { type, name } = writableSpec(env, spec);
  if (type === 'cdb' && env.flags.incremental) {
    throw new UserError(`cdb:${name}: a cdb table cannot be updated in place (-i); add the entries to ${name} and run "sealpost postmap cdb:${name}"`);
  }
  const { text, label } = await sourceText(env, name);
  // A terminal shows how far a big source has been read (lib/progress.ts).
  const shown = progress(env.ctx.stderr, { label: `postmap ${type}:${name}`, unit: 'lines', total: () => text.split('\n').length - 1 });
  if (type === 'cdb') buildCdb({ ...env, progress: shown }, name, text, label);
  else buildIndexed({ ...env, progress: shown }, type as IndexedType, name, text, label);
  shown.done();
}

/** Walk the source items, warn about problems, and hand entries to `put`. */
function feed(env: Env, text: string, label: string, dictName: string, put: (key: string, value: string | Buffer) => boolean): void {
  for (const item of parseSource(text)) {
    env.progress?.set(item.line);
    if (item.kind !== 'entry') {
      // An alias-format hint is followed by its entry, which is still stored.
      env.warn(problemMessage(label, item));
      continue;
    }
    let value: string | Buffer = item.value;
    if (env.flags.fileValues) {
      const b64 = filesToBase64(item.value);
      if (!Buffer.isBuffer(b64)) {
        env.warn(`${label}, line ${item.line}: ${b64.error}: skipping this entry`);
        continue;
      }
      value = b64;
    }
    const key = env.flags.fold ? foldKey(item.key) : item.key;
    // dict_db.c / dict_cdb.c: duplicates warn (default), or silently replace (-r) / ignore (-w).
    if (put(key, value) && env.flags.dup === 'warn') env.warn(`${dictName}: duplicate entry: "${key}"`);
  }
}

function buildCdb(env: Env, name: string, text: string, label: string): void {
  const builder = new CdbBuilder(env.flags.dup);
  const nul = env.flags.nul === 'with';
  feed(env, text, label, name, (k, v) => builder.put(encodeField(k, nul), Buffer.isBuffer(v) ? (nul ? Buffer.concat([v, Buffer.from([0])]) : v) : encodeField(v, nul)));
  writeCdbFile(`${name}.cdb`, builder.finish(), newFileMode(env, name));
}

function buildIndexed(env: Env, type: IndexedType, name: string, text: string, label: string): void {
  const suffix = indexedSuffix(type);
  let existing: Iterable<readonly [string, string]> | undefined;
  let mode = newFileMode(env, env.flags.incremental ? undefined : name);
  if (env.flags.incremental) {
    // -i: "do not truncate an existing database" (created when missing).
    const cur = existingIndexed(type, name);
    if (cur) {
      existing = cur.entries;
      mode = cur.mode;
    }
  }
  const builder = new IndexedBuilder(env.flags.dup, existing);
  feed(env, text, label, `${name}${suffix}`, (k, v) => builder.put(k, Buffer.isBuffer(v) ? v.toString('latin1') : v));
  writeIndexedFile(type, name, builder.image(type), mode);
}

/** The entries and mode of an existing indexed file, or undefined when there is none. */
function existingIndexed(type: IndexedType, name: string): { entries: Array<[string, string]>; mode: number } | undefined {
  try {
    statSync(`${name}${indexedSuffix(type)}`);
  } catch {
    return undefined;
  }
  const { reader, st } = readIndexedFile(type, name);
  return { entries: [...reader.records()], mode: Number(st.mode) & 0o777 };
}

// ---------------------------------------------------------------- deleting

async function deleteKeys(env: Env, del: string, maps: readonly string[]): Promise<number> {
  const keys = del === '-' ? stdinLines(await readStdin(env.ctx)) : [del];
  let any = false;
  for (const spec of maps) {
    const { type, name } = parseSpec(spec, env.defaultType);
    if (!tableType(type)) throw unsupportedType(type);
    if (!INDEXED.has(type)) {
      throw new UserError(`${type}:${name}: this table type does not support deleting entries${type === 'cdb' ? `; remove the entry from ${name} and run "sealpost postmap cdb:${name}"` : ''}`);
    }
    const t = type as IndexedType;
    const { reader, st } = readIndexedFile(t, name);
    const builder = new IndexedBuilder('replace', reader.records());
    let changed = false;
    for (const key of keys) {
      if (builder.delete(env.flags.fold ? foldKey(key) : key)) changed = any = true;
    }
    if (changed) writeIndexedFile(t, name, builder.image(t), Number(st.mode) & 0o777);
  }
  return any ? 0 : 1;
}
