/**
 * session-cache.ts — TLS session resumption for the SMTP client: one session
 * (ticket) per server and policy shape, kept in memory and, when
 * smtp_tls_session_cache_database is set, in a file that survives restarts.
 *
 * File format (sealpost's own; Postfix's tlsmgr uses a btree/lmdb table): the
 * path after `type:` in smtp_tls_session_cache_database (`btree:/var/lib/
 * sealpost/smtp_scache` → `/var/lib/sealpost/smtp_scache`) holds JSON lines
 * `{"k":KEY,"s":BASE64-SESSION,"e":EXPIRES-MS,"p":{"chain":[BASE64-DER...],"authorized":BOOL}}`; it is rewritten atomically
 * (temp file + rename) at most once a second. Entries live
 * smtp_tls_session_cache_timeout (≤0 disables the cache; under 2 minutes
 * counts as 2 minutes; at most 100 days — postconf(5)).
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

export class SessionCache {
  private readonly entries = new Map<string, { session: Buffer; peer?: StoredPeer; expires: number }>();
  private readonly file: string | undefined;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;

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
    this.entries.set(key, { session, expires: this.now() + this.ttlMs, ...(peer ? { peer } : {}) });
    if (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
    this.scheduleSave();
  }

  delete(key: string): void {
    if (this.entries.delete(key)) this.scheduleSave();
  }

  clear(): void {
    this.entries.clear();
  }

  private load(): void {
    let text: string;
    try {
      text = readFileSync(this.file!, 'utf8');
    } catch (err) {
      if (!isNotFound(err)) this.opts.warn(`TLS session cache ${this.file}: ${(err as Error).message}`);
      return;
    }
    const now = this.now();
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        const o = JSON.parse(line) as { k?: unknown; s?: unknown; e?: unknown; p?: StoredPeer };
        if (typeof o.k === 'string' && typeof o.s === 'string' && typeof o.e === 'number' && o.e > now) {
          const peer = o.p && Array.isArray(o.p.chain) && typeof o.p.authorized === 'boolean' ? o.p : undefined;
          this.entries.set(o.k, { session: Buffer.from(o.s, 'base64'), expires: Math.min(o.e, now + this.ttlMs), ...(peer ? { peer } : {}) });
        }
      } catch {
        // A torn or foreign line: skip it (the cache is advisory).
      }
    }
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
    const now = this.now();
    const lines: string[] = [];
    for (const [k, e] of this.entries) if (e.expires > now) lines.push(JSON.stringify({ k, s: e.session.toString('base64'), e: e.expires, ...(e.peer ? { p: e.peer } : {}) }));
    try {
      mkdirSync(dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      writeFileSync(tmp, lines.join('\n') + (lines.length ? '\n' : ''), { mode: 0o600 });
      renameSync(tmp, this.file);
    } catch (err) {
      this.opts.warn(`TLS session cache ${this.file}: ${(err as Error).message}`);
    }
  }
}
