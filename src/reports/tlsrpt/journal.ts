/**
 * journal.ts — the on-disk form of the TLS-RPT aggregation store: one
 * directory per reporting period under `$data_directory/tlsrpt/periods/`,
 * each holding append-only journal files and at most one snapshot.
 *
 * Layout of `periods/<start-ms>/`:
 *   journal.<gen>   lines `CRC32HEX JSON\n`, JSON = an array of aggregate
 *                   entries (aggregate.ts) — one line per batch the store wrote
 *                   with a single write(2);
 *   snapshot        `{"covers":G,"entries":[...]}`: the sum of every journal
 *                   with generation <= G (written to a temporary file, fsynced,
 *                   renamed, directory fsynced);
 *   closed          `{"start":ms,"end":ms,"notBefore":ms}` once the period is
 *                   closed (no further journal writes); written atomically;
 *   handled         one policy domain per line: the domains whose report was
 *                   handed to the outbox (or that publish no TLSRPT record).
 *
 * Crash safety (a SIGKILL loses no completed write(2)): a batch line is either
 * complete with a matching CRC or it is the torn tail of the newest journal
 * and is ignored; the writer never appends to a journal that existed before
 * it started (it opens generation max+1). Compaction writes a snapshot that
 * names the generations it covers before it deletes them, so a crash at any
 * step neither loses nor double-counts: recovery = snapshot + every journal
 * with a higher generation.
 *
 * Not here: batching, rotation and locking (store.ts); what counts (aggregate.ts).
 */
import { crc32 } from 'node:zlib';
import { mkdir, open, readdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Aggregate, type EncodedEntry } from './aggregate.ts';

export const PERIODS_DIR = 'periods';

/** One journal line for a batch. Pure. */
export function encodeBatch(entries: readonly EncodedEntry[]): Buffer {
  const json = JSON.stringify(entries);
  const crc = crc32(Buffer.from(json, 'utf8')).toString(16).padStart(8, '0');
  return Buffer.from(`${crc} ${json}\n`, 'utf8');
}

/**
 * Decode a journal's bytes: every complete, checksummed line in order. Stops
 * at the first bad line (only the torn tail of a killed writer can be bad);
 * `torn` says whether something was left unread. Pure.
 */
export function decodeJournal(bytes: Buffer): { batches: unknown[][]; torn: boolean } {
  const batches: unknown[][] = [];
  let at = 0;
  while (at < bytes.length) {
    const nl = bytes.indexOf(0x0a, at);
    if (nl < 0) return { batches, torn: true };
    const line = bytes.subarray(at, nl).toString('utf8');
    at = nl + 1;
    const m = /^([0-9a-f]{8}) (.*)$/.exec(line);
    if (!m || crc32(Buffer.from(m[2]!, 'utf8')).toString(16).padStart(8, '0') !== m[1]) return { batches, torn: true };
    let v: unknown;
    try {
      v = JSON.parse(m[2]!);
    } catch {
      return { batches, torn: true };
    }
    if (!Array.isArray(v)) return { batches, torn: true };
    batches.push(v);
  }
  return { batches, torn: false };
}

export interface ClosedInfo {
  readonly start: number;
  readonly end: number;
  /** Reports for this period are sent from this time on (end + the randomized delay). */
  readonly notBefore: number;
}

export interface PeriodOnDisk {
  readonly id: string;
  readonly dir: string;
  readonly start: number;
  readonly total: Aggregate;
  /** Highest journal generation present (-1 when none). */
  readonly maxGen: number;
  readonly closed?: ClosedInfo;
  readonly handled: ReadonlySet<string>;
  /** Problems found while reading (torn tails, bad entries), for a warning. */
  readonly problems: readonly string[];
}

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readSnapshot(dir: string, total: Aggregate, problems: string[]): Promise<number> {
  const snap = await readOptional(join(dir, 'snapshot'));
  if (!snap) return -1;
  const v = JSON.parse(snap.toString('utf8')) as { covers?: unknown; entries?: unknown };
  if (!isNum(v.covers) || !Array.isArray(v.entries)) throw new Error(`${join(dir, 'snapshot')}: malformed snapshot`);
  for (const e of v.entries) if (!total.addEncoded(e)) problems.push(`${join(dir, 'snapshot')}: malformed entry ignored`);
  return v.covers;
}

async function readClosed(dir: string): Promise<ClosedInfo | undefined> {
  const b = await readOptional(join(dir, 'closed'));
  if (!b) return undefined;
  const v = JSON.parse(b.toString('utf8')) as Record<string, unknown>;
  if (!isNum(v.start) || !isNum(v.end) || !isNum(v.notBefore)) throw new Error(`${join(dir, 'closed')}: malformed`);
  return { start: v.start, end: v.end, notBefore: v.notBefore };
}

/** Read one period directory (snapshot + newer journals + state files). */
export async function readPeriod(dir: string, id: string): Promise<PeriodOnDisk> {
  const total = new Aggregate();
  const problems: string[] = [];
  const covers = await readSnapshot(dir, total, problems);
  const gens = (await readdir(dir))
    .map((n) => /^journal\.(\d+)$/.exec(n)?.[1])
    .filter((g): g is string => g !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  for (const g of gens) {
    if (g <= covers) continue;
    const path = join(dir, `journal.${g}`);
    const { batches, torn } = decodeJournal(await readFile(path));
    if (torn) problems.push(`${path}: incomplete last batch ignored (the writer was killed while writing it)`);
    for (const b of batches) for (const e of b) if (!total.addEncoded(e)) problems.push(`${path}: malformed entry ignored`);
  }
  const closed = await readClosed(dir);
  const handledText = (await readOptional(join(dir, 'handled')))?.toString('utf8') ?? '';
  // Only complete lines count: a torn last line means that domain was not recorded as handled.
  const lines = handledText.split('\n');
  lines.pop();
  return {
    id,
    dir,
    start: Number(id),
    total,
    maxGen: Math.max(covers, gens.length > 0 ? gens[gens.length - 1]! : -1),
    ...(closed ? { closed } : {}),
    handled: new Set(lines.filter((l) => l !== '')),
    problems,
  };
}

/** Every period under `root` (oldest first). A missing root is no periods. */
export async function readPeriods(root: string): Promise<PeriodOnDisk[]> {
  const base = join(root, PERIODS_DIR);
  let names: string[];
  try {
    names = await readdir(base);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const ids = names.filter((n) => /^\d+$/.test(n)).sort((a, b) => Number(a) - Number(b));
  return Promise.all(ids.map((id) => readPeriod(join(base, id), id)));
}

async function fsyncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Write `data` to `path` atomically and durably (tmp, fsync, rename, directory fsync). */
export async function writeDurable(path: string, dir: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  const h = await open(tmp, 'w', 0o600);
  try {
    await h.writeFile(data);
    await h.sync();
  } finally {
    await h.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
}

/** Replace journals `<= covers` by one snapshot of `total` (see the header for the order). */
export async function compact(dir: string, total: Aggregate, covers: number): Promise<void> {
  await writeDurable(join(dir, 'snapshot'), dir, JSON.stringify({ covers, entries: total.encode() }));
  for (const n of await readdir(dir)) {
    const g = /^journal\.(\d+)$/.exec(n)?.[1];
    if (g !== undefined && Number(g) <= covers) await unlink(join(dir, n));
  }
}

export async function markClosed(dir: string, info: ClosedInfo): Promise<void> {
  await writeDurable(join(dir, 'closed'), dir, JSON.stringify(info));
}

export async function ensurePeriodDir(root: string, start: number): Promise<string> {
  const dir = join(root, PERIODS_DIR, String(start));
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export async function removePeriodDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
