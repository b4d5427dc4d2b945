/**
 * session-cache.ts — TLS session resumption for the SMTP client: one session
 * (ticket) per server and policy shape, kept in memory and, when
 * smtp_tls_session_cache_database is set, in a file that survives restarts.
 *
 * File format (sealpost's own; Postfix's tlsmgr uses a btree/lmdb table): the
 * path after `type:` in smtp_tls_session_cache_database (`btree:/var/lib/
 * sealpost/smtp_scache` → `/var/lib/sealpost/smtp_scache`) holds JSON lines
 * `{"k":KEY,"s":BASE64-SESSION,"e":EXPIRES-MS,"p":{"chain":[BASE64-DER...],"authorized":BOOL}}`; it is rewritten atomically
 * (temp file + rename) a second after a change and on `save()` (the agent's
 * close: daemon stop, reload). Entries live
 * smtp_tls_session_cache_timeout (≤0 disables the cache; under 2 minutes
 * counts as 2 minutes; at most 100 days — postconf(5)).
 *
 * Several caches share one file: each delivery worker thread
 * (sealpost_delivery_workers) has its own engine and so its own cache, where
 * Postfix's smtp(8) processes share tlsmgr's. A save therefore merges: it
 * reads the file, takes from it what another cache learned later (into
 * memory too), drops what this cache deleted since (a peer that failed its
 * policy is never resumed), and writes the union. Two saves at the same
 * moment can still lose one side's newest entries until its next save:
 * resumption is an optimisation.
 *
 * Contract: `get` never returns an expired session; `set` replaces; I/O
 * errors while loading or saving are reported through `warn` and ignored
 * (resumption is an optimisation, never a reason to fail delivery).
 *
 * Not here: deciding whether a resumed session is trusted (verify.ts
 * re-evaluates every handshake).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { threadId } from 'node:worker_threads';
import { isNotFound } from '../../lib/fs-errors.ts';

export interface SessionCacheOptions {
  /** smtp_tls_session_cache_database (`type:path`), '' for memory only. */
  readonly database: string;
  /** smtp_tls_session_cache_timeout in seconds. */
  readonly timeoutSeconds: number;
  readonly warn: (text: string) => void;
  readonly now?: () => number;
}

const MAX_ENTRIES = 10_000;

/**
 * What the first handshake learned about the peer: a resumed session carries
 * no certificate chain in Node, so the chain (DER, base64) and OpenSSL's
 * verdict are kept with the ticket (Postfix's tlsmgr cache keeps the peer
 * status the same way).
 */
export interface StoredPeer {
  readonly chain: readonly string[];
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

export interface CachedSession {
  readonly session: Buffer;
  readonly peer?: StoredPeer;
}

interface Entry {
  readonly session: Buffer;
  readonly peer?: StoredPeer;
  readonly expires: number;
}

/** The file's lines as entries; expired, torn and foreign lines are skipped (pure). */
export function parseCacheFile(text: string, now: number, ttlMs: number): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const o = JSON.parse(line) as { k?: unknown; s?: unknown; e?: unknown; p?: StoredPeer };
      if (typeof o.k === 'string' && typeof o.s === 'string' && typeof o.e === 'number' && o.e > now) {
        const peer = o.p && Array.isArray(o.p.chain) && typeof o.p.authorized === 'boolean' ? o.p : undefined;
        out.set(o.k, { session: Buffer.from(o.s, 'base64'), expires: Math.min(o.e, now + ttlMs), ...(peer ? { peer } : {}) });
      }
    } catch {
      // A torn or foreign line: skip it (the cache is advisory).
    }
  }
  return out;
}

export class SessionCache {
  private readonly entries = new Map<string, Entry>();
  /** Keys deleted here, with the time: an older copy in the file must not come back. */
  private readonly deleted = new Map<string, number>();
  private readonly file: string | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  /** When clear() was last called: older entries of the file are not taken in. */
  private clearedAt = -Infinity;

  constructor(private readonly opts: SessionCacheOptions) {
    this.now = opts.now ?? Date.now;
    const t = opts.timeoutSeconds;
    // postconf(5) smtp_tls_session_cache_timeout: ≤0 disables, <2m → 2m, ≤100d.
    this.ttlMs = t <= 0 ? 0 : Math.min(Math.max(t, 120), 100 * 86400) * 1000;
    const db = opts.database.trim();
    this.file = db === '' || this.ttlMs === 0 ? undefined : db.slice(db.indexOf(':') + 1);
    if (this.file) this.load();
  }

  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  get(key: string): CachedSession | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.peer ? { session: e.session, peer: e.peer } : { session: e.session };
  }

  set(key: string, session: Buffer, peer?: StoredPeer): void {
    if (!this.enabled) return;
    this.entries.delete(key);
    this.deleted.delete(key);
    this.entries.set(key, { session, expires: this.now() + this.ttlMs, ...(peer ? { peer } : {}) });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.scheduleSave();
  }

  delete(key: string): void {
    this.entries.delete(key);
    if (!this.file) return;
    // The file may hold it (from this cache or another): the next save drops it there too.
    this.deleted.set(key, this.now());
    if (this.deleted.size > MAX_ENTRIES) this.deleted.delete(this.deleted.keys().next().value!);
    this.scheduleSave();
  }

  /** Forget every session, those in the file included (the next save writes what is learned from now on). */
  clear(): void {
    this.entries.clear();
    this.deleted.clear();
    this.clearedAt = this.now();
  }

  /** The file's entries now, or undefined when it cannot be read (a missing file is empty). */
  private readFile(warn: boolean): Map<string, Entry> | undefined {
    try {
      return parseCacheFile(readFileSync(this.file!, 'utf8'), this.now(), this.ttlMs);
    } catch (err) {
      if (isNotFound(err)) return new Map();
      if (warn) this.opts.warn(`TLS session cache ${this.file}: ${(err as Error).message}`);
      return undefined;
    }
  }

  private load(): void {
    for (const [k, e] of this.readFile(true) ?? []) this.entries.set(k, e);
  }

  /**
   * Take in what other caches sharing the file learned: an entry this cache
   * lacks or holds an older copy of, unless this cache deleted the key after
   * that entry was made.
   */
  private merge(fromFile: ReadonlyMap<string, Entry>): void {
    for (const [k, e] of fromFile) {
      // When the entry was made (its expiry is set time + timeout).
      const made = e.expires - this.ttlMs;
      if (made <= this.clearedAt || made <= (this.deleted.get(k) ?? -Infinity)) continue;
      const mine = this.entries.get(k);
      if (!mine || mine.expires < e.expires) this.entries.set(k, e);
    }
    while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
  }

  private scheduleSave(): void {
    if (!this.file || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.save();
    }, 1000);
    this.timer.unref();
  }

  /** Write the file now (also called on reset/close). */
  save(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.file) return;
    // A file that cannot be read is reported by the write below.
    const fromFile = this.readFile(false);
    if (fromFile) this.merge(fromFile);
    const now = this.now();
    const lines: string[] = [];
    for (const [k, e] of this.entries) if (e.expires > now) lines.push(JSON.stringify({ k, s: e.session.toString('base64'), e: e.expires, ...(e.peer ? { p: e.peer } : {}) }));
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      // One temporary file per thread: worker threads share the process ID.
      const tmp = `${this.file}.${process.pid}.${threadId}.tmp`;
      writeFileSync(tmp, lines.join('\n') + (lines.length ? '\n' : ''), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch (err) {
      this.opts.warn(`TLS session cache ${this.file}: ${(err as Error).message}`);
    }
  }
}
