/**
 * cache.ts — the MTA-STS policy cache on disk: one JSON file per policy
 * domain in `$data_directory/mta-sts/`, so policies survive restarts
 * (RFC 8461 §5.1: a cached, unexpired policy is applied when DNS or HTTPS
 * fail — that is the downgrade resistance).
 *
 * Contract:
 * - `StsCache.read(domain)` returns the entry or undefined (no file, or a
 *   file that does not hold a valid entry: it is reported through `warn`
 *   and ignored, never trusted half-way);
 * - `write(entry)` replaces the domain's file atomically (temp file in the
 *   same directory, fsync, rename, directory fsync: maps/file-table.ts), so a
 *   crash leaves the old entry or the new one, never a torn one;
 * - `remove(domain)`, `list()` (every valid entry, sorted by domain).
 * Domain names are lower-cased LDH names (A-labels); anything else (a path,
 * `..`, an IP literal) is refused with an Error — a file name is never built
 * from unchecked input. Entries are plain data and frozen on read.
 * Expiry is not judged here (service.ts does, with its clock).
 *
 * File format (version 1):
 *   {"v":1,"domain":"example.com","id":"20240101T00","fetchedAt":MS,
 *    "expiresAt":MS,"mode":"enforce","mx":["*.example.com"],"maxAge":604800,
 *    "lines":["version: STSv1",...]}
 *
 * Not here: deciding when to fetch (service.ts), the fetch (fetch.ts).
 */
import { mkdirSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../maps/file-table.ts';
import { MAX_STS_MAX_AGE } from './policy.ts';
import type { StsMode } from './policy.ts';

/** One cached policy (RFC 8461 §5.1), as the service and the tools see it. */
export interface StsCacheEntry {
  readonly domain: string;
  /** The TXT record's `id` when the policy was fetched. */
  readonly id: string;
  /** ms since the epoch. */
  readonly fetchedAt: number;
  /** fetchedAt + max_age. */
  readonly expiresAt: number;
  readonly mode: StsMode;
  readonly mx: readonly string[];
  readonly maxAge: number;
  readonly lines: readonly string[];
}

/** The cache as the service uses it (tests inject an in-memory one). */
export interface StsCacheStore {
  read(domain: string): StsCacheEntry | undefined;
  write(entry: StsCacheEntry): void;
  remove(domain: string): void;
  list(): StsCacheEntry[];
}

const LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN = new RegExp(`^${LABEL}(?:\\.${LABEL})+$`);

/** A policy domain usable as a cache key and file name: lower case, LDH labels, at least two, not an IP address. */
export function cacheKey(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  // An all-digit last label is an IPv4 address, not a domain (no TLD is numeric).
  if (d.length > 253 || !DOMAIN.test(d) || /\.\d+$/.test(d)) throw new Error(`not a policy domain name: "${domain.replace(/[^\x20-\x7e]/g, '?').slice(0, 80)}"`);
  return d;
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** Validate a parsed file; undefined when it is not a version-1 entry for `domain`. */
export function entryFromJson(data: unknown, domain: string): StsCacheEntry | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const o = data as Record<string, unknown>;
  if (o.v !== 1 || o.domain !== domain || typeof o.id !== 'string' || !/^[A-Za-z0-9]{1,32}$/.test(o.id)) return undefined;
  if (!isTime(o.fetchedAt) || !isTime(o.expiresAt) || o.expiresAt < o.fetchedAt) return undefined;
  if (o.mode !== 'enforce' && o.mode !== 'testing' && o.mode !== 'none') return undefined;
  if (!isStrings(o.mx) || !isStrings(o.lines)) return undefined;
  if (!Number.isInteger(o.maxAge) || (o.maxAge as number) < 0 || (o.maxAge as number) > MAX_STS_MAX_AGE) return undefined;
  return Object.freeze({
    domain, id: o.id, fetchedAt: o.fetchedAt, expiresAt: o.expiresAt, mode: o.mode,
    mx: Object.freeze([...o.mx]), maxAge: o.maxAge as number, lines: Object.freeze([...o.lines]),
  });
}

export class StsCache implements StsCacheStore {
  private seq = 0;

  constructor(
    readonly dir: string,
    private readonly warn: (text: string) => void = () => undefined,
  ) {}

  private file(domain: string): string {
    return join(this.dir, `${cacheKey(domain)}.json`);
  }

  read(domain: string): StsCacheEntry | undefined {
    const key = cacheKey(domain);
    let text: string;
    try {
      text = readFileSync(this.file(key), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      this.warn(`MTA-STS cache: cannot read ${this.file(key)}: ${(err as NodeJS.ErrnoException).code ?? err}`);
      return undefined;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const entry = entryFromJson(parsed, key);
    if (!entry) this.warn(`MTA-STS cache: ignoring malformed entry ${this.file(key)}`);
    return entry;
  }

  write(entry: StsCacheEntry): void {
    const key = cacheKey(entry.domain);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const data = { v: 1, domain: key, id: entry.id, fetchedAt: entry.fetchedAt, expiresAt: entry.expiresAt, mode: entry.mode, mx: entry.mx, maxAge: entry.maxAge, lines: entry.lines };
    const tmp = join(this.dir, `.${key}.tmp.${process.pid}.${++this.seq}`);
    writeFileAtomic(this.file(key), tmp, Buffer.from(`${JSON.stringify(data)}\n`), 0o600);
  }

  remove(domain: string): void {
    try {
      unlinkSync(this.file(domain));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  list(): StsCacheEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: StsCacheEntry[] = [];
    for (const n of names.sort()) {
      if (!n.endsWith('.json') || n.startsWith('.')) continue;
      let domain: string;
      try {
        domain = cacheKey(n.slice(0, -5));
      } catch {
        continue;
      }
      const e = this.read(domain);
      if (e) out.push(e);
    }
    return out;
  }
}

/** The file cache read, never written (`sealpost tls explain`: a policy it fetches is shown, not stored). */
export class ReadOnlyStsCache implements StsCacheStore {
  constructor(private readonly files: StsCache) {}
  read(domain: string): StsCacheEntry | undefined {
    return this.files.read(domain);
  }
  write(): void {
    // Read-only.
  }
  remove(): void {
    // Read-only.
  }
  list(): StsCacheEntry[] {
    return this.files.list();
  }
}

/** An in-memory store (tests, benchmarks, `sealpost_mta_sts` without a writable data_directory). */
export class MemoryStsCache implements StsCacheStore {
  private readonly entries = new Map<string, StsCacheEntry>();
  read(domain: string): StsCacheEntry | undefined {
    return this.entries.get(cacheKey(domain));
  }
  write(entry: StsCacheEntry): void {
    this.entries.set(cacheKey(entry.domain), Object.freeze({ ...entry, domain: cacheKey(entry.domain) }));
  }
  remove(domain: string): void {
    this.entries.delete(cacheKey(domain));
  }
  list(): StsCacheEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0));
  }
}
