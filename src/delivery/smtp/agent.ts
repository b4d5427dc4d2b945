/**
 * agent.ts — the SMTP client delivery agent (Postfix smtp(8)) as a
 * DeliveryAgent: one DeliveryRequest in, one RecipientOutcome per recipient
 * out.
 *
 * Contract:
 * - Next hops are tried in order (a relayhost/transport list), then the
 *   fallback relays; per hop: the TLS policy first (`invalid` → no connection,
 *   deferral with the policy's reason), a cached session if one is idle, else
 *   the servers of connect.ts in order, at most smtp_mx_session_limit
 *   sessions for the primary hops.
 * - Every failure goes through trouble.ts `decide()`: keep the recipient for
 *   the next server, defer it, or bounce it. Recipients still pending when
 *   the servers run out are deferred (or bounced) with the last failure.
 *   `siteDeferral` is set when that last failure throttles the destination
 *   (every server unreachable, a mandatory TLS requirement not met).
 * - Logs, as smtp(8) does: every `connect to ...` failure (no queue ID),
 *   `QUEUEID: reason` for other soft failures that move on to the next
 *   server, and the TLS lines of session.ts. The `to=` lines are the queue
 *   manager's.
 * - Deliberate differences: a session is cached after every clean delivery
 *   (as if the queue manager always asked for on-demand caching; the idle
 *   limit smtp_connection_cache_time_limit bounds the cost); 8-bit content is
 *   sent as is to a server without 8BITMIME (no quoted-printable downgrade).
 * - `deliver()` rejects only for programming errors.
 *
 * Not here: routing (scheduler/), the spool (read-only access to the queue
 * file), policy decisions (delivery/tls/).
 */
import { readFile } from 'node:fs/promises';
import type { Config } from '../../config/types.ts';
import type { TableSet } from '../../maps/registry.ts';
import { decodeQueueFile } from '../../queue/queue-file.ts';
import type { MailLog } from '../../reports/maillog.ts';
import { dotStuff } from '../../smtp/dot-stuff.ts';
import type { Resolver } from '../dns/resolver.ts';
import { tlsFeatureStatus } from '../tls/enforce.ts';
import type { TlsEngine, TlsPolicy } from '../tls/types.ts';
import type { DeliveryAgent, DeliveryRecipient, DeliveryRequest, DeliveryResult, RecipientOutcome } from '../types.ts';
import { connectSettings, resolveHop } from './connect.ts';
import { breakLongLines } from './line-limit.ts';
import type { ServerTarget } from './connect.ts';
import { ConnectionCache, cacheKey, cacheLimits } from './reuse.ts';
import { findCredentials } from './sasl.ts';
import type { SaslCredentials } from './sasl.ts';
import { openSession, quietQuit, sessionSettings } from './session.ts';
import type { Session, SessionEnv } from './session.ts';
import { runTransaction, precheck } from './transaction.ts';
import type { MessageContent } from './transaction.ts';
import { decide, noConnection } from './trouble.ts';
import type { Trouble } from './trouble.ts';

export interface SmtpAgentContext {
  /** The service's effective config (main.cf + master.cf -o overrides). */
  readonly config: Config;
  readonly resolver: Resolver;
  readonly tls: TlsEngine;
  /** For smtp_sasl_password_maps. */
  readonly tables: TableSet;
  readonly log: MailLog;
  /** Syslog service tag: `smtp`, `relay/smtp`. */
  readonly service: string;
  readonly now?: () => number;
  readonly random?: () => number;
}

/** One delivery request in progress. */
class Delivery {
  readonly pending = new Map<number, DeliveryRecipient>();
  readonly outcomes: RecipientOutcome[] = [];
  last: Trouble | undefined;
  connected: number | undefined;
  sessions = 0;
  sent = 0;
  /** Where the last no-connection failure happened (relayhost/fallback lookups are configuration problems). */
  lastHop: { readonly hop: string; readonly fallback: boolean } | undefined;
  /** The throttling failure that deferred recipients (Postfix SMTP_THROTTLE). */
  throttledBy: Trouble | undefined;

  constructor(readonly request: DeliveryRequest, readonly started: number) {
    for (const r of request.recipients) this.pending.set(r.index, r);
  }
}

export function createSmtpAgent(ctx: SmtpAgentContext): DeliveryAgent {
  const now = ctx.now ?? Date.now;
  const warn = (t: string): void => ctx.log.warn(ctx.service, t);
  const env: SessionEnv = {
    config: ctx.config,
    settings: sessionSettings(ctx.config),
    connect: connectSettings(ctx.config, ctx.random, warn),
    tls: ctx.tls,
    log: ctx.log,
    service: ctx.service,
    now,
  };
  const cache = new ConnectionCache(cacheLimits(ctx.config), now);
  const softBounce = ctx.config.getBool('soft_bounce');
  const sessionLimit = ctx.config.getInt('smtp_mx_session_limit');
  const minBackoffMs = ctx.config.getTime('minimal_backoff_time') * 1000;
  const saslEnabled = ctx.config.getBool('smtp_sasl_auth_enable');
  const featureStatus = ctx.config.getBool('smtp_log_tls_feature_status');
  const relayhosts = ctx.config.getList('relayhost');
  const lineLimit = ctx.config.getInt('smtp_line_length_limit');

  const outcome = (d: Delivery, r: DeliveryRecipient, fields: Omit<RecipientOutcome, 'index' | 'timing'>): void => {
    const finished = now();
    d.pending.delete(r.index);
    d.outcomes.push({ index: r.index, ...fields, timing: { started: d.started, connected: d.connected ?? finished, finished } });
  };

  const tlsField = (policy: TlsPolicy, session?: Session): { tls?: string } => {
    if (!featureStatus) return {};
    const v = tlsFeatureStatus(policy, session ? { tls: session.tlsUsed, ...(session.evaluation ? { evaluation: session.evaluation } : {}) } : { tls: false });
    return v ? { tls: v } : {};
  };

  /** Apply one failure to some recipients: keep, defer or bounce each (smtp_trouble.c). */
  const applyTrouble = (d: Delivery, t: Trouble, recipients: readonly DeliveryRecipient[], final: boolean, policy?: TlsPolicy, session?: Session): void => {
    let kept = false;
    for (const r of recipients) {
      const v = decide(t, final, softBounce);
      if (v.action === 'keep') {
        kept = true;
        continue;
      }
      if (v.action === 'deferred' && t.throttle) d.throttledBy = t;
      outcome(d, r, {
        status: v.action, dsn: v.dsn, reason: t.reason, relay: t.relay,
        ...(session && session.useCount >= 2 ? { connUse: session.useCount } : {}),
        ...(policy && t.relay !== 'none' ? tlsField(policy, session) : {}),
        ...(t.remoteReply ? { remoteReply: t.remoteReply } : {}),
        ...(t.remoteMta ? { remoteMta: `dns; ${t.remoteMta}` } : {}),
      });
    }
    if (kept) {
      d.last = t;
      d.lastHop = undefined;
      // smtp_trouble.c: msg_info("%s: %s", queue_id, reason) when moving on to the next server
      // (connect failures were logged by tryServer already).
      if (!t.connect) ctx.log.write(ctx.service, `${d.request.queueId}: ${t.reason}`);
    } else if (t.scope !== 'recipient') {
      d.last = t;
      d.lastHop = undefined;
    }
  };

  /** Run the transaction on a ready session and settle what it decided. Returns false when a reused session was stale. */
  const transact = async (d: Delivery, session: Session, content: MessageContent, policy: TlsPolicy, key: string, final: boolean, reused: boolean): Promise<boolean> => {
    d.connected = now();
    const pre = precheck(session, d.request, content);
    if (pre) {
      applyTrouble(d, pre, [...d.pending.values()], final, policy, session);
      await cache.put(key, session);
      return true;
    }
    if (reused && env.settings.tlsLoglevel >= 1 && session.tlsUsed && session.evaluation) {
      ctx.log.write(ctx.service, ctx.tls.summaryLine(session.evaluation, session.server, true));
    }
    const recipients = [...d.pending.values()];
    const tr = await runTransaction(session, d.request, recipients, content, env.settings.timeouts, now);
    session.useCount++;
    if (reused && tr.brokeBeforeMail) {
      // A cached connection the server had closed: nothing was delivered; try a fresh one.
      return false;
    }
    for (const r of recipients) {
      const res = tr.results.get(r.index);
      if (!res) continue;
      if (res.kind === 'sent') {
        d.sent++;
        outcome(d, r, {
          status: 'sent', dsn: res.reply.dsn() ?? '2.0.0', reason: res.reply.text(), relay: session.relay,
          ...(session.useCount >= 2 ? { connUse: session.useCount } : {}),
          ...tlsField(policy, session),
          remoteReply: res.reply.text(), remoteMta: `dns; ${session.server.hostname}`,
        });
      } else {
        applyTrouble(d, res.trouble, [r], final, policy, session);
      }
    }
    if (tr.sessionTrouble) {
      // RFC 5321 §4.1.1.4 / Postfix: a connection lost during DATA is retried later, never bounced.
      applyTrouble(d, tr.sessionTrouble, recipients.filter((r) => d.pending.has(r.index)), final, policy, session);
      return true;
    }
    if (tr.reusable) await cache.put(key, session);
    else await quietQuit(session.chat, env.settings.timeouts.quit);
    return true;
  };

  const credentialsFor = async (d: Delivery, hop: string, server: ServerTarget): Promise<SaslCredentials | Trouble | undefined> => {
    if (!saslEnabled) return undefined;
    const c = await findCredentials(ctx.config, ctx.tables, hop, server.hostname, d.request.sender);
    if (c.kind === 'tempfail') {
      warn(`smtp_sasl_password_maps lookup error: ${c.reason}`);
      return noConnection('Temporary lookup error', '4.3.0');
    }
    return c.kind === 'found' ? c.credentials : undefined;
  };

  const tryServer = async (d: Delivery, hop: string, server: ServerTarget, policy: TlsPolicy, key: string, content: MessageContent, final: boolean): Promise<void> => {
    const creds = await credentialsFor(d, hop, server);
    if (creds && 'scope' in creds) {
      applyTrouble(d, creds, [...d.pending.values()], true);
      return;
    }
    // smtp.h PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE.
    const plaintextFallbackOk = d.request.activeTime - d.request.arrivalTime >= minBackoffMs && !creds && !d.request.requireTls;
    const base = { plaintextFallbackOk, ...(creds ? { credentials: creds } : {}) };
    let open = await openSession(env, server, policy, { ...base, noStarttls: false });
    // smtp_connect.c: after a failed opportunistic handshake, the same address again without TLS.
    if (!open.ok && open.reconnectPlaintext) open = await openSession(env, server, policy, { ...base, noStarttls: true });
    if (!open.ok) {
      // smtp_connect.c: every failed connect is logged, "The reason already includes the IP address and TCP port".
      if (open.trouble.connect) ctx.log.write(ctx.service, open.trouble.reason);
      applyTrouble(d, open.trouble, [...d.pending.values()], final, policy);
      return;
    }
    d.sessions++;
    await transact(d, open.session, content, policy, key, final, false);
  };

  const deliverHop = async (d: Delivery, hop: string, lastHop: boolean, limited: boolean, content: MessageContent): Promise<void> => {
    const policy = await ctx.tls.policyFor(hop, { tlsRequiredNo: d.request.tlsRequiredNo, requireTls: d.request.requireTls });
    if (policy.level === 'invalid') {
      const inv = policy.invalid ?? { reason: 'client TLS configuration problem', dsn: '4.7.5' };
      d.last = noConnection(inv.reason, inv.dsn);
      return;
    }
    const key = cacheKey(d.request.transport, hop, policy);
    // smtp_connect.c smtp_reuse_session(): a cached session first; its server is then
    // taken off the address list and counts as one session.
    const used = new Set<string>();
    for (let cached = cache.take(key); cached && d.pending.size > 0; cached = cache.take(key)) {
      const ok = await transact(d, cached, content, policy, key, false, true);
      if (!ok) {
        cached.chat.destroy();
        continue;
      }
      used.add(`${cached.server.address}:${cached.server.port}`);
      d.sessions++;
      break;
    }
    if (d.pending.size === 0) return;
    const res = await resolveHop(hop, env.connect, ctx.resolver);
    if (res.kind === 'fail') {
      d.last = noConnection(res.reason, res.dsn);
      d.lastHop = { hop, fallback: !limited };
      return;
    }
    const targets = res.targets.filter((t) => !used.has(`${t.address}:${t.port}`));
    for (let i = 0; i < targets.length && d.pending.size > 0; i++) {
      // postconf(5) smtp_mx_session_limit: sessions that got past EHLO count (smtp_connect.c:
      // "Don't count handshake errors towards the session limit").
      const atLimit = limited && sessionLimit > 0 && d.sessions + 1 >= sessionLimit;
      const final = lastHop && (i === targets.length - 1 || atLimit);
      await tryServer(d, hop, targets[i]!, policy, key, content, final);
      if (limited && sessionLimit > 0 && d.sessions >= sessionLimit) break;
    }
  };

  const deliver = async (request: DeliveryRequest): Promise<DeliveryResult> => {
    const d = new Delivery(request, now());
    let content: MessageContent;
    try {
      content = await loadContent(request.queueFile, lineLimit);
    } catch (err) {
      const t = noConnection(`cannot read queue file: ${(err as Error).message}`, '4.3.0');
      applyTrouble(d, t, request.recipients, true);
      return { outcomes: d.outcomes };
    }
    const hops = [
      ...request.nexthops.map((hop) => ({ hop, limited: true })),
      ...request.fallbackRelays.map((hop) => ({ hop, limited: false })),
    ];
    for (let i = 0; i < hops.length && d.pending.size > 0; i++) {
      await deliverHop(d, hops[i]!.hop, i === hops.length - 1, hops[i]!.limited, content);
    }
    return finish(d);
  };

  /** Recipients still pending get the last failure as final; siteDeferral when it throttles. */
  const finish = (d: Delivery): DeliveryResult => {
    const rest = [...d.pending.values()];
    const last = leftOverTrouble(d);
    if (rest.length > 0) applyTrouble(d, last, rest, true);
    // qmgr_deliver.c: a throttled destination is marked dead only when nothing got through.
    const t = d.throttledBy;
    const throttled = t !== undefined && d.sent === 0 && d.outcomes.every((o) => o.status === 'deferred');
    return {
      outcomes: d.outcomes,
      ...(throttled ? { siteDeferral: { reason: t.reason, dsn: t.dsn } } : {}),
    };
  };

  /**
   * smtp_connect.c, left-over recipients: "server unavailable or unable to receive mail"
   * when nothing was tried; a hard lookup failure of a relayhost or fallback relay is a
   * configuration problem (4.3.5 plus a warning), never a bounce.
   */
  const leftOverTrouble = (d: Delivery): Trouble => {
    const last = d.last ?? noConnection('server unavailable or unable to receive mail', '4.3.0');
    if (last.dsn.startsWith('4') || d.pending.size === 0 || !d.lastHop) return last;
    const param = d.lastHop.fallback ? 'smtp_fallback_relay'
      : relayhosts.includes(d.lastHop.hop) ? 'relayhost' : undefined;
    if (!param) return last;
    warn(`${param} configuration problem`);
    return { ...last, dsn: '4.3.5' };
  };

  return {
    deliver,
    close: () => cache.closeAll(),
  };
}

/** One read of the queue file; lines broken at smtp_line_length_limit, dot-stuffed once for every server tried. */
async function loadContent(queueFile: string, lineLimit: number): Promise<MessageContent> {
  const file = await readFile(queueFile);
  const { envelope, content } = decodeQueueFile(file);
  const header = content.subarray(0, envelope.headerLength);
  let headersNeedUtf8 = false;
  for (const b of header) {
    if (b >= 0x80) {
      headersNeedUtf8 = true;
      break;
    }
  }
  return { stuffed: dotStuff(breakLongLines(content, lineLimit)), headersNeedUtf8 };
}

