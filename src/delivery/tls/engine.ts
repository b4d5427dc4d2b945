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
 *   are not cached, so a recovered table answers at the next attempt.
 *   `serverPolicy` (the server step) asks the per-server sources; when none
 *   has anything to say it returns the hop policy itself. The SecureContext
 *   for a new policy shape is built here, once; if OpenSSL rejects it the
 *   policy is invalid (`client TLS configuration problem`).
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
import { ContextCache, contextKey } from './context.ts';
import { decideHop, decideServer, invalidPolicy, type HopDecision, type PolicyDetails, type PolicyEnv } from './policy.ts';
import { CONFIG_PROBLEM, policyLookupWarning } from './reasons.ts';
import { SessionCache } from './session-cache.ts';
import { formatSummary, tlsLogLevel } from './summary.ts';
import { evaluatePeer, peerFacts, rememberPeer } from './verify.ts';

export interface TlsEngineOptions {
  readonly config: Config;
  readonly tables: TableSet;
  readonly log: MailLog;
  /** master.cf service name used in log lines (default `smtp`); `lmtp...` selects the lmtp_* parameters. */
  readonly service?: string;
  /** Injected clock (tests). */
  readonly now?: () => number;
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
  const { config, tables, log } = opts;
  const service = opts.service ?? 'smtp';
  const prefix = service.startsWith('lmtp') ? 'lmtp' : 'smtp';
  const now = opts.now ?? Date.now;
  const warn = (text: string) => log.warn(service, text);
  const contexts = new ContextCache(config, prefix);
  const sessions = new SessionCache({
    database: config.get(`${prefix}_tls_session_cache_database`),
    timeoutSeconds: config.getTime(`${prefix}_tls_session_cache_timeout`),
    warn,
    now,
  });
  const env: PolicyEnv = { config, warn, prefix, openTable: (spec) => tables.get(spec) };
  const details = new WeakMap<TlsPolicy, PolicyDetails>();
  const decisions = new WeakMap<TlsPolicy, HopDecision>();
  const policies = new Map<string, { expires: number; policy: Promise<TlsPolicy> }>();
  const digest = config.get(`${prefix}_tls_fingerprint_digest`).trim().toLowerCase() || 'sha256';
  const maxDepth = config.getInt(`${prefix}_tls_scert_verifydepth`);
  const logLevel = tlsLogLevel(config, prefix);

  /** Build (or reuse) the SecureContext now, so a bad cipher string fails the policy, not the connection. */
  const withContext = (p: TlsPolicy): TlsPolicy => {
    if (p.level === 'invalid' || p.level === 'none') return p;
    try {
      contexts.get(p);
      return p;
    } catch (err) {
      warn((err as Error).message);
      warn(policyLookupWarning(p.nexthop, p.nexthopDomain, CONFIG_PROBLEM.reason));
      return invalidPolicy(p.nexthop, p.nexthopDomain, CONFIG_PROBLEM, p.source, p, p.applied, p.matchedEntry);
    }
  };

  const decide = async (nexthop: string, message: { readonly tlsRequiredNo: boolean; readonly requireTls: boolean }): Promise<TlsPolicy> => {
    let d: HopDecision;
    try {
      d = await decideHop(env, nexthop, message);
      d = { ...d, policy: withContext(d.policy) };
    } catch (err) {
      // A bug or an unexpected table failure: fail closed, never downgrade.
      warn(policyLookupWarning(nexthop, nexthop, (err as Error).message));
      const applied = Object.freeze({ source: 'default' as const, type: 'no-policy-found' as const, domain: nexthop, strings: [], mxHostPatterns: [], level: 'none' as const, configuredLevel: 'none' as const });
      const policy = invalidPolicy(nexthop, nexthop, CONFIG_PROBLEM, 'internal error', message, applied);
      d = { policy, details: Object.freeze({ mxHostPatterns: [], enableRpk: false }), trace: { steps: [], winner: 'default', why: 'internal error' }, steps: [], nexthopDomain: nexthop, flags: message };
    }
    details.set(d.policy, d.details);
    decisions.set(d.policy, d);
    return d.policy;
  };

  const serverPolicy = async (hop: ConnectPolicy, server: ServerIdentity): Promise<ServerPolicy> => {
    const d = decisions.get(hop);
    if (!d) return { kind: 'connect', policy: hop };
    try {
      const s = await decideServer(env, d, server);
      if (s.verdict.kind !== 'connect' || s.verdict.policy === hop) return s.verdict;
      const p = withContext(s.verdict.policy);
      if (p.level === 'invalid') return { kind: 'defer', deferral: p.invalid, applied: p.applied };
      details.set(p, s.details);
      return { kind: 'connect', policy: p };
    } catch (err) {
      warn(policyLookupWarning(hop.nexthop, server.hostname, (err as Error).message));
      return { kind: 'defer', deferral: CONFIG_PROBLEM, applied: hop.applied };
    }
  };

  const sessionKey = (policy: ConnectPolicy, server: ServerIdentity, sni: string | undefined) =>
    `${server.address}:${server.port}|${server.hostname}|${policy.level}|${sni ?? ''}|${contextKey(policy)}`;

  const sniFor = (policy: ConnectPolicy, server: ServerIdentity): string | undefined => {
    const s = policy.servername;
    if (s === undefined || s === '') return undefined;
    const name = s === 'hostname' ? server.hostname : s === 'nexthop' ? policy.nexthopDomain : s;
    // RFC 6066 §3: literal IP addresses are not permitted in SNI.
    return isIP(name) ? undefined : name;
  };

  return {
    logLevel,

    policyFor(nexthop, message) {
      const key = `${nexthop}\0${message.tlsRequiredNo ? 1 : 0}`;
      const t = now();
      const hit = policies.get(key);
      if (hit && hit.expires > t) return hit.policy;
      const p = decide(nexthop, message);
      policies.set(key, { expires: t + POLICY_CACHE_MS, policy: p });
      // Do not keep failures: the next attempt asks the tables again.
      void p.then((pol) => {
        if (pol.level === 'invalid' && policies.get(key)?.policy === p) policies.delete(key);
      });
      return p;
    },

    serverPolicy,

    connectOptions(policy, server): ConnectionOptions {
      const sni = sniFor(policy, server);
      const session = sessions.get(sessionKey(policy, server, sni))?.session;
      return {
        secureContext: contexts.get(policy),
        // Our own evaluation decides (verify.ts); Node's checks are off.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
        ...(sni !== undefined ? { servername: sni } : {}),
        ...(session ? { session } : {}),
      };
    },

    evaluate(policy, socket: TLSSocket, server): TlsEvaluation {
      const d = details.get(policy);
      const key = sessionKey(policy, server, sniFor(policy, server));
      const facts = peerFacts(socket, sessions.get(key)?.peer);
      const evaluation = evaluatePeer(policy, facts, server, {
        digest,
        maxDepth,
        logLevel,
        ...(d?.policyFailure ? { policyFailure: d.policyFailure } : {}),
        ...(d && d.mxHostPatterns.length > 0 ? { mxHostPatterns: d.mxHostPatterns } : {}),
      });
      if (evaluation.failure) {
        // Never resume a session whose peer failed the policy.
        sessions.delete(key);
      } else if (sessions.enabled) {
        const peer = rememberPeer(facts);
        const s = socket.getSession();
        if (s && socket.getProtocol() !== 'TLSv1.3') sessions.set(key, s, peer);
        // TLS 1.3 tickets arrive after the handshake.
        socket.on('session', (ticket: Buffer) => sessions.set(key, ticket, peer));
      }
      return evaluation;
    },

    summaryLine(evaluation, server, reused) {
      return formatSummary(evaluation, server, reused);
    },

    details(policy) {
      return details.get(policy);
    },

    decision(policy) {
      return decisions.get(policy);
    },

    flush() {
      sessions.save();
    },

    reset() {
      policies.clear();
      contexts.clear();
      sessions.clear();
      sessions.save();
    },
  };
}
