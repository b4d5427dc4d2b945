/**
 * engine.ts — the TLS policy engine the SMTP client talks to (TlsEngine in
 * types.ts): decide a policy per next hop and per server (policy.ts: the
 * sources and the combiner), hand out connect options with a cached
 * SecureContext (context.ts) and a resumable session (session-cache.ts),
 * judge the peer after the handshake (verify.ts), and word the summary line
 * (summary.ts).
 *
 * Contract:
 * - `policyFor` (the hop step) never rejects; its result is frozen and cached
 *   for POLICY_CACHE_MS per (next hop, TLS-Required: No) — invalid results
 *   are not cached, so a recovered table answers at the next attempt. A
 *   decision with a published MTA-STS policy is reused only while the
 *   service still answers the same policy (same id and fetch): the service is
 *   asked at every delivery (the TXT id check of RFC 8461 §5.1). The server
 *   step's `connect` verdicts are kept with the hop policy they came from
 *   (so for at most POLICY_CACHE_MS), except where DANE is asked (TLSA
 *   records are looked up for every connection).
 *   `serverPolicy` (the server step) asks the per-server sources (per-site
 *   host entries, DANE's TLSA records, MTA-STS mx patterns); when none has
 *   anything to say it returns the hop policy itself. For an invalid hop
 *   policy it defers the server with Postfix's per-server warning. The
 *   SecureContext for a new policy shape is built here, once; if OpenSSL
 *   rejects it the policy is invalid (`client TLS configuration problem`).
 * - `evaluate` decides the peer: DANE (tls/dane.ts matchDane()) where the
 *   policy carries TLSA records — no CA, and for DANE-EE no name or expiry
 *   checks; otherwise verify.ts. Under an MTA-STS `testing` policy the
 *   policy's own checks (a trusted chain naming the MX host, TLS ≥ 1.2) are
 *   evaluated too and what would have failed is reported (`stsTesting`),
 *   never enforced.
 * - `connectOptions` sets `rejectUnauthorized: false` and a no-op
 *   checkServerIdentity: the decision is always ours (evaluate + enforce.ts).
 * - Warnings go to the mail log as `sealpost/<service>[pid]: warning: ...`.
 *
 * Not here: sockets and the SMTP dialogue (delivery/smtp/), what events mean (enforce.ts).
 */
import { isIP } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { Config } from '../../config/types.ts';
import type { TableSet } from '../../maps/registry.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { ConnectPolicy, ServerIdentity, ServerPolicy, TlsEngine, TlsEvaluation, TlsPolicy } from './types.ts';
import { createResolver, type PolicyResolver } from '../dns/resolver.ts';
import { cachingTlsa } from '../dns/answer-cache.ts';
import type { StsPolicySource } from '../mta-sts/service.ts';
import { ContextCache, contextKey } from './context.ts';
import { daneSettings, DEFAULT_DANE_DIGESTS, type DaneDigests } from './dane.ts';
import { decideHop, decideServer, invalidPolicy, policySources, type HopDecision, type PolicyDetails, type PolicyEnv } from './policy.ts';
import { CONFIG_PROBLEM, policyLookupWarning } from './reasons.ts';
import { SessionCache } from './session-cache.ts';
import { evaluateDane, stsTestingCheck } from './published-checks.ts';
import { formatSummary, tlsLogLevel } from './summary.ts';
import { evaluatePeer, peerFacts, rememberPeer, type PeerFacts } from './verify.ts';

export interface TlsEngineOptions {
  readonly config: Config;
  readonly tables: TableSet;
  readonly log: MailLog;
  /** master.cf service name used in log lines (default `smtp`); `lmtp...` selects the lmtp_* parameters. */
  readonly service?: string;
  /** Injected clock (tests). */
  readonly now?: () => number;
  /** The DNSSEC-validating resolver for TLSA records (sealpost_dns_resolvers); without it DANE never applies. */
  readonly resolver?: PolicyResolver;
  /** The daemon's MTA-STS policy service, or a worker thread's client of it; without it MTA-STS is not looked up. */
  readonly sts?: StsPolicySource;
}

/** How long a decided policy is reused for the same next hop. */
export const POLICY_CACHE_MS = 30_000;

export interface SealpostTlsEngine extends TlsEngine {
  /** Engine-private facts of a policy from this engine (STS attributes). */
  details(policy: TlsPolicy): PolicyDetails | undefined;
  /** The hop decision (with its trace) behind a policy from policyFor(). */
  decision(policy: TlsPolicy): HopDecision | undefined;
  /** smtp_tls_loglevel: the SMTP client logs the summary line at ≥ 1. */
  readonly logLevel: number;
  /** Write the session cache file now (daemon stop). */
  flush(): void;
}

export function createTlsEngine(opts: TlsEngineOptions): SealpostTlsEngine {
  return new Engine(opts);
}

/** The MTA-STS policy a hop decision was made with (what must still hold to reuse it). */
interface StsTag {
  readonly domain: string;
  readonly id: string;
  readonly fetchedAt: number;
  readonly mode: string;
}

function stsTagOf(d: HopDecision | undefined): StsTag | undefined {
  const a = d?.steps.find((s) => s.source === 'mta-sts')?.answer;
  if (a?.kind !== 'published' || a.published.kind !== 'sts-policy') return undefined;
  const p = a.published.policy;
  return { domain: p.domain, id: p.id, fetchedAt: p.fetchedAt, mode: p.mode };
}

const FALLBACK_APPLIED = (domain: string) =>
  Object.freeze({ source: 'default' as const, type: 'no-policy-found' as const, domain, strings: [], mxHostPatterns: [], level: 'none' as const, configuredLevel: 'none' as const });

class Engine implements SealpostTlsEngine {
  readonly logLevel: number;
  private readonly now: () => number;
  private readonly warn: (text: string) => void;
  private readonly contexts: ContextCache;
  private readonly sessions: SessionCache;
  private readonly env: PolicyEnv;
  private readonly detailsOf = new WeakMap<TlsPolicy, PolicyDetails>();
  private readonly decisions = new WeakMap<TlsPolicy, HopDecision>();
  private readonly policies = new Map<string, { expires: number; policy: Promise<TlsPolicy>; sts?: StsTag }>();
  /** connect verdicts of the server step, per hop policy and server. */
  private readonly serverMemo = new WeakMap<TlsPolicy, Map<string, ServerPolicy>>();
  private readonly sts: StsPolicySource | undefined;
  private readonly digest: string;
  private readonly maxDepth: number;
  private readonly daneDigests: DaneDigests;

  constructor(opts: TlsEngineOptions) {
    const { config, tables, log } = opts;
    const service = opts.service ?? 'smtp';
    const prefix = service.startsWith('lmtp') ? 'lmtp' : 'smtp';
    this.now = opts.now ?? Date.now;
    this.sts = opts.sts;
    this.warn = (text) => log.warn(service, text);
    this.contexts = new ContextCache(config, prefix);
    this.sessions = new SessionCache({
      database: config.get(`${prefix}_tls_session_cache_database`),
      timeoutSeconds: config.getTime(`${prefix}_tls_session_cache_timeout`),
      warn: this.warn,
      now: this.now,
    });
    const base: PolicyEnv = {
      config, warn: this.warn, prefix, openTable: (spec) => tables.get(spec),
      // Without an injected resolver: the configured one (sealpost_dns_resolvers, else the system's, which sees no AD bit: no DANE).
      // TLSA answers are kept per engine as Postfix's smtp(8) keeps them (dns/answer-cache.ts).
      resolver: cachingTlsa(opts.resolver ?? createResolver(config), this.now),
      ...(opts.sts ? { sts: opts.sts } : {}),
    };
    // The sources are built once per engine (one configuration): a server step costs no parsing.
    this.env = { ...base, sources: policySources(base) };
    this.digest = config.get(`${prefix}_tls_fingerprint_digest`).trim().toLowerCase() || 'sha256';
    this.maxDepth = config.getInt(`${prefix}_tls_scert_verifydepth`);
    this.logLevel = tlsLogLevel(config, prefix);
    let digests = DEFAULT_DANE_DIGESTS;
    try {
      digests = daneSettings(config).digests;
    } catch {
      // The DANE source reports a bad DANE parameter (and defers dane destinations).
    }
    this.daneDigests = digests;
  }

  /**
   * Build (or reuse) the SecureContext now, so a bad cipher string fails the
   * policy, not the connection. `host`: the server step's host, for
   * smtp_connect.c's per-server warning (an invalid hop policy gets it per
   * server from serverPolicy()).
   */
  private withContext(p: TlsPolicy, host?: string): TlsPolicy {
    if (p.level === 'invalid' || p.level === 'none') return p;
    try {
      this.contexts.get(p);
      return p;
    } catch (err) {
      this.warn((err as Error).message);
      if (host !== undefined) this.warn(policyLookupWarning(p.nexthop, host, CONFIG_PROBLEM.reason));
      return invalidPolicy(p.nexthop, p.nexthopDomain, CONFIG_PROBLEM, p.source, p, p.applied, p.matchedEntry);
    }
  }

  private async decide(nexthop: string, message: { readonly tlsRequiredNo: boolean; readonly requireTls: boolean }): Promise<TlsPolicy> {
    let d: HopDecision;
    try {
      d = await decideHop(this.env, nexthop, message);
      d = { ...d, policy: this.withContext(d.policy) };
    } catch (err) {
      // A bug or an unexpected table failure: fail closed, never downgrade.
      this.warn(policyLookupWarning(nexthop, nexthop, (err as Error).message));
      const policy = invalidPolicy(nexthop, nexthop, CONFIG_PROBLEM, 'internal error', message, FALLBACK_APPLIED(nexthop));
      d = { policy, details: Object.freeze({ mxHostPatterns: [], enableRpk: false }), trace: { steps: [], winner: 'default', why: 'internal error' }, steps: [], nexthopDomain: nexthop, flags: message };
    }
    this.detailsOf.set(d.policy, d.details);
    this.decisions.set(d.policy, d);
    return d.policy;
  }

  policyFor(nexthop: string, message: { readonly tlsRequiredNo: boolean; readonly requireTls: boolean }): Promise<TlsPolicy> {
    const key = `${nexthop}\0${message.tlsRequiredNo ? 1 : 0}`;
    const t = this.now();
    const hit = this.policies.get(key);
    if (hit && hit.expires > t) return hit.sts ? this.revalidate(key, hit.policy, hit.sts, nexthop, message) : hit.policy;
    const p = this.decide(nexthop, message);
    const entry: { expires: number; policy: Promise<TlsPolicy>; sts?: StsTag } = { expires: t + POLICY_CACHE_MS, policy: p };
    this.policies.set(key, entry);
    // Do not keep failures: the next attempt asks the tables again. Tag a decision with its MTA-STS policy.
    void p.then((pol) => {
      if (pol.level === 'invalid') {
        if (this.policies.get(key) === entry) this.policies.delete(key);
        return;
      }
      const tag = stsTagOf(this.decisions.get(pol));
      if (tag) entry.sts = tag;
    });
    return p;
  }

  /** A cached decision with an MTA-STS policy: still the service's answer? (RFC 8461 §5.1: checked per delivery.) */
  private async revalidate(key: string, cached: Promise<TlsPolicy>, tag: StsTag, nexthop: string, message: { readonly tlsRequiredNo: boolean; readonly requireTls: boolean }): Promise<TlsPolicy> {
    const r = await this.sts?.lookup(tag.domain);
    if (r?.kind === 'policy' && r.policy.id === tag.id && r.policy.fetchedAt === tag.fetchedAt && r.policy.mode === tag.mode) return cached;
    if (this.policies.get(key)?.policy === cached) this.policies.delete(key);
    return this.policyFor(nexthop, message);
  }

  async serverPolicy(hop: TlsPolicy, server: ServerIdentity, opts?: { readonly quiet?: boolean }): Promise<ServerPolicy> {
    const quiet = opts?.quiet === true;
    const warn = quiet ? (): void => undefined : this.warn;
    const d = this.decisions.get(hop);
    if (!d) {
      if (hop.level !== 'invalid') return { kind: 'connect', policy: hop };
      warn(policyLookupWarning(hop.nexthop, server.hostname, hop.invalid.reason));
      return { kind: 'defer', deferral: hop.invalid, applied: hop.applied, noRecord: true };
    }
    const memoKey = `${server.hostname}|${server.address}|${server.port}|${server.mxAuthenticated}|${server.addressAuthenticated ?? ''}|${server.canonicalName ?? ''}`;
    const memo = this.serverMemo.get(hop)?.get(memoKey);
    if (memo) return memo;
    try {
      const s = await decideServer(quiet ? { ...this.env, warn } : this.env, d, server);
      if (s.verdict.kind !== 'connect' || s.verdict.policy === hop) return s.verdict;
      const p = this.withContext(s.verdict.policy, server.hostname);
      if (p.level === 'invalid') return { kind: 'defer', deferral: p.invalid, applied: p.applied, noRecord: true };
      this.detailsOf.set(p, s.details);
      const verdict: ServerPolicy = { kind: 'connect', policy: p };
      // TLSA records are asked for every connection (a DANE level); other server steps are kept with the hop policy.
      const dane = hop.level === 'dane' || hop.level === 'dane-only' || hop.configuredLevel === 'dane' || hop.configuredLevel === 'dane-only';
      // A quiet answer (the reuse check) is not kept: its warnings were not logged.
      if (!dane && !quiet) {
        let m = this.serverMemo.get(hop);
        if (!m) this.serverMemo.set(hop, (m = new Map()));
        m.set(memoKey, verdict);
      }
      return verdict;
    } catch (err) {
      warn(policyLookupWarning(hop.nexthop, server.hostname, (err as Error).message));
      return { kind: 'defer', deferral: CONFIG_PROBLEM, applied: hop.applied, noRecord: true };
    }
  }

  private sessionKey(policy: ConnectPolicy, server: ServerIdentity, sni: string | undefined): string {
    return `${server.address}:${server.port}|${server.hostname}|${policy.level}|${sni ?? ''}|${contextKey(policy)}`;
  }

  private sniFor(policy: ConnectPolicy, server: ServerIdentity): string | undefined {
    const s = policy.servername;
    if (s === undefined || s === '') return undefined;
    const name = s === 'hostname' ? server.hostname : s === 'nexthop' ? policy.nexthopDomain : s;
    // RFC 6066 §3: literal IP addresses are not permitted in SNI.
    return isIP(name) ? undefined : name;
  }

  connectOptions(policy: ConnectPolicy, server: ServerIdentity): ConnectionOptions {
    const sni = this.sniFor(policy, server);
    const session = this.sessions.get(this.sessionKey(policy, server, sni))?.session;
    return {
      secureContext: this.contexts.get(policy),
      // Our own evaluation decides (verify.ts); Node's checks are off.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      ...(sni !== undefined ? { servername: sni } : {}),
      ...(session ? { session } : {}),
    };
  }

  evaluate(policy: ConnectPolicy, socket: TLSSocket, server: ServerIdentity): TlsEvaluation {
    const key = this.sessionKey(policy, server, this.sniFor(policy, server));
    const facts = peerFacts(socket, this.sessions.get(key)?.peer);
    const evaluation = this.judge(policy, facts, server);
    if (evaluation.failure) {
      // Never resume a session whose peer failed the policy.
      this.sessions.delete(key);
    } else if (this.sessions.enabled) {
      const peer = rememberPeer(facts);
      const s = socket.getSession();
      if (s && socket.getProtocol() !== 'TLSv1.3') this.sessions.set(key, s, peer);
      // TLS 1.3 tickets arrive after the handshake.
      socket.on('session', (ticket: Buffer) => this.sessions.set(key, ticket, peer));
    }
    return evaluation;
  }

  /** The verdict on the peer: DANE where TLSA records apply, else verify.ts; plus the MTA-STS testing checks. */
  private judge(policy: ConnectPolicy, facts: PeerFacts, server: ServerIdentity): TlsEvaluation {
    if (policy.dane) return evaluateDane(policy.dane, facts, server, { digests: this.daneDigests, maxDepth: this.maxDepth, logLevel: this.logLevel });
    const d = this.detailsOf.get(policy);
    const opts = {
      digest: this.digest,
      maxDepth: this.maxDepth,
      logLevel: this.logLevel,
      ...(d?.policyFailure ? { policyFailure: d.policyFailure } : {}),
      ...(d && d.mxHostPatterns.length > 0 ? { mxHostPatterns: d.mxHostPatterns } : {}),
    };
    const evaluation = evaluatePeer(policy, facts, server, opts);
    if (policy.sts?.mode !== 'testing') return evaluation;
    const testing = stsTestingCheck(policy, policy.sts, facts, server, opts);
    return testing ? Object.freeze({ ...evaluation, stsTesting: testing }) : evaluation;
  }

  summaryLine(evaluation: TlsEvaluation, server: ServerIdentity, reused: boolean): string {
    return formatSummary(evaluation, server, reused);
  }

  reuseTag(hop: ConnectPolicy): string {
    const a = this.decisions.get(hop)?.steps.find((s) => s.source === 'mta-sts')?.answer;
    if (a?.kind !== 'published' || a.published.kind !== 'sts-policy') return '';
    return `\u0000sts:${a.published.policy.id}:${a.published.policy.mode}`;
  }

  details(policy: TlsPolicy): PolicyDetails | undefined {
    return this.detailsOf.get(policy);
  }

  decision(policy: TlsPolicy): HopDecision | undefined {
    return this.decisions.get(policy);
  }

  flush(): void {
    this.sessions.save();
  }

  reset(): void {
    this.policies.clear();
    this.contexts.clear();
    this.sessions.clear();
    this.sessions.save();
  }
}
