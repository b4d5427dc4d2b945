/**
 * trouble.ts — ALL failure policy of the SMTP client in one place, as
 * Postfix keeps it in smtp_trouble.c: what a failure is called (Postfix's
 * exact reason texts), its DSN, and what happens next — try the next
 * server, defer the recipient, bounce it, throttle the destination.
 *
 * Contract (pure functions, no I/O):
 * - Every failure is a `Trouble` value: `scope` says whom it concerns
 *   (`session` = the connection: connect, lost, timeout — smtp_sess_fail;
 *   `site` = the server refused to talk — smtp_site_fail; `message` = MAIL
 *   FROM / DATA / end of data — smtp_mesg_fail; `recipient` = RCPT TO —
 *   smtp_rcpt_fail), `dsn`, `reason`, `relay`, `throttle`, `final`.
 * - `decide(trouble, finalServer, softBounce)`: smtp_bulk_fail/smtp_rcpt_fail:
 *   a soft (4.x.x) error on a server that is not the last one keeps the
 *   recipient for the next server; at the last server it defers; a hard
 *   (5.x.x) error bounces at once. `soft_bounce = yes` turns every bounce
 *   into a deferral with a 4.x.x code (text unchanged).
 * - A connection lost during DATA is always a deferral (4.4.2), never a bounce.
 *
 * Not here: sockets (chat.ts), the TLS decisions (delivery/tls/enforce.ts
 * makes them; `tlsTrouble` only wraps them).
 */
import type { SmtpReply } from '../../smtp/reply.ts';

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
}

/** What happens to the affected recipients. */
export type Verdict = { readonly action: 'keep' } | { readonly action: 'deferred' | 'bounced'; readonly dsn: string };

export function isSoft(t: Trouble): boolean {
  return t.dsn.startsWith('4');
}

/** smtp_bulk_fail / smtp_rcpt_fail: next server, defer, or bounce. */
export function decide(t: Trouble, finalServer: boolean, softBounce: boolean): Verdict {
  if (isSoft(t)) {
    if (!finalServer && !t.final) return { action: 'keep' };
    return { action: 'deferred', dsn: t.dsn };
  }
  // postconf(5) soft_bounce: "change the error reply code from 5xx to 4xx" — and the DSN class.
  if (softBounce) return { action: 'deferred', dsn: `4${t.dsn.slice(1)}` };
  return { action: 'bounced', dsn: t.dsn };
}

/** `name[addr]` (Postfix session->namaddr). */
export function namaddr(hostname: string, address: string): string {
  return `${hostname}[${address}]`;
}

/** `name[addr]:port` (the relay= field). */
export function relayName(hostname: string, address: string, port: number): string {
  return `${hostname}[${address}]:${port}`;
}

/** strerror(3) texts for the errno codes a connect can fail with. */
const ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'Connection refused',
  ETIMEDOUT: 'Connection timed out',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use',
  ECONNRESET: 'Connection reset by peer',
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

function replyDsn(reply: SmtpReply): string {
  return reply.dsn() ?? `${String(reply.code)[0]}.0.0`;
}

/**
 * smtp_trouble.c vsmtp_fill_dsn(): a server reply that is neither 4xx nor 5xx where a
 * failure is reported (a 2xx/3xx out of place) is `Protocol error: ...`, 5.5.0.
 */
function serverFailure(reply: SmtpReply, reason: string): { dsn: string; reason: string } {
  const dsn = replyDsn(reply);
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
  const dsn = skip5xx && reply.code >= 500 && f.dsn.startsWith('5') ? `4${f.dsn.slice(1)}` : f.dsn;
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

/** No connection was made: the TLS policy is invalid, or a lookup failed (relay=none). */
export function noConnection(reason: string, dsn: string, throttle = false): Trouble {
  return { scope: 'site', dsn, reason, relay: 'none', throttle };
}

/** smtp_sasl_proto.c: `SASL authentication failed; server %s said: %s`; smtp_sasl_auth_soft_bounce makes it 4.x.x. */
export function saslFailed(server: { hostname: string; address: string; port: number }, reply: SmtpReply, softBounce: boolean): Trouble {
  let dsn = replyDsn(reply);
  if (softBounce && dsn.startsWith('5')) dsn = `4${dsn.slice(1)}`;
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
