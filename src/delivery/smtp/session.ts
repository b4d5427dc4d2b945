/**
 * session.ts — set up one SMTP session to one server (Postfix smtp_helo()):
 * TCP connect, greeting, EHLO (HELO fallback), STARTTLS as the TLS policy
 * demands, EHLO again, AUTH; and close it with QUIT.
 *
 * Contract:
 * - `openSession()` resolves with a ready `Session` (MAIL FROM is next) or a
 *   `Trouble` (never rejects for network or protocol problems). With
 *   `reconnectPlaintext` set the caller should open a new session to the same
 *   server with `noStarttls` (enforce.ts said `reconnect-plaintext`).
 * - TLS: the engine decided the policy; this file only enforces it by asking
 *   enforce.ts what each event means (not offered, refused, handshake failed,
 *   peer evaluated). RFC 3207 §6: bytes received before the handshake are
 *   discarded (chat.detach()) and EHLO is sent again over TLS.
 * - Every session that got as far as the TLS decision (STARTTLS used,
 *   refused, not offered, failed, or not wanted) reports a `TlsOutcome`: the
 *   RFC 8460 result decided where the failure was decided (enforce.ts,
 *   verify.ts), the evaluation, and the certificate lines smtp_tls_loglevel
 *   selects (verification problems when the level requires verification, all
 *   at ≥ 2). The attempt turns it into a session record (outcome.ts); the
 *   mail log writes those lines and the summary line from the record, just
 *   before the delivery's `status=` lines; a failed handshake's record
 *   carries tls_client.c's `SSL_connect error to ...` line(s) the same way
 *   (handshake-error.ts). Logged here, as it happens:
 *   `Host offered STARTTLS: [host]` (smtp_tls_note_starttls_offer) at level
 *   none, and bad EHLO SIZE warnings.
 * - REQUIRETLS (RFC 8689): with `OpenOptions.requireTls` the steps of
 *   delivery/tls/requiretls.ts are asked where Postfix's smtp_proto.c asks
 *   them — STARTTLS not offered or refused, a certificate that failed a
 *   required match, the EHLO after STARTTLS — and a `fail` ends the session
 *   with a REQUIRETLS failure (trouble.ts requireTlsTrouble: 5.7.30 / 5.7.10,
 *   the next server first), taking precedence over the level's own; the
 *   ready session says whether to send the MAIL FROM parameter.
 * - Loops (loop.ts, smtp_proto.c): a greeting that names myhostname is a
 *   warning; an EHLO reply that names it fails the session ("mail for ...
 *   loops back to myself", 5.4.6 at a best MX, 4.4.6 at a backup). A server
 *   that offers SMTPUTF8 but not 8BITMIME is noted, as Postfix notes it.
 * - The TCP connection comes from an injected socket factory
 *   (`SessionEnv.openSocket`, connect.ts openSocket by default), so tests
 *   drive the client over a socket pair.
 *
 * Not here: the mail transaction (transaction.ts), what failures mean for
 * recipients (trouble.ts), connection caching (reuse.ts).
 */
import type { Socket } from 'node:net';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import type { ConnectionOptions } from 'node:tls';
import type { Config } from '../../config/types.ts';
import type { MailLog } from '../../reports/maillog.ts';
import { parseEhlo, parseEhloReply } from '../../smtp/ehlo.ts';
import type { EhloCapabilities } from '../../smtp/ehlo.ts';
import type { SmtpReply } from '../../smtp/reply.ts';
import type { SessionResult, TlsRptResultType } from '../outcome.ts';
import { onHandshakeFailed, onPeerEvaluated, onStarttlsNotOffered, onStarttlsRefused, wantStarttls } from '../tls/enforce.ts';
import { mustMatch } from '../tls/level.ts';
import { withStsTesting } from '../tls/published-checks.ts';
import { HANDSHAKE_FAILURE } from '../tls/reasons.ts';
import { afterTlsEhlo, certificateFailed, noStarttls, starttlsRefused, tlsRequiredByPolicy, type FeatureStatus, type RequireTlsPolicy, type Step } from '../tls/requiretls.ts';
import { tlsLogLevel } from '../tls/summary.ts';
import type { ConnectPolicy, TlsDecision, TlsEngine, TlsEvaluation } from '../tls/types.ts';
import { ChatFailure, SmtpChat } from './chat.ts';
import { sslConnectErrorLines, type HandshakeFailure } from './handshake-error.ts';
import type { ConnectSettings, ServerTarget, SocketFactory } from './connect.ts';
import { ehloLoop, greetingWarning } from './loop.ts';
import { authenticate, chooseMechanism } from './sasl.ts';
import type { SaslCredentials } from './sasl.ts';
import { connectFailed, namaddr, refusedToTalk, relayName, requireTlsTrouble, saslCannot, saslFailed, streamFailure, tlsTrouble } from './trouble.ts';
import type { Trouble, Where } from './trouble.ts';

export interface Timeouts {
  readonly connect: number;
  readonly helo: number;
  readonly mail: number;
  readonly rcpt: number;
  readonly dataInit: number;
  readonly dataXfer: number;
  readonly dataDone: number;
  readonly quit: number;
  readonly starttls: number;
  readonly rset: number;
}

export interface SessionSettings {
  readonly heloName: string;
  /** Milliseconds, from the smtp_*_timeout parameters. */
  readonly timeouts: Timeouts;
  readonly skip5xxGreeting: boolean;
  /** smtp_never_send_ehlo: HELO only. */
  readonly neverEhlo: boolean;
  readonly tlsLoglevel: number;
  readonly noteStarttlsOffer: boolean;
  readonly saslSoftBounce: boolean;
}

export function sessionSettings(config: Config): SessionSettings {
  const ms = (name: string): number => Math.max(1, config.getTime(name)) * 1000;
  return {
    heloName: config.get('smtp_helo_name') || config.get('myhostname'),
    timeouts: {
      connect: ms('smtp_connect_timeout'),
      helo: ms('smtp_helo_timeout'),
      mail: ms('smtp_mail_timeout'),
      rcpt: ms('smtp_rcpt_timeout'),
      dataInit: ms('smtp_data_init_timeout'),
      dataXfer: ms('smtp_data_xfer_timeout'),
      dataDone: ms('smtp_data_done_timeout'),
      quit: ms('smtp_quit_timeout'),
      starttls: ms('smtp_starttls_timeout'),
      rset: ms('smtp_rset_timeout'),
    },
    skip5xxGreeting: config.getBool('smtp_skip_5xx_greeting'),
    neverEhlo: config.getBool('smtp_never_send_ehlo'),
    tlsLoglevel: tlsLogLevel(config),
    noteStarttlsOffer: config.getBool('smtp_tls_note_starttls_offer'),
    saslSoftBounce: config.getBool('smtp_sasl_auth_soft_bounce'),
  };
}

export interface SessionEnv {
  readonly config: Config;
  readonly settings: SessionSettings;
  readonly connect: ConnectSettings;
  /** The TCP connection to a server (connect.ts openSocket; tests inject a socket pair). */
  readonly openSocket: SocketFactory;
  readonly tls: TlsEngine;
  readonly log: MailLog;
  readonly service: string;
  readonly now: () => number;
}

/** What the TLS step of a session gave (the stuff of a session record, outcome.ts). */
export interface TlsOutcome {
  readonly result: SessionResult;
  /** Set when a handshake completed. */
  readonly evaluation?: TlsEvaluation;
  /** Certificate lines as smtp_tls_loglevel selects them (logged before the summary line). */
  readonly logLines: readonly string[];
}

/** A ready session: MAIL FROM is the next command. */
export interface Session {
  readonly chat: SmtpChat;
  readonly server: ServerTarget;
  /** `host[addr]:port`. */
  readonly relay: string;
  readonly caps: EhloCapabilities;
  readonly policy: ConnectPolicy;
  readonly tlsUsed: boolean;
  readonly evaluation?: TlsEvaluation;
  /** What the TLS step gave (for the session records). */
  readonly tls: TlsOutcome;
  /** The server's name from its first EHLO/HELO reply (RFC 8460 receiving-mx-helo). */
  readonly helo?: string;
  /** Our address on the connection (RFC 8460 sending-mta-ip). */
  readonly localAddress?: string;
  readonly authenticated: boolean;
  /** REQUIRETLS (RFC 8689) on this session: send the MAIL FROM parameter; the tls= feature (requiretls.ts). */
  readonly requireTls?: SessionRequireTls;
  readonly createdAt: number;
  /** Deliveries made over this connection so far (conn_use = useCount + 1 for the next one). */
  useCount: number;
}

export type OpenResult =
  | { readonly ok: true; readonly session: Session }
  | {
      readonly ok: false;
      readonly trouble: Trouble;
      readonly reconnectPlaintext?: boolean;
      readonly connected: boolean;
      /** Set when the session got as far as the TLS decision. */
      readonly tls?: TlsOutcome;
      readonly helo?: string;
      readonly localAddress?: string;
      /** Where the requiretls feature ended (absent: undecided or inactive). */
      readonly requireTls?: FeatureStatus;
    };

/** REQUIRETLS as the attempt decided it for this next hop and server (requiretls.ts). */
export interface RequireTlsOptions {
  readonly action: RequireTlsPolicy;
  readonly queueId: string;
  /** certificateMatchRequired() of the server's policy. */
  readonly matchRequired: boolean;
}

/** What REQUIRETLS gave on a ready session. */
export interface SessionRequireTls {
  readonly send: boolean;
  readonly feature?: FeatureStatus;
}

export interface OpenOptions {
  readonly plaintextFallbackOk: boolean;
  /** Do not send STARTTLS (the plaintext retry after a failed handshake at `may`). */
  readonly noStarttls: boolean;
  readonly credentials?: SaslCredentials;
  /** Absent: REQUIRETLS is not active for this message and next hop (`disable`). */
  readonly requireTls?: RequireTlsOptions;
}

const NO_REQUIRETLS: RequireTlsOptions = Object.freeze({ action: 'disable', queueId: '', matchRequired: false });

/** A ChatFailure in step `where` as Postfix's lost/timed-out text. */
function failureTrouble(err: unknown, server: ServerTarget, where: Where): Trouble {
  if (err instanceof ChatFailure) return streamFailure(err.kind, server, where, err.kind === 'protocol' ? err.message : '');
  throw err;
}

class SessionFailed extends Error {
  constructor(readonly trouble: Trouble, readonly reconnectPlaintext = false, readonly tls?: TlsOutcome, readonly requireTls?: FeatureStatus) {
    super(trouble.reason);
  }
}

/** Send a command and read its reply; a socket failure becomes a SessionFailed for `where`. */
async function command(chat: SmtpChat, server: ServerTarget, line: string, timeoutMs: number, where: Where): Promise<SmtpReply> {
  try {
    await chat.write(`${line}\r\n`, timeoutMs);
    return await chat.reply(timeoutMs);
  } catch (err) {
    throw new SessionFailed(failureTrouble(err, server, where));
  }
}

async function readReply(chat: SmtpChat, server: ServerTarget, timeoutMs: number, where: Where): Promise<SmtpReply> {
  try {
    return await chat.reply(timeoutMs);
  } catch (err) {
    throw new SessionFailed(failureTrouble(err, server, where));
  }
}

/** smtp_helo(): EHLO, falling back to HELO unless the server said 421; HELO only with smtp_never_send_ehlo. */
async function hello(env: SessionEnv, chat: SmtpChat, server: ServerTarget, afterTls = false): Promise<EhloCapabilities> {
  const t = env.settings.timeouts.helo;
  if (!env.settings.neverEhlo || afterTls) {
    const r = await command(chat, server, `EHLO ${env.settings.heloName}`, t, 'performing the EHLO handshake');
    if (r.code >= 200 && r.code < 300) {
      const caps = parseEhloReply(r);
      // smtp_proto.c: msg_warn("bad EHLO SIZE limit \"%s\" from %s", ...).
      for (const w of caps.warnings) env.log.warn(env.service, `${w} from ${server.hostname}[${server.address}]:${server.port}`);
      ehloChecks(env, server, caps);
      return caps;
    }
    if (r.code === 421) throw new SessionFailed(refusedToTalk(server, r, false));
  }
  const h = await command(chat, server, `HELO ${env.settings.heloName}`, t, 'performing the HELO handshake');
  if (h.code < 200 || h.code >= 300) throw new SessionFailed(refusedToTalk(server, h, false));
  const caps = parseEhlo([h.lines[0] ?? '']);
  ehloChecks(env, server, caps);
  return caps;
}

/** smtp_proto.c after the EHLO/HELO reply: a server that names us (loop.ts); SMTPUTF8 without 8BITMIME. */
function ehloChecks(env: SessionEnv, server: ServerTarget, caps: EhloCapabilities): void {
  const namaddr = `${server.hostname}[${server.address}]`;
  const loop = ehloLoop(env.connect.loop, caps.domain, server, server.nexthop, relayName(server.hostname, server.address, server.port), `${namaddr}:${server.port}`);
  if (loop) {
    env.log.warn(env.service, loop.warning);
    throw new SessionFailed(loop.trouble);
  }
  if (caps.smtpUtf8 && !caps.eightBitMime) env.log.write(env.service, `host ${namaddr} offers SMTPUTF8 support, but not 8BITMIME`);
}

function decisionTrouble(d: Extract<TlsDecision, { action: 'fail' }>, server: ServerTarget): Trouble {
  return tlsTrouble(relayName(server.hostname, server.address, server.port), d, server.hostname);
}

/** The TLS handshake over the plaintext socket within smtp_starttls_timeout; how it failed otherwise. */
function handshake(raw: Socket, options: ConnectionOptions, timeoutMs: number): Promise<TLSSocket | HandshakeFailure> {
  return new Promise((resolve) => {
    const ts = tlsConnect({ ...options, socket: raw });
    const timer = setTimeout(() => {
      ts.destroy();
      resolve({ kind: 'timeout' });
    }, timeoutMs);
    ts.once('secureConnect', () => {
      clearTimeout(timer);
      ts.removeAllListeners('error');
      resolve(ts);
    });
    ts.once('error', (error) => {
      clearTimeout(timer);
      ts.destroy();
      resolve({ kind: 'error', error });
    });
  });
}

interface TlsState {
  readonly caps: EhloCapabilities;
  readonly tlsUsed: boolean;
  readonly evaluation?: TlsEvaluation;
  readonly outcome: TlsOutcome;
  readonly requireTls?: SessionRequireTls;
}

/** A REQUIRETLS step that gives up on this server: 5.7.30 / 5.7.10, next MX first (requiretls.ts, trouble.ts). */
function requireTlsFailed(step: Extract<Step, { kind: 'fail' }>, server: ServerTarget, tls: TlsOutcome): never {
  throw new SessionFailed(requireTlsTrouble(relayName(server.hostname, server.address, server.port), step, server.hostname), false, tls, step.feature);
}

/** The plaintext decision of REQUIRETLS (no STARTTLS offered, or refused): fail, or the feature to continue with. */
function requireTlsPlain(step: Step, server: ServerTarget): SessionRequireTls {
  if (step.kind === 'fail') requireTlsFailed(step, server, failureOutcome({ reason: step.text, type: 'starttls-not-supported' }, true));
  return { send: false, ...(step.feature ? { feature: step.feature } : {}) };
}

function plaintextOutcome(type?: TlsRptResultType): TlsOutcome {
  return { result: type ? { kind: 'plaintext', type } : { kind: 'plaintext' }, logLines: [] };
}

function failureOutcome(d: { reason: string; type: TlsRptResultType }, enforced: boolean, evaluation?: TlsEvaluation, logLines: readonly string[] = []): TlsOutcome {
  return { result: { kind: 'failure', type: d.type, reason: d.reason, enforced }, ...(evaluation ? { evaluation } : {}), logLines };
}

/** No STARTTLS on this connection: the level does not want it, or it is the plaintext retry. */
function withoutTls(env: SessionEnv, server: ServerTarget, policy: ConnectPolicy, caps: EhloCapabilities, opts: OpenOptions): TlsState {
  // postconf(5) smtp_tls_note_starttls_offer: log servers that offer STARTTLS when we do not use it.
  if (caps.startTls && env.settings.noteStarttlsOffer && policy.level === 'none') {
    env.log.write(env.service, `Host offered STARTTLS: [${server.hostname}]`);
  }
  const requireTls = requireTlsPlain(noStarttls((opts.requireTls ?? NO_REQUIRETLS).action, namaddr(server.hostname, server.address)), server);
  return { caps, tlsUsed: false, outcome: plaintextOutcome(opts.noStarttls ? 'validation-failure' : undefined), requireTls };
}

/** A decision without a handshake (not offered, refused): continue in plaintext, or fail the session. */
function plainOrFail(d: TlsDecision, server: ServerTarget, caps: EhloCapabilities, type: TlsRptResultType): TlsState {
  if (d.action === 'fail') throw new SessionFailed(decisionTrouble(d, server), false, failureOutcome(d, true));
  return { caps, tlsUsed: false, outcome: plaintextOutcome(type) };
}

/**
 * smtp_proto.c smtp_start_tls(): "Cannot start TLS: handshake failure" (4.7.5),
 * after tls_client.c's `SSL_connect error to ...` line(s) (handshake-error.ts).
 */
function handshakeFailed(policy: ConnectPolicy, server: ServerTarget, opts: OpenOptions, how: HandshakeFailure): never {
  const relay = relayName(server.hostname, server.address, server.port);
  const lines = sslConnectErrorLines(relay, how);
  const d = onHandshakeFailed(policy, server, { plaintextFallbackOk: opts.plaintextFallbackOk });
  const failure = { ...HANDSHAKE_FAILURE, type: 'validation-failure' as const };
  if (d.action === 'reconnect-plaintext') {
    throw new SessionFailed(tlsTrouble(relay, { ...HANDSHAKE_FAILURE, nextHost: true, throttle: false }, server.hostname), true, failureOutcome(failure, false, undefined, lines));
  }
  // Never continue on this connection: its state is unknown (smtp_proto.c DONT_USE_DEAD_SESSION).
  const t = d.action === 'fail' ? decisionTrouble(d, server) : tlsTrouble(relay, { ...HANDSHAKE_FAILURE, nextHost: true, throttle: false }, server.hostname);
  throw new SessionFailed(t, false, failureOutcome(failure, true, undefined, lines));
}

/** STARTTLS as the policy demands; returns the capabilities to continue with. */
async function starttls(env: SessionEnv, chat: SmtpChat, server: ServerTarget, policy: ConnectPolicy, caps: EhloCapabilities, opts: OpenOptions): Promise<TlsState> {
  const rq = opts.requireTls ?? NO_REQUIRETLS;
  const na = namaddr(server.hostname, server.address);
  if (opts.noStarttls || !wantStarttls(policy)) return withoutTls(env, server, policy, caps, opts);
  if (!caps.startTls) {
    // smtp_proto.c: a REQUIRETLS failure takes precedence over the level's own.
    const requireTls = requireTlsPlain(noStarttls(rq.action, na), server);
    return { ...plainOrFail(onStarttlsNotOffered(policy, server), server, caps, 'starttls-not-supported'), requireTls };
  }
  let options: ConnectionOptions;
  try {
    options = env.tls.connectOptions(policy, server);
  } catch (err) {
    // smtp_proto.c: "TLS is required, but our TLS engine is unavailable"; at may: continue in plaintext.
    env.log.warn(env.service, `TLS engine: ${(err as Error).message}`);
    if (policy.level === 'may' && !tlsRequiredByPolicy(rq.action)) {
      return { caps, tlsUsed: false, outcome: plaintextOutcome('validation-failure'), requireTls: requireTlsPlain(noStarttls(rq.action, na), server) };
    }
    const d = { reason: 'TLS is required, but our TLS engine is unavailable', dsn: '4.7.5', nextHost: true, throttle: false };
    throw new SessionFailed(tlsTrouble(relayName(server.hostname, server.address, server.port), d, server.hostname), false, failureOutcome({ ...d, type: 'validation-failure' }, true));
  }
  const t = env.settings.timeouts.starttls;
  const r = await command(chat, server, 'STARTTLS', t, 'receiving the STARTTLS response');
  if (r.code !== 220) {
    const requireTls = requireTlsPlain(starttlsRefused(rq.action, na, r.text()), server);
    return { ...plainOrFail(onStarttlsRefused(policy, server, r.text()), server, caps, 'starttls-not-supported'), requireTls };
  }
  // RFC 3207 §6: discard anything received before the handshake completes.
  const raw = chat.detach();
  const ts = await handshake(raw, options, t);
  if (!(ts instanceof TLSSocket)) {
    raw.destroy();
    handshakeFailed(policy, server, opts, ts);
  }
  chat.upgrade(ts);
  const evaluation = env.tls.evaluate(policy, ts, server);
  const logLines = selectLogLines(env, policy, evaluation);
  const decision = onPeerEvaluated(policy, evaluation);
  if (decision.action === 'fail') {
    await quietQuit(chat, env.settings.timeouts.quit);
    const failed = failureOutcome(decision, true, evaluation, logLines);
    // smtp_proto.c: under REQUIRETLS enforce, 5.7.10 wins over the level's 4.7.5.
    const rt = mustMatch(policy.level) ? certificateFailed(rq.action, na, evaluation.trust === 'Trusted' || evaluation.trust === 'Verified') : undefined;
    if (rt?.kind === 'fail') requireTlsFailed(rt, server, failed);
    throw new SessionFailed(decisionTrouble(decision, server), false, failed, rt?.feature);
  }
  const outcome: TlsOutcome = { result: { kind: 'success' }, evaluation, logLines };
  try {
    const caps2 = await hello(env, chat, server, true);
    // RFC 8689 §4.2.1: the server must offer REQUIRETLS inside TLS (smtp_proto.c smtp_helo()).
    const step = afterTlsEhlo(rq.action, na, rq.queueId, caps2.requireTls, rq.matchRequired && evaluation.trust === 'Verified');
    if (step.kind === 'fail') requireTlsFailed(step, server, outcome);
    if (step.info) env.log.write(env.service, step.info);
    return { caps: caps2, tlsUsed: true, evaluation, outcome, requireTls: { send: step.sendRequireTls, ...(step.feature ? { feature: step.feature } : {}) } };
  } catch (err) {
    // The TLS session itself succeeded: its record says so, whatever EHLO then did.
    if (err instanceof SessionFailed && !err.tls) throw new SessionFailed(err.trouble, err.reconnectPlaintext, outcome);
    throw err;
  }
}

/**
 * postconf(5) smtp_tls_loglevel 1: verification problems when verification is
 * required (or when the peer failed); all certificate lines at ≥ 2. tls_verify.c
 * logs them with msg_info(), not as warnings.
 */
function selectLogLines(env: SessionEnv, policy: ConnectPolicy, evaluation: TlsEvaluation): readonly string[] {
  if (mustMatch(policy.level) && (env.settings.tlsLoglevel >= 1 || evaluation.failure)) return evaluation.logLines;
  return env.settings.tlsLoglevel >= 2 ? evaluation.logLines : [];
}

async function auth(env: SessionEnv, chat: SmtpChat, server: ServerTarget, caps: EhloCapabilities, tlsUsed: boolean, creds: SaslCredentials | undefined): Promise<boolean> {
  // smtp_sasl_helo_auth(): no AUTH offered → continue without authentication.
  if (!creds || caps.auth.length === 0) return false;
  const mech = chooseMechanism(caps.auth, env.config, tlsUsed);
  if (!mech) throw new SessionFailed(saslCannot(server, 'no mechanism available'));
  let r: SmtpReply;
  try {
    r = await authenticate(chat, mech, creds, env.settings.timeouts.helo);
  } catch (err) {
    throw new SessionFailed(failureTrouble(err, server, 'sending AUTH data'));
  }
  if (r.code !== 235) throw new SessionFailed(saslFailed(server, r, env.settings.saslSoftBounce));
  return true;
}

export async function openSession(env: SessionEnv, server: ServerTarget, policy: ConnectPolicy, opts: OpenOptions): Promise<OpenResult> {
  const s = await env.openSocket(server, env.settings.timeouts.connect, env.connect);
  if (!s.ok) return { ok: false, trouble: connectFailed(server.hostname, server.address, server.port, s.error), connected: false };
  const chat = new SmtpChat(s.socket);
  const localAddress = s.socket.localAddress;
  let helo: string | undefined;
  let tlsSoFar: TlsOutcome | undefined;
  try {
    const greeting = await readReply(chat, server, env.settings.timeouts.helo, 'receiving the initial server greeting');
    if (greeting.code < 200 || greeting.code >= 300) {
      throw new SessionFailed(refusedToTalk(server, greeting, env.settings.skip5xxGreeting));
    }
    const greetedMe = greetingWarning(env.connect.loop, greeting.lines[0] ?? '', `${server.hostname}[${server.address}]:${server.port}`, server.port);
    if (greetedMe) env.log.warn(env.service, greetedMe);
    const caps = await hello(env, chat, server);
    helo = caps.domain || undefined;
    const tls = await starttls(env, chat, server, policy, caps, opts);
    // MTA-STS testing (RFC 8461 §5): what would have failed is recorded, never enforced.
    const outcome = withStsTesting(policy, tls.outcome);
    tlsSoFar = outcome;
    const authenticated = await auth(env, chat, server, tls.caps, tls.tlsUsed, opts.credentials);
    const session: Session = {
      chat, server, policy, authenticated,
      relay: relayName(server.hostname, server.address, server.port),
      caps: tls.caps, tlsUsed: tls.tlsUsed, tls: outcome,
      ...(tls.evaluation ? { evaluation: tls.evaluation } : {}),
      ...(tls.requireTls && opts.requireTls ? { requireTls: tls.requireTls } : {}),
      ...(helo ? { helo } : {}),
      ...(localAddress ? { localAddress } : {}),
      createdAt: env.now(), useCount: 0,
    };
    return { ok: true, session };
  } catch (err) {
    if (!(err instanceof SessionFailed)) {
      chat.destroy();
      throw err;
    }
    if (!chat.broken) await quietQuit(chat, env.settings.timeouts.quit);
    chat.destroy();
    return {
      ok: false, trouble: err.trouble, connected: true,
      ...(err.reconnectPlaintext ? { reconnectPlaintext: true } : {}),
      ...((err.tls ?? tlsSoFar) ? { tls: err.tls ?? tlsSoFar } : {}),
      ...(helo ? { helo } : {}),
      ...(localAddress ? { localAddress } : {}),
      ...(err.requireTls ? { requireTls: err.requireTls } : {}),
    };
  }
}

/** QUIT and close, ignoring every failure (smtp_skip_quit_response style: do not wait long). */
export async function quietQuit(chat: SmtpChat, timeoutMs: number): Promise<void> {
  if (chat.broken) return;
  try {
    await chat.write('QUIT\r\n', timeoutMs);
    await chat.reply(Math.min(timeoutMs, 2000));
  } catch {
    // The session ends either way.
  }
  chat.destroy();
}
