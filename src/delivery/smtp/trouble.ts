/**
 * trouble.ts — ALL failure policy of delivery in one place, as Postfix keeps
 * it in smtp_trouble.c: what a failure is called (Postfix's exact reason
 * texts), its DSN, and what happens next — try the next server, defer the
 * recipient, bounce it, throttle the destination.
 *
 * Contract (pure functions, no I/O):
 * - Every failure is a `Trouble` value: `scope` says whom it concerns
 *   (`session` = the connection: connect, lost, timeout — smtp_sess_fail;
 *   `site` = the server refused to talk — smtp_site_fail; `message` = MAIL
 *   FROM / DATA / end of data — smtp_mesg_fail; `recipient` = RCPT TO —
 *   smtp_rcpt_fail), `dsn`, `reason`, `relay`, `throttle`, `final`.
 * - `failVerdict(dsn, throttles)` (smtp_bulk_fail): a soft (4.x.x) error is
 *   not final while other servers remain — try the next one — and only a
 *   soft error throttles the destination; the TLS decisions of enforce.ts
 *   take their `nextHost`/`throttle` from here.
 * - `decide(trouble, finalServer)`: a soft error on a server that is not the
 *   last one keeps the recipient for the next server; at the last server it
 *   defers; a hard (5.x.x) error bounces at once — except a REQUIRETLS
 *   failure (`softNonFinal`, SMTP_MISC_FAIL_SOFT_NON_FINAL), which tries the
 *   next server first and bounces at the last.
 * - `leftOver()`: what recipients still pending when the servers ran out
 *   get (smtp_connect.c): the last failure, `server unavailable or unable to
 *   receive mail` when nothing was tried, and 4.3.5 plus a warning when a
 *   relayhost or smtp_fallback_relay itself could not be found (a
 *   configuration problem is never a bounce). Postfix defers them with
 *   smtp_sess_fail(), which throttles: a left-over deferral always marks the
 *   destination dead — an invalid TLS policy (`client TLS configuration
 *   problem`, `dane-only` without usable TLSA), a failed MX or address
 *   lookup, servers that all failed. `siteDeferral()`: when the destination
 *   is throttled (qmgr's dead site).
 * - soft_bounce (postconf(5)): `applySoftBounce()` turns a bounce into a
 *   deferral with `softDsn()` — the one 5.x.x → 4.x.x rewrite — and is
 *   applied exactly once per outcome, by the queue manager, for every agent
 *   and for routing bounces alike (Postfix applies it in bounce_append(),
 *   the one place every bounce passes).
 * - A connection lost during DATA is always a deferral (4.4.2), never a bounce.
 *
 * Not here: sockets (chat.ts), the TLS decisions (delivery/tls/enforce.ts
 * makes them; `tlsTrouble` only wraps them).
 */
import type { SmtpReply } from '../../smtp/reply.ts';
import type { OutcomeStatus } from '../types.ts';

export type TroubleScope = 'session' | 'site' | 'message' | 'recipient';

export interface Trouble {
  readonly scope: TroubleScope;
  /** RFC 3463 X.Y.Z. */
  readonly dsn: string;
  /** Postfix's text for the parentheses of `status=...`. */
  readonly reason: string;
  /** `host[addr]:port`, or `none` when no server was reached. */
  readonly relay: string;
  /** Postfix SMTP_THROTTLE: the destination is marked dead (qmgr "delivery temporarily suspended"). */
  readonly throttle: boolean;
  /** Never try another server for this failure (TLS decisions with nextHost = false, policy errors). */
  readonly final?: boolean;
  /** A TCP connect failure: smtp_connect.c logs it as it happens, without a queue ID. */
  readonly connect?: boolean;
  /** The server's reply, for the DSN Diagnostic-Code. */
  readonly remoteReply?: string;
  /** The server's host name, for the DSN Remote-MTA. */
  readonly remoteMta?: string;
  /** SMTP_MISC_FAIL_SOFT_NON_FINAL (REQUIRETLS): a hard error that still tries the next server; final only at the last one. */
  readonly softNonFinal?: boolean;
  /** The reason was logged where it happened (no `QUEUEID: reason` line when moving on). */
  readonly logged?: boolean;
}

/** What happens to the affected recipients. */
export type Verdict = { readonly action: 'keep' } | { readonly action: 'deferred' | 'bounced'; readonly dsn: string };

export function isSoft(t: Trouble): boolean {
  return t.dsn.startsWith('4');
}

/**
 * smtp_trouble.c smtp_bulk_fail(): a soft error is not final while other
 * servers remain (next MX); a hard one bounces now. Only soft errors throttle
 * (smtp_site_fail with SMTP_THROTTLE; `throttles` says the failure is of that kind).
 */
export function failVerdict(dsn: string, throttles: boolean): { readonly nextHost: boolean; readonly throttle: boolean } {
  const soft = dsn.startsWith('4');
  return { nextHost: soft, throttle: throttles && soft };
}

/** smtp_bulk_fail / smtp_rcpt_fail: next server, defer, or bounce. */
export function decide(t: Trouble, finalServer: boolean): Verdict {
  // smtp_trouble.c smtp_bulk_fail(): SMTP_MISC_FAIL_SOFT_NON_FINAL is soft unless FINAL_SERVER.
  if (t.softNonFinal && !finalServer) return { action: 'keep' };
  if (isSoft(t)) {
    if (!finalServer && !t.final) return { action: 'keep' };
    return { action: 'deferred', dsn: t.dsn };
  }
  return { action: 'bounced', dsn: t.dsn };
}

/** The one 5.x.y → 4.x.y rewrite (soft_bounce, smtp_skip_5xx_greeting, smtp_sasl_auth_soft_bounce). */
export function softDsn(dsn: string): string {
  return dsn.startsWith('5') ? `4${dsn.slice(1)}` : dsn;
}

/**
 * postconf(5) soft_bounce: "change the error reply code from 5xx to 4xx" — a
 * bounce becomes a deferral, text unchanged. Applied once, where outcomes are
 * recorded (the queue manager).
 */
export function applySoftBounce<T extends { readonly status: OutcomeStatus; readonly dsn: string }>(o: T, softBounce: boolean): T {
  if (!softBounce || o.status !== 'bounced') return o;
  return { ...o, status: 'deferred', dsn: softDsn(o.dsn) };
}

/** The same for a Verdict (the outcome an SMTP failure would record). */
export function softBounceVerdict(v: Verdict, softBounce: boolean): Verdict {
  if (v.action !== 'bounced') return v;
  const o = applySoftBounce({ status: v.action, dsn: v.dsn }, softBounce);
  return { action: o.status === 'bounced' ? 'bounced' : 'deferred', dsn: o.dsn };
}

/** Where the last failure happened when no connection was made at all (a next-hop lookup). */
export interface LastHop {
  readonly hop: string;
  /** The hop was an smtp_fallback_relay. */
  readonly fallback: boolean;
}

/**
 * smtp_connect.c, left-over recipients: "server unavailable or unable to
 * receive mail" when nothing was tried; a hard lookup failure of a relayhost
 * or fallback relay is a configuration problem (4.3.5 and a warning naming
 * the parameter), never a bounce. smtp_connect() ends with
 * smtp_sess_fail(state) = smtp_bulk_fail(state, SMTP_MISC_FAIL_THROTTLE)
 * (smtp_trouble.c): the left-over failure throttles the destination
 * whatever it was (a deferral throttles; a bounce does not).
 */
export function leftOver(last: Trouble | undefined, lastHop: LastHop | undefined, relayhosts: readonly string[]): { readonly trouble: Trouble; readonly warning?: string } {
  const t: Trouble = { ...(last ?? noConnection('server unavailable or unable to receive mail', '4.3.0')), throttle: true };
  if (t.dsn.startsWith('4') || !lastHop) return { trouble: t };
  const param = lastHop.fallback ? 'smtp_fallback_relay' : relayhosts.includes(lastHop.hop) ? 'relayhost' : undefined;
  if (!param) return { trouble: t };
  return { trouble: { ...t, dsn: '4.3.5' }, warning: `${param} configuration problem` };
}

/**
 * qmgr_deliver.c: a throttled destination is marked dead only when nothing
 * got through — every outcome is (or, under soft_bounce, becomes) a deferral
 * and a throttling failure deferred some of them.
 */
export function siteDeferral(
  throttledBy: Trouble | undefined,
  outcomes: readonly { readonly status: OutcomeStatus; readonly dsn: string }[],
  softBounce: boolean,
): { readonly reason: string; readonly dsn: string } | undefined {
  if (!throttledBy) return undefined;
  if (!outcomes.every((o) => applySoftBounce(o, softBounce).status === 'deferred')) return undefined;
  return { reason: throttledBy.reason, dsn: throttledBy.dsn };
}

/** `name[addr]` (Postfix session->namaddr). */
export function namaddr(hostname: string, address: string): string {
  return `${hostname}[${address}]`;
}

/** `name[addr]:port` (the relay= field). */
export function relayName(hostname: string, address: string, port: number): string {
  return `${hostname}[${address}]:${port}`;
}

/** strerror(3) texts for the errno codes a connect (or a TLS handshake's read or write) can fail with. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'Connection refused',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use',
  ECONNRESET: 'Connection reset by peer',
  EPIPE: 'Broken pipe',
  ECONNABORTED: 'Software caused connection abort',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  EINVAL: 'Invalid argument',
};

export function errnoText(code: string | undefined, fallback: string): string {
  return (code && ERRNO_TEXT[code]) ?? fallback;
}

/** smtp_connect.c: `connect to %s[%s]:%d: %m` — 4.4.1, the site is throttled when no server answers. */
export function connectFailed(hostname: string, address: string, port: number, errText: string): Trouble {
  return {
    scope: 'session', dsn: '4.4.1', throttle: true, relay: 'none', connect: true,
    reason: `connect to ${hostname}[${address}]:${port}: ${errText}`,
  };
}

/** The session step a socket failure happened in (smtp_proto.c xfer_states and smtp_helo's texts). */
export type Where =
  | 'receiving the initial server greeting'
  | 'performing the EHLO handshake'
  | 'performing the HELO handshake'
  | 'receiving the STARTTLS response'
  | 'sending AUTH data'
  | 'sending MAIL FROM'
  | 'sending RCPT TO'
  | 'sending DATA command'
  | 'sending message body'
  | 'sending end of data -- message may be sent more than once'
  | 'sending RSET';

/** smtp_trouble.c smtp_stream_except(): lost connection / timeout / protocol damage, 4.4.2. */
export function streamFailure(kind: 'lost' | 'timeout' | 'protocol', server: { hostname: string; address: string; port: number }, where: Where, detail = ''): Trouble {
  const na = namaddr(server.hostname, server.address);
  const reason = kind === 'timeout'
    ? `conversation with ${na} timed out while ${where}`
    : kind === 'lost'
      ? `lost connection with ${na} while ${where}`
      : `malformed reply from ${na} while ${where}${detail ? `: ${detail}` : ''}`;
  return { scope: 'session', dsn: '4.4.2', throttle: true, relay: relayName(server.hostname, server.address, server.port), reason, remoteMta: server.hostname };
}

function dsnOf(reply: SmtpReply): string {
  return reply.dsn() ?? `${String(reply.code)[0]}.0.0`;
}

/** The enhanced status of a reply in its log text form (`454 4.7.0 ...`), else `N.0.0` from the reply code. */
export function replyDsn(replyText: string): string {
  const m = /^([245])\d\d[ -]?(?:([245]\.\d{1,3}\.\d{1,3})(?:\s|$))?/.exec(replyText.trim());
  if (!m) return '4.0.0';
  return m[2] ?? `${m[1]}.0.0`;
}

/**
 * smtp_trouble.c vsmtp_fill_dsn(): a server reply that is neither 4xx nor 5xx where a
 * failure is reported (a 2xx/3xx out of place) is `Protocol error: ...`, 5.5.0.
 */
function serverFailure(reply: SmtpReply, reason: string): { dsn: string; reason: string } {
  const dsn = dsnOf(reply);
  if (dsn.startsWith('4') || dsn.startsWith('5')) return { dsn, reason };
  return { dsn: '5.5.0', reason: `Protocol error: ${reason}` };
}

/**
 * smtp_proto.c: `host %s refused to talk to me: %s` (greeting, EHLO 421, HELO).
 * smtp_skip_5xx_greeting = yes: a 5xx greeting is treated as 4xx so the next server is tried.
 */
export function refusedToTalk(server: { hostname: string; address: string; port: number }, reply: SmtpReply, skip5xx: boolean): Trouble {
  const f = serverFailure(reply, `host ${namaddr(server.hostname, server.address)} refused to talk to me: ${reply.text()}`);
  // smtp_proto.c: with smtp_skip_5xx_greeting the 5 of the DSN becomes 4 (the reply text stays).
  const dsn = skip5xx && reply.code >= 500 ? softDsn(f.dsn) : f.dsn;
  return {
    scope: 'site', dsn, throttle: true, relay: relayName(server.hostname, server.address, server.port),
    reason: f.reason,
    remoteReply: reply.text(), remoteMta: server.hostname,
  };
}

/** The commands Postfix names in `(in reply to %s)` (smtp_proto.c xfer_request). */
export type InReplyTo = 'MAIL FROM command' | 'RCPT TO command' | 'DATA command' | 'end of DATA command' | 'AUTH command' | 'STARTTLS command';

/** smtp_proto.c: `host %s said: %s (in reply to %s)`. */
export function hostSaid(server: { hostname: string; address: string; port: number }, reply: SmtpReply, command: InReplyTo, scope: 'message' | 'recipient'): Trouble {
  const f = serverFailure(reply, `host ${namaddr(server.hostname, server.address)} said: ${reply.text()} (in reply to ${command})`);
  return {
    scope, dsn: f.dsn, throttle: false, relay: relayName(server.hostname, server.address, server.port),
    reason: f.reason,
    remoteReply: reply.text(), remoteMta: server.hostname,
  };
}

/** smtp_proto.c: `message size %lu exceeds size limit %.0f of server %s` — 5.3.4. */
export function sizeExceeded(server: { hostname: string; address: string; port: number }, size: number, limit: number): Trouble {
  return {
    scope: 'message', dsn: '5.3.4', throttle: false, relay: relayName(server.hostname, server.address, server.port),
    reason: `message size ${size} exceeds size limit ${limit} of server ${namaddr(server.hostname, server.address)}`,
    remoteMta: server.hostname,
  };
}

/** smtp_proto.c: `SMTPUTF8 is required, but was not offered by host %s` — 5.6.7. */
export function smtputf8NotOffered(server: { hostname: string; address: string; port: number }): Trouble {
  return {
    scope: 'message', dsn: '5.6.7', throttle: false, relay: relayName(server.hostname, server.address, server.port),
    reason: `SMTPUTF8 is required, but was not offered by host ${namaddr(server.hostname, server.address)}`,
    remoteMta: server.hostname,
  };
}

/** A TLS decision of enforce.ts (`fail`) as a site failure. */
export function tlsTrouble(relay: string, d: { reason: string; dsn: string; nextHost: boolean; throttle: boolean }, remoteMta?: string): Trouble {
  return {
    scope: 'site', dsn: d.dsn, reason: d.reason, relay, throttle: d.throttle, final: !d.nextHost,
    ...(remoteMta ? { remoteMta } : {}),
  };
}

/**
 * A REQUIRETLS failure (delivery/tls/requiretls.ts Step `fail`): smtp_proto.c
 * smtp_misc_fail(SMTP_MISC_FAIL_SOFT_NON_FINAL) — the next server first, a
 * bounce (5.7.30 / 5.7.10) at the last one; never throttles. `nextMx: false`
 * (a policy error, 4.7.10) is final.
 */
export function requireTlsTrouble(relay: string, f: { readonly dsn: string; readonly text: string; readonly nextMx: boolean }, remoteMta?: string): Trouble {
  return {
    scope: 'site', dsn: f.dsn, reason: f.text, relay, throttle: false,
    ...(f.nextMx ? { softNonFinal: true } : { final: true }),
    ...(remoteMta ? { remoteMta } : {}),
  };
}

/** No connection was made: the TLS policy is invalid, or a lookup failed (relay=none). */
export function noConnection(reason: string, dsn: string, throttle = false): Trouble {
  return { scope: 'site', dsn, reason, relay: 'none', throttle };
}

/** smtp_sasl_proto.c: `SASL authentication failed; server %s said: %s`; smtp_sasl_auth_soft_bounce makes it 4.x.x. */
export function saslFailed(server: { hostname: string; address: string; port: number }, reply: SmtpReply, softBounce: boolean): Trouble {
  const dsn = softBounce ? softDsn(dsnOf(reply)) : dsnOf(reply);
  return {
    scope: 'site', dsn, throttle: false, relay: relayName(server.hostname, server.address, server.port),
    reason: `SASL authentication failed; server ${namaddr(server.hostname, server.address)} said: ${reply.text()}`,
    remoteReply: reply.text(), remoteMta: server.hostname,
  };
}

/** smtp_sasl_glue.c: `SASL authentication failed; cannot authenticate to server %s: %s` — 4.7.0. */
export function saslCannot(server: { hostname: string; address: string; port: number }, why: string): Trouble {
  return {
    scope: 'site', dsn: '4.7.0', throttle: false, relay: relayName(server.hostname, server.address, server.port),
    reason: `SASL authentication failed; cannot authenticate to server ${namaddr(server.hostname, server.address)}: ${why}`,
    remoteMta: server.hostname,
  };
}
