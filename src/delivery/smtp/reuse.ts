/**
 * reuse.ts — the SMTP connection cache (Postfix scache(8) as smtp(8) uses
 * it): after a delivery, keep the session open for the next request to the
 * same transport + next hop + TLS policy shape.
 *
 * Contract:
 * - `put(key, session)` keeps a clean session (nothing unread, not broken)
 *   unless it is past smtp_connection_reuse_time_limit (from its creation) or
 *   smtp_connection_reuse_count_limit (0 = no limit); an idle session is
 *   closed with QUIT after smtp_connection_cache_time_limit. `take(key)`
 *   returns a live cached session or undefined.
 * - A TLS session is cached only when the policy allows connection reuse
 *   (`connection_reuse=yes` / smtp_tls_connection_reuse, which sealpost turns
 *   on by default: config/params.ts SEALPOST_DEFAULTS); plaintext sessions
 *   always (postconf(5) smtp_connection_cache_on_demand = yes). It keeps its
 *   certificate evaluation (Session.evaluation): a reused connection logs
 *   `... TLS connection reused to ...` from it and `conn_use=N`, with no
 *   new handshake and no new certificate lines.
 * - Reused only for the same transport, next hop and effective policy shape
 *   (`cacheKey`, `sameEffectivePolicy`).
 * - Idle timers are unref()ed: a cache never keeps the process alive.
 *
 * Not here: the RSET after an aborted transaction (transaction.ts), sharing
 * sessions across processes (Postfix's scache is a separate daemon).
 */
import type { Config } from '../../config/types.ts';
import type { ConnectPolicy } from '../tls/types.ts';
import type { Session } from './session.ts';
import { quietQuit } from './session.ts';

export interface CacheLimits {
  readonly enabled: boolean;
  /** smtp_connection_cache_time_limit, ms idle. */
  readonly idleMs: number;
  /** smtp_connection_reuse_time_limit, ms since the connection was made. */
  readonly reuseTimeMs: number;
  /** smtp_connection_reuse_count_limit; 0 = unlimited. */
  readonly reuseCountLimit: number;
  readonly quitTimeoutMs: number;
}

export function cacheLimits(config: Config): CacheLimits {
  return {
    enabled: config.getBool('smtp_connection_cache_on_demand') || config.getList('smtp_connection_cache_destinations').length > 0,
    idleMs: config.getTime('smtp_connection_cache_time_limit') * 1000,
    reuseTimeMs: config.getTime('smtp_connection_reuse_time_limit') * 1000,
    reuseCountLimit: config.getInt('smtp_connection_reuse_count_limit'),
    quitTimeoutMs: config.getTime('smtp_quit_timeout') * 1000,
  };
}

/**
 * The effective policy's shape: every field that decides what a connection had to prove
 * (level, name checks or fingerprints, protocols, ciphers, SNI, trust anchors, the deciding
 * source with its RFC 8460 facts, TLS-Required: No). Two sessions with equal shapes are
 * interchangeable; a session is reused only under a policy of the same shape, so a cached
 * connection never carries mail that its certificate evaluation did not cover.
 */
export function policyShape(policy: ConnectPolicy): string {
  const a = policy.applied;
  return [policy.level, policy.configuredLevel ?? '', policy.match.join(','), policy.minProtocol ?? '', policy.maxProtocol ?? '', policy.ciphers,
    policy.servername ?? '', policy.trustAnchorFiles.join(','), policy.tlsRequiredNo ? 'trn' : '', policy.connectionReuse ? 'reuse' : '',
    a.source, a.type, a.domain, a.strings.join(','), a.mxHostPatterns.join(',')].join('|');
}

/**
 * The cache key: transport, next hop and the hop policy's shape (Postfix keys its
 * connection cache by next hop and TLS policy too: smtp_key_prefix() with the TLS level
 * and its attributes). The per-server policy of a cached session is checked again when it
 * is taken (attempt.ts), because DANE and MTA-STS decide per server.
 */
export function cacheKey(transport: string, nexthop: string, policy: ConnectPolicy): string {
  return `${transport}\u0000${nexthop}\u0000${policyShape(policy)}`;
}

/** May a cached session opened under `opened` carry mail that the per-server step now gives `now` for? */
export function sameEffectivePolicy(opened: ConnectPolicy, now: ConnectPolicy): boolean {
  return opened === now || policyShape(opened) === policyShape(now);
}

interface Entry {
  readonly session: Session;
  readonly timer: NodeJS.Timeout;
}

export class ConnectionCache {
  private readonly entries = new Map<string, Entry[]>();

  constructor(private readonly limits: CacheLimits, private readonly now: () => number) {}

  /** Sessions currently idle in the cache. */
  get size(): number {
    let n = 0;
    for (const l of this.entries.values()) n += l.length;
    return n;
  }

  /** May this session go back to the cache after a delivery? */
  reusable(session: Session): boolean {
    if (!this.limits.enabled || !session.chat.idle) return false;
    // smtp_tls_connection_reuse / connection_reuse=: TLS sessions only when the policy allows.
    if (session.tlsUsed && !session.policy.connectionReuse) return false;
    if (this.limits.reuseCountLimit > 0 && session.useCount >= this.limits.reuseCountLimit) return false;
    return this.now() - session.createdAt < this.limits.reuseTimeMs;
  }

  /** Keep `session` for `key`; closes it instead when it may not be reused. */
  async put(key: string, session: Session): Promise<void> {
    if (!this.reusable(session)) {
      await quietQuit(session.chat, this.limits.quitTimeoutMs);
      return;
    }
    const timer = setTimeout(() => {
      this.remove(key, session);
      void quietQuit(session.chat, this.limits.quitTimeoutMs);
    }, this.limits.idleMs);
    timer.unref();
    const list = this.entries.get(key) ?? [];
    list.push({ session, timer });
    this.entries.set(key, list);
  }

  /** A live cached session for `key`, removed from the cache. */
  take(key: string): Session | undefined {
    const list = this.entries.get(key);
    while (list && list.length > 0) {
      const e = list.pop()!;
      clearTimeout(e.timer);
      if (list.length === 0) this.entries.delete(key);
      if (e.session.chat.idle && this.now() - e.session.createdAt < this.limits.reuseTimeMs) return e.session;
      e.session.chat.destroy();
    }
    return undefined;
  }

  private remove(key: string, session: Session): void {
    const list = this.entries.get(key);
    if (!list) return;
    const i = list.findIndex((e) => e.session === session);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.entries.delete(key);
  }

  /** QUIT every cached session. */
  async closeAll(): Promise<void> {
    const all = [...this.entries.values()].flat();
    this.entries.clear();
    await Promise.all(all.map(async (e) => {
      clearTimeout(e.timer);
      await quietQuit(e.session.chat, this.limits.quitTimeoutMs);
    }));
  }
}
