/**
 * attempt.ts — one delivery attempt of the SMTP client (Postfix smtp(8)
 * handling one delivery request): one DeliveryRequest in, one
 * RecipientOutcome per recipient and one session record per TLS session out.
 *
 * The attempt runs in named steps:
 *   hop          per next hop (the relayhost/transport list, then the
 *                fallback relays): the hop policy (`invalid` → no connection,
 *                deferral with the policy's reason), the MX list (connect.ts),
 *                a cached session if one is idle — the final server when no
 *                other server of the list is left (smtp_reuse_session()) —
 *                then the servers of the list it did not serve;
 *   server       per server of that list, at most smtp_mx_session_limit
 *                sessions for the primary hops: the server policy (connect,
 *                skip, defer), SASL credentials, the connection (session.ts,
 *                with the plaintext retry after a failed opportunistic
 *                handshake);
 *   transaction  MAIL, RCPT, DATA on a ready session (transaction.ts), then
 *                the session goes back to the cache or is closed.
 * REQUIRETLS (RFC 8689, delivery/tls/requiretls.ts decides): the hop step
 * looks up the smtp_requiretls_policy action for a REQUIRETLS message (and
 * lets it win over `TLS-Required: No`); the server step refuses a server
 * whose policy cannot verify its certificate (`beforeConnect`, no
 * connection); the session asks the other steps (session.ts). The action is
 * part of the connection-cache key, and the `tls=` value gets the
 * requiretls feature (record.ts tlsFeatureField).
 * Every failure goes through trouble.ts: keep the recipient for the next
 * server, defer it or bounce it; what is left when the servers run out gets
 * the last failure (`leftOver`); `siteDeferral` throttles the destination.
 *
 * Contract:
 * - `run()` rejects only for programming errors.
 * - Session records (outcome.ts) are collected in the order the sessions
 *   happened; every outcome decided on a session points at its record.
 * - Logs, as smtp(8) does: every `connect to ...` failure (no queue ID) and
 *   `QUEUEID: reason` for other soft failures that move on to the next
 *   server. TLS lines are not logged here: they are derived from the
 *   session records by the mail log subscriber. The `to=` lines are the
 *   queue manager's.
 * - The content is not read before a server said 354 (content.ts streams it
 *   from the queue file at DATA time, for each server anew); only a message
 *   that asked for SMTPUTF8 has its header section scanned first (the
 *   SMTPUTF8 pre-check).
 * - Deliberate difference: a session is cached after every clean delivery
 *   (as if the queue manager always asked for on-demand caching; the idle
 *   limit smtp_connection_cache_time_limit bounds the cost).
 *
 * Not here: routing (scheduler/), the spool (read-only access to the queue
 * file), policy decisions (delivery/tls/), what failures mean (trouble.ts).
 */
import type { Config } from '../../config/types.ts';
import type { TableSet } from '../../maps/registry.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { Resolver } from '../dns/resolver.ts';
import type { TlsSessionRecord } from '../outcome.ts';
import {
  beforeConnect, certificateMatchRequired, evaluateRequireTlsPolicy, policyTables, requireTlsAction, requireTlsFeature,
  requireTlsStatus, tlsRequiredByPolicy, tlsRequiredNoApplies, type FeatureStatus, type RequireTlsPolicy,
} from '../tls/requiretls.ts';
import type { ConnectPolicy, TlsEngine, TlsPolicy } from '../tls/types.ts';
import type { DeliveryRecipient, DeliveryRequest, DeliveryResult, RecipientOutcome } from '../types.ts';
import { resolveHop, type ConnectSettings, type ServerTarget } from './connect.ts';
import { contentSettings, queueContent, type ContentSettings } from './content.ts';
import { notConnectedRecord, sessionRecord, tlsFeatureField } from './record.ts';
import { cacheKey, sameEffectivePolicy, type ConnectionCache } from './reuse.ts';
import { findCredentials, type SaslCredentials } from './sasl.ts';
import { openSession, quietQuit, type OpenResult, type RequireTlsOptions, type Session, type SessionEnv } from './session.ts';
import { precheck, runTransaction, type MessageContent } from './transaction.ts';
import { decide, leftOver, noConnection, requireTlsTrouble, siteDeferral, type LastHop, type Trouble } from './trouble.ts';

/** The client settings every attempt of one agent shares (read once from the service's config). */
export interface ClientSettings {
  /** smtp_mx_session_limit. */
  readonly sessionLimit: number;
  /** minimal_backoff_time in ms (plaintext fallback after a STARTTLS failure). */
  readonly minBackoffMs: number;
  readonly saslEnabled: boolean;
  /** smtp_log_tls_feature_status. */
  readonly featureStatus: boolean;
  readonly relayhosts: readonly string[];
  /** smtp_line_length_limit, disable_mime_output_conversion, the MIME limits. */
  readonly content: ContentSettings;
  /** soft_bounce, only to tell whether the destination is throttled (the queue manager applies it). */
  readonly softBounce: boolean;
  /** requiretls_enable, tls_required_enable, smtp_requiretls_policy (RFC 8689; requiretls.ts). */
  readonly requireTlsEnable: boolean;
  readonly tlsRequiredEnable: boolean;
  readonly requireTlsPolicy: readonly string[];
}

export function clientSettings(config: Config): ClientSettings {
  return {
    sessionLimit: config.getInt('smtp_mx_session_limit'),
    minBackoffMs: config.getTime('minimal_backoff_time') * 1000,
    saslEnabled: config.getBool('smtp_sasl_auth_enable'),
    featureStatus: config.getBool('smtp_log_tls_feature_status'),
    relayhosts: config.getList('relayhost'),
    content: contentSettings(config),
    softBounce: config.getBool('soft_bounce'),
    requireTlsEnable: config.getBool('requiretls_enable'),
    tlsRequiredEnable: config.getBool('tls_required_enable'),
    requireTlsPolicy: config.getList('smtp_requiretls_policy'),
  };
}

/** What an attempt needs from its agent. */
export interface ClientEnv {
  readonly config: Config;
  readonly settings: ClientSettings;
  readonly session: SessionEnv;
  readonly connect: ConnectSettings;
  readonly resolver: Resolver;
  readonly tls: TlsEngine;
  /** For smtp_sasl_password_maps. */
  readonly tables: TableSet;
  readonly cache: ConnectionCache;
  readonly log: MailLog;
  readonly service: string;
  readonly now: () => number;
}

/** One entry of the hop list. */
interface HopPlan {
  readonly hop: string;
  /** The last hop of the list: its last server is final. */
  readonly last: boolean;
  /** A fallback relay (smtp_fallback_relay), not a primary next hop: its failures are fallback configuration problems. */
  readonly fallback: boolean;
}

/** How the outcome of a failure or a transaction is settled. */
interface SettleOptions {
  /** No other server will be tried after this one. */
  readonly finalServer: boolean;
  /** The policy the server was (to be) reached with: for the tls= field. */
  readonly policy?: TlsPolicy;
  /** The session the outcome was decided on. */
  readonly session?: Session;
  /** Index of the session record the outcome was decided on. */
  readonly record?: number;
  /** Where the requiretls feature of the tls= field ended (absent: undecided). */
  readonly requireTls?: FeatureStatus;
  /** The reason was logged already (a TLS policy warning): no `QUEUEID: reason` line. */
  readonly logged?: boolean;
}

/**
 * The content of a request, read from its queue file at DATA time (content.ts). Only
 * SMTPUTF8 mail has its header section scanned up front (the pre-check needs it).
 */
export async function messageContent(env: ClientEnv, request: DeliveryRequest): Promise<MessageContent> {
  const source = queueContent(request.queueFile);
  const headersNeedUtf8 = request.smtputf8 ? await source.headersNeedUtf8() : false;
  let logged = false;
  const limit = env.settings.content.lineLimit;
  // smtp_proto.c smtp_text_out(): logged once per delivery.
  const onLineBroken = (): void => {
    if (logged) return;
    logged = true;
    env.log.write(env.service, `${request.queueId}: breaking line > ${limit} bytes with <CR><LF>SPACE`);
  };
  return { source, headersNeedUtf8, settings: env.settings.content, onLineBroken };
}

/** A server's `address:port` (the address list holds each at most once). */
function endpoint(server: { readonly address: string; readonly port: number }): string {
  return `${server.address}:${server.port}`;
}

export class DeliveryAttempt {
  private readonly pending = new Map<number, DeliveryRecipient>();
  private readonly outcomes: RecipientOutcome[] = [];
  private readonly records: TlsSessionRecord[] = [];
  private readonly started: number;
  private last: Trouble | undefined;
  /** Where the last no-connection failure happened (relayhost/fallback lookups are configuration problems). */
  private lastHop: LastHop | undefined;
  /** The throttling failure that deferred recipients (Postfix SMTP_THROTTLE). */
  private throttledBy: Trouble | undefined;
  private connected: number | undefined;
  /** Sessions of the current next hop that got past EHLO (smtp_mx_session_limit counts them per next hop). */
  private sessions = 0;
  private content!: MessageContent;
  /** The smtp_requiretls_policy action of the current next hop (`disable` unless the message asked for REQUIRETLS). */
  private reqtls: RequireTlsPolicy = 'disable';
  /** A next hop loops back to us: smtp_connect.c tries no further hop or fallback relay. */
  private looped = false;

  constructor(private readonly env: ClientEnv, private readonly request: DeliveryRequest) {
    this.started = env.now();
    for (const r of request.recipients) this.pending.set(r.index, r);
  }

  async run(): Promise<DeliveryResult> {
    try {
      this.content = await messageContent(this.env, this.request);
    } catch (err) {
      this.settle(noConnection(`cannot read queue file: ${(err as Error).message}`, '4.3.0'), this.request.recipients, { finalServer: true });
      return { outcomes: this.outcomes, sessions: this.records };
    }
    const hops = [
      ...this.request.nexthops.map((hop) => ({ hop, fallback: false })),
      ...this.request.fallbackRelays.map((hop) => ({ hop, fallback: true })),
    ];
    for (let i = 0; i < hops.length && this.pending.size > 0 && !this.looped; i++) {
      await this.hop({ ...hops[i]!, last: i === hops.length - 1 });
    }
    return this.finish();
  }

  // ---- the hop step -----------------------------------------------------------

  private async hop(plan: HopPlan): Promise<void> {
    const { request, env } = this;
    this.reqtls = await this.requireTlsPolicy(plan.hop);
    // smtp.h STATE_TLS_NOT_REQUIRED: REQUIRETLS wins over TLS-Required: No.
    const tlsRequiredNo = tlsRequiredNoApplies(request, { tlsRequiredEnable: env.settings.tlsRequiredEnable, requireTlsEnable: env.settings.requireTlsEnable });
    const policy = await env.tls.policyFor(plan.hop, { tlsRequiredNo, requireTls: request.requireTls });
    // An invalid policy connects nowhere; as Postfix (smtp_connect.c) the servers are still
    // looked up and the server step defers each one with its per-server warning.
    // smtp_key.c SMTP_KEY_FLAG_REQTLS_LEVEL: a cached session serves only the same REQUIRETLS action;
    // the engine's tag keeps a cached session from outliving a change of a published policy.
    const key = policy.level === 'invalid' ? ''
      : `${cacheKey(request.transport, plan.hop, policy)}${env.tls.reuseTag?.(policy) ?? ''}${this.reqtls === 'disable' ? '' : `|requiretls=${this.reqtls}`}`;
    // smtp_connect.c: the servers are looked up first, then a cached session serves one of
    // them (smtp_reuse_session()), so that it knows whether it is the final server.
    const res = await resolveHop(plan.hop, env.connect, env.resolver);
    if (res.kind === 'fail') {
      this.last = noConnection(res.reason, res.dsn);
      this.lastHop = { hop: plan.hop, fallback: plan.fallback };
      if (res.loop) this.looped = true;
      return;
    }
    // smtp_connect.c: "Enforce the MX session and MX address counts per next-hop or fall-back
    // destination" — the count starts again at each next hop, fallback relays included.
    const limit = env.settings.sessionLimit;
    this.sessions = 0;
    const used = policy.level === 'invalid' ? undefined : await this.reuseCached(key, policy, res.targets, plan.last, limit);
    const targets = res.targets.filter((t) => endpoint(t) !== used);
    for (let i = 0; i < targets.length && this.pending.size > 0; i++) {
      // postconf(5) smtp_mx_session_limit: sessions that got past EHLO count (smtp_connect.c:
      // "Don't count handshake errors towards the session limit").
      const atLimit = limit > 0 && this.sessions + 1 >= limit;
      await this.server(targets[i]!, policy, key, { finalServer: plan.last && (i === targets.length - 1 || atLimit) });
      if (limit > 0 && this.sessions >= limit) break;
    }
  }

  /**
   * smtp_connect.c smtp_reuse_session(): a cached session first; its server is
   * then taken off the address list and counts as one session. It is the
   * final server when no other server is left for the last next hop (or the
   * session limit is reached), as smtp_update_addr_list() leaves the list:
   * a soft failure on it is then a deferral on that session (with its
   * conn_use= and its record), not a recipient kept for a server that never
   * comes. Returns the `address:port` of the server it served, if any.
   */
  private async reuseCached(key: string, hopPolicy: ConnectPolicy, targets: readonly ServerTarget[], lastHop: boolean, limit: number): Promise<string | undefined> {
    for (let cached = this.env.cache.take(key); cached && this.pending.size > 0; cached = this.env.cache.take(key)) {
      // The same effective policy for this server as when the connection was made (reuse.ts).
      // Quiet: when the policy now rules this server out, the server step below says so, once.
      const sp = await this.env.tls.serverPolicy(hopPolicy, cached.server, { quiet: true });
      if (sp.kind !== 'connect' || !sameEffectivePolicy(cached.policy, sp.policy)) {
        await quietQuit(cached.chat, this.env.session.settings.timeouts.quit);
        continue;
      }
      const server = endpoint(cached.server);
      const othersLeft = targets.some((t) => endpoint(t) !== server) && !(limit > 0 && this.sessions + 1 >= limit);
      if (!(await this.transaction(cached, key, { finalServer: lastHop && !othersLeft, reused: true }))) {
        cached.chat.destroy();
        continue;
      }
      this.sessions++;
      return server;
    }
    return undefined;
  }

  // ---- the server step ----------------------------------------------------------

  private async server(server: ServerTarget, hopPolicy: TlsPolicy, key: string, opts: { readonly finalServer: boolean }): Promise<void> {
    const sp = await this.env.tls.serverPolicy(hopPolicy, server);
    if (sp.kind !== 'connect') {
      // The policy said not to connect to this server: a soft failure of this server, and its record
      // (none for a configuration problem: no TLS was at stake). The policy warning was logged.
      const why = sp.kind === 'skip' ? { reason: sp.reason, dsn: sp.dsn } : sp.deferral;
      const noRecord = sp.kind === 'defer' && sp.noRecord === true;
      const record = noRecord ? undefined : this.record(notConnectedRecord({ time: this.env.now(), applied: sp.applied, server }, why.reason, sp.resultType));
      // smtp_connect.c: a server the policy rules out is passed over; when none is left the
      // recipients are deferred by smtp_sess_fail(), which throttles the destination.
      this.settle(noConnection(why.reason, why.dsn, true), [...this.pending.values()], { ...opts, logged: true, ...(record !== undefined ? { record } : {}) });
      return;
    }
    const policy = sp.policy;
    const gate = this.requireTlsGate(server, policy);
    if (gate) {
      this.settle(gate.trouble, [...this.pending.values()], { ...opts, policy, ...(gate.feature ? { requireTls: gate.feature } : {}) });
      return;
    }
    const creds = await this.credentialsFor(server);
    if (creds && 'scope' in creds) {
      this.settle(creds, [...this.pending.values()], { finalServer: true });
      return;
    }
    const open = await this.open(server, policy, creds);
    if (!open.ok) {
      // smtp_connect.c: every failed connect is logged, "The reason already includes the IP address and TCP port".
      if (open.trouble.connect) this.env.log.write(this.env.service, open.trouble.reason);
      const record = open.tls ? this.record(sessionRecord(this.recordInput(policy, server, open, open.requireTls), open.tls, false)) : undefined;
      this.settle(open.trouble, [...this.pending.values()], {
        ...opts, policy, ...(record !== undefined ? { record } : {}), ...(open.requireTls ? { requireTls: open.requireTls } : {}),
      });
      return;
    }
    this.sessions++;
    await this.transaction(open.session, key, { finalServer: opts.finalServer, reused: false });
  }

  /** Open a session; after a failed opportunistic handshake, the same address again without TLS (smtp_connect.c). */
  private async open(server: ServerTarget, policy: ConnectPolicy, creds: SaslCredentials | undefined): Promise<OpenResult> {
    const { request, env } = this;
    // smtp.h PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE (never when REQUIRETLS requires TLS).
    const plaintextFallbackOk = request.activeTime - request.arrivalTime >= env.settings.minBackoffMs && !creds && !tlsRequiredByPolicy(this.reqtls);
    const requireTls = this.requireTlsOptions(policy);
    const base = { plaintextFallbackOk, ...(creds ? { credentials: creds } : {}), ...(requireTls ? { requireTls } : {}) };
    const first = await openSession(env.session, server, policy, { ...base, noStarttls: false });
    if (first.ok || !first.reconnectPlaintext) return first;
    // smtp.h RETRY_AS_PLAINTEXT: not the final server any more, so smtp_bulk_fail() logs "QUEUEID: reason"
    // for the kept recipients — after the SSL_connect line: with the session record that carries it.
    const note = `${request.queueId}: ${first.trouble.reason}`;
    if (first.tls) this.record(sessionRecord(this.recordInput(policy, server, first, first.requireTls), { ...first.tls, logLines: [...first.tls.logLines, note] }, false));
    else env.log.write(env.service, note);
    return openSession(env.session, server, policy, { ...base, noStarttls: true });
  }

  // ---- REQUIRETLS (RFC 8689; the decisions are requiretls.ts's) ---------------------

  /** smtp_connect.c: the smtp_requiretls_policy action for this next hop; `disable` unless the message asked for it. */
  private async requireTlsPolicy(hop: string): Promise<RequireTlsPolicy> {
    const { env, request } = this;
    if (!request.requireTls || !env.settings.requireTlsEnable) return 'disable';
    const policy = await evaluateRequireTlsPolicy(env.settings.requireTlsPolicy, hop, policyTables((spec) => env.tables.get(spec)), (w) => env.log.warn(env.service, w));
    return requireTlsAction(request, env.settings.requireTlsEnable, policy);
  }

  /** smtp_get_effective_tls_level(): may this server's policy carry a REQUIRETLS message at all? */
  private requireTlsGate(server: ServerTarget, policy: ConnectPolicy): { readonly trouble: Trouble; readonly feature?: FeatureStatus } | undefined {
    if (this.reqtls === 'disable') return undefined;
    const step = beforeConnect(this.reqtls, policy.level, server.hostname, this.request.queueId, certificateMatchRequired(policy.applied));
    if (step.kind === 'continue') {
      if (step.info) this.env.log.write(this.env.service, step.info);
      return undefined;
    }
    // smtp_connect.c: msg_warn("TLS policy lookup for %s/%s: %s"), then the next server.
    this.env.log.warn(this.env.service, `TLS policy lookup for ${server.nexthop}/${server.hostname}: ${step.text}`);
    return { trouble: { ...requireTlsTrouble('none', step), logged: true }, ...(step.feature ? { feature: step.feature } : {}) };
  }

  private requireTlsOptions(policy: ConnectPolicy): RequireTlsOptions | undefined {
    if (this.reqtls === 'disable') return undefined;
    return { action: this.reqtls, queueId: this.request.queueId, matchRequired: certificateMatchRequired(policy.applied) };
  }

  private async credentialsFor(server: ServerTarget): Promise<SaslCredentials | Trouble | undefined> {
    if (!this.env.settings.saslEnabled) return undefined;
    const c = await findCredentials(this.env.config, this.env.tables, server.nexthop, server.hostname, this.request.sender);
    if (c.kind === 'tempfail') {
      this.env.log.warn(this.env.service, `smtp_sasl_password_maps lookup error: ${c.reason}`);
      return noConnection('Temporary lookup error', '4.3.0');
    }
    return c.kind === 'found' ? c.credentials : undefined;
  }

  // ---- the transaction step --------------------------------------------------------

  /** Run the transaction on a ready session and settle what it decided. False when a reused session was stale. */
  private async transaction(session: Session, key: string, opts: { readonly finalServer: boolean; readonly reused: boolean }): Promise<boolean> {
    const { env, request } = this;
    this.connected = env.now();
    const pre = precheck(session, request, this.content);
    const requireTls = session.requireTls?.feature ? { requireTls: session.requireTls.feature } : {};
    if (pre) {
      const record = this.record(sessionRecord(this.recordInput(session.policy, session.server, session, session.requireTls?.feature, session.requireTls?.send), session.tls, opts.reused));
      this.settle(pre, [...this.pending.values()], { finalServer: opts.finalServer, policy: session.policy, session, record, ...requireTls });
      await env.cache.put(key, session);
      return true;
    }
    const recipients = [...this.pending.values()];
    const tr = await runTransaction(session, request, recipients, this.content, env.session.settings.timeouts, env.now);
    session.useCount++;
    // A cached connection the server had closed: nothing was delivered; try a fresh one.
    if (opts.reused && tr.brokeBeforeMail) return false;
    const record = this.record(sessionRecord(this.recordInput(session.policy, session.server, session, session.requireTls?.feature, session.requireTls?.send), session.tls, opts.reused));
    const settle = { finalServer: opts.finalServer, policy: session.policy, session, record, ...requireTls };
    for (const r of recipients) {
      const res = tr.results.get(r.index);
      if (!res) continue;
      if (res.kind === 'trouble') {
        this.settle(res.trouble, [r], settle);
        continue;
      }
      this.outcome(r, {
        status: 'sent', dsn: res.reply.dsn() ?? '2.0.0', reason: res.reply.text(), relay: session.relay,
        ...this.sessionFields(settle),
        remoteReply: res.reply.text(), remoteMta: `dns; ${session.server.hostname}`,
      });
    }
    if (tr.sessionTrouble) {
      // RFC 5321 §4.1.1.4 / Postfix: a connection lost during DATA is retried later, never bounced.
      this.settle(tr.sessionTrouble, recipients.filter((r) => this.pending.has(r.index)), settle);
      return true;
    }
    if (tr.reusable) await env.cache.put(key, session);
    else await quietQuit(session.chat, env.session.settings.timeouts.quit);
    return true;
  }

  // ---- records and outcomes ---------------------------------------------------------

  private recordInput(policy: ConnectPolicy, server: ServerTarget, from: { readonly helo?: string; readonly localAddress?: string }, feature?: FeatureStatus, sent = false) {
    const requireTls = requireTlsStatus(this.reqtls, feature, sent);
    return { time: this.env.now(), applied: policy.applied, server, helo: from.helo, sendingIp: from.localAddress, ...(requireTls ? { requireTls } : {}) };
  }

  /** Keep a session record; returns its index. */
  private record(r: TlsSessionRecord): number {
    this.records.push(r);
    return this.records.length - 1;
  }

  /** conn_use=, tls= (smtp_log_tls_feature_status, from the policy the record carries) and the record index. */
  private sessionFields(o: SettleOptions, relayNone = false): Pick<RecipientOutcome, 'connUse' | 'tls' | 'session'> {
    const tls = this.env.settings.featureStatus ? this.featureField(o, relayNone) : '';
    return {
      ...(o.session && o.session.useCount >= 2 ? { connUse: o.session.useCount } : {}),
      ...(tls ? { tls } : {}),
      ...(o.record !== undefined ? { session: o.record } : {}),
    };
  }

  /**
   * The tls= value (record.ts tlsFeatureField), with the requiretls feature
   * when REQUIRETLS is active. Without a connection only a REQUIRETLS
   * decision is logged, the level undecided (`may?/!requiretls:nocertmatch`).
   */
  private featureField(o: SettleOptions, relayNone: boolean): string {
    const policy = o.policy;
    if (!policy || policy.level === 'invalid' || (relayNone && !o.requireTls)) return '';
    const rq = this.reqtls === 'disable' || this.reqtls === 'error' ? undefined : (o.requireTls ?? requireTlsFeature(this.reqtls));
    return tlsFeatureField(policy.applied, o.record !== undefined ? this.records[o.record] : undefined, rq);
  }

  private outcome(r: DeliveryRecipient, fields: Omit<RecipientOutcome, 'index' | 'timing'>): void {
    const finished = this.env.now();
    this.pending.delete(r.index);
    this.outcomes.push({ index: r.index, ...fields, timing: { started: this.started, connected: this.connected ?? finished, finished } });
  }

  /** Apply one failure to some recipients: keep, defer or bounce each (trouble.ts decide). */
  private settle(t: Trouble, recipients: readonly DeliveryRecipient[], o: SettleOptions): void {
    let kept = false;
    for (const r of recipients) {
      const v = decide(t, o.finalServer);
      if (v.action === 'keep') {
        kept = true;
        continue;
      }
      if (v.action === 'deferred' && t.throttle) this.throttledBy = t;
      this.outcome(r, {
        status: v.action, dsn: v.dsn, reason: t.reason, relay: t.relay,
        ...this.sessionFields(o, t.relay === 'none'),
        ...(t.remoteReply ? { remoteReply: t.remoteReply } : {}),
        ...(t.remoteMta ? { remoteMta: `dns; ${t.remoteMta}` } : {}),
      });
    }
    if (kept || t.scope !== 'recipient') {
      this.last = t;
      this.lastHop = undefined;
    }
    // smtp_trouble.c: msg_info("%s: %s", queue_id, reason) when moving on to the next server
    // (connect failures were logged as they happened).
    if (kept && !t.connect && !t.logged && !o.logged) this.env.log.write(this.env.service, `${this.request.queueId}: ${t.reason}`);
  }

  /** Recipients still pending get the last failure as final; siteDeferral when it throttles. */
  private finish(): DeliveryResult {
    const rest = [...this.pending.values()];
    if (rest.length > 0) {
      const left = leftOver(this.last, this.lastHop, this.env.settings.relayhosts);
      if (left.warning) this.env.log.warn(this.env.service, left.warning);
      this.settle(left.trouble, rest, { finalServer: true });
    }
    const site = this.outcomes.some((o) => o.status === 'sent') ? undefined : siteDeferral(this.throttledBy, this.outcomes, this.env.settings.softBounce);
    return { outcomes: this.outcomes, sessions: this.records, ...(site ? { siteDeferral: site } : {}) };
  }
}
