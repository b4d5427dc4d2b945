/**
 * tls-diff-differences.ts — every known difference between sealpost's and
 * Postfix 3.7's TLS client in tls-diff-postfix.test.ts, as a transformation
 * of Postfix's facts into what sealpost does today. The test applies the
 * entries in this order and then requires sealpost's facts to be EQUAL to the
 * result; an entry that changes no case at all fails the run (so a fixed bug
 * forces its entry out).
 *
 * Kinds:
 *   deliberate  sealpost differs on purpose (also in docs/differences-from-postfix.md);
 *   bug         sealpost should do what Postfix does: `why` names the sealpost
 *               code that decides it and the Postfix source that says so;
 *   pending     a feature not built yet, being built elsewhere.
 *
 * Postfix sources are cited from the v3.11.6 tree (vdukhovni/postfix); the
 * cited code is the same in Debian's 3.7.11, which produced the facts.
 *
 * Not here: the comparison itself, the cases (tls-diff-cases.ts).
 */
import type { Attempt, Case, Facts } from './tls-diff-cases.ts';
import { caseById, isSuspended } from './tls-diff-cases.ts';

export type Kind = 'deliberate' | 'bug' | 'pending';

export interface Difference {
  readonly id: string;
  readonly kind: Kind;
  /** What differs, where sealpost decides it, what Postfix does and where. */
  readonly why: string;
  /** The cases it may change (within them it may still change nothing). */
  readonly applies: (c: Case) => boolean;
  /** sealpost's facts from Postfix's. */
  readonly sealpost: (pf: Facts, c: Case, lab: Lab) => Facts;
}

/** What a transformation may know beyond the case. */
export interface Lab {
  /** Postfix's facts of another case. */
  postfix(id: string): Facts | undefined;
  /** The address of a case's receiver. */
  address(id: string): string;
}

// ------------------------------------------------------------ helpers

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Apply `fn` to every log line of every attempt; undefined drops the line. */
function mapLines(f: Facts, fn: (line: string) => string | undefined): Facts {
  const each = (list: readonly Attempt[]): Attempt[] => list.map((att) => att.map(fn).filter((l): l is string => l !== undefined));
  return { ...f, a: each(f.a), b: each(f.b) };
}

/** Postfix's facts of another case, with its domain, MX host and address renamed to this case's. */
function renamedFrom(id: string, to: Case, lab: Lab): Facts {
  const from = caseById(id);
  const facts = lab.postfix(id);
  if (!from || !facts) throw new Error(`tls-diff-differences: no Postfix facts for ${id}`);
  const [ipFrom, ipTo] = [`[${lab.address(from.id)}]`, `[${lab.address(to.id)}]`];
  const rename = (l: string): string => l.replaceAll(from.mx, to.mx).replaceAll(from.domain, to.domain).replaceAll(ipFrom, ipTo);
  return { ...mapLines(facts, rename), queued: facts.queued.map(rename) };
}

const isPolicyFailure = (c: Case): boolean => c.level === 'dane-only' || (c.posture.name === 'badattr' && c.level !== 'none');

// ------------------------------------------------------------ the table

export const DIFFERENCES: readonly Difference[] = [
  {
    id: 'policy-failure-throttle',
    kind: 'bug',
    why:
      'A delivery that found no usable server because of the TLS policy (`client TLS configuration problem`, ' +
      '`dane-only` without usable TLSA) does not throttle the destination: src/delivery/smtp/agent.ts deliverHop() ' +
      'records noConnection(reason, dsn) with throttle = false (src/delivery/smtp/trouble.ts), so no siteDeferral ' +
      'reaches the queue manager and the next message for the destination is tried (and fails) again. Postfix ' +
      'defers the left-over recipients with smtp_sess_fail() = smtp_bulk_fail(state, SMTP_MISC_FAIL_THROTTLE) ' +
      '(smtp_connect.c smtp_connect(), smtp_trouble.c), so qmgr suspends the destination: b@ waits with ' +
      '`delivery temporarily suspended: client TLS configuration problem` without an attempt.',
    applies: isPolicyFailure,
    sealpost: (pf) => {
      const a1 = pf.a[0];
      if (!a1 || !/ relay=none, .*status=deferred /.test(a1.at(-1) ?? '') || !pf.b[0] || !isSuspended(pf.b[0])) return pf;
      const b1 = a1.map((l) => l.replace(/ to=<a@/, ' to=<b@'));
      // Not throttled: b@ is tried like a@, and a@'s retry fails the same way; mailq shows b@'s own reason.
      const queued = pf.queued.map((q) => q.replace(/^b@ \(delivery temporarily suspended: /, 'b@ ('));
      return { a: [a1, a1], b: [b1], received: pf.received, queued };
    },
  },
  {
    id: 'bytes-after-starttls-220',
    kind: 'bug',
    why:
      'Bytes that arrive behind `220 Ready to start TLS` in the same read (RFC 3207 §6: the client must discard ' +
      'them) are parsed as the next reply: src/delivery/smtp/chat.ts onData() runs ReplyParser.push() over the ' +
      'whole chunk, and a line that is not `ddd text` poisons the chat before the 220 is taken, so the attempt ' +
      'fails as `malformed reply ... while receiving the STARTTLS response` (4.4.2), a session failure that ' +
      'throttles the destination — at every level, `may` included. Postfix takes the 220 (smtp_chat_resp()), ' +
      'drops the rest (smtp_proto.c smtp_start_tls(): vstream_fpurge(session->stream, VSTREAM_PURGE_BOTH)) and ' +
      'completes the handshake: the mail goes out over TLS.',
    applies: (c) => c.posture.name === 'inject' && c.level !== 'none' && c.level !== 'dane-only',
    sealpost: (pf, c) => {
      const relay = / relay=([^,]+),/.exec(pf.a[0]?.at(-1) ?? '')?.[1] ?? '?';
      const reason = `malformed reply from ${relay.replace(/:\d+$/, '')} while receiving the STARTTLS response: reply line is not "ddd text": garbage`;
      return {
        a: [[`smtp: to=<a@${c.domain}>, relay=${relay}, dsn=4.4.2, status=deferred (${reason})`]],
        b: [[`error: to=<b@${c.domain}>, relay=none, dsn=4.4.2, status=deferred (delivery temporarily suspended: ${reason})`]],
        received: [],
        queued: [`a@ (${reason})`, `b@ (delivery temporarily suspended: ${reason})`],
      };
    },
  },
  {
    id: 'ssl-connect-error',
    kind: 'bug',
    why:
      'When the TLS handshake fails sealpost logs nothing before the deferral. Postfix 3.7 and 3.11 log ' +
      '`SSL_connect error to HOST[ADDR]:PORT: ERR` — the errno text (`Connection reset by peer`, `Connection timed ' +
      'out`), `-1` followed by OpenSSL\'s errors, or `lost connection` (tls_client.c tls_client_start()). sealpost ' +
      'sees the failure in src/delivery/smtp/session.ts (the handshake() of the STARTTLS step, before ' +
      'enforce.ts onHandshakeFailed()); the line belongs there, with Node\'s error mapped to the same three forms.',
    applies: () => true,
    sealpost: (pf) => mapLines(pf, (l) => (/^smtp: SSL_connect error to /.test(l) ? undefined : l)),
  },
  {
    id: 'plaintext-retry-note',
    kind: 'bug',
    why:
      'Before retrying in plaintext after a failed handshake at `may`, Postfix logs `QUEUEID: Cannot start TLS: ' +
      'handshake failure`: smtp_proto.c RETRY_AS_PLAINTEXT makes the failure non-final and smtp_trouble.c ' +
      'smtp_misc_fail() logs msg_info("%s: %s", queue_id, reason) for a recipient it keeps. sealpost\'s ' +
      'src/delivery/smtp/agent.ts tryServer() reconnects without TLS (open.reconnectPlaintext) silently; ' +
      'applyTrouble() logs the same note for other kept failures.',
    applies: () => true,
    sealpost: (pf) => mapLines(pf, (l) => (l === 'smtp: Cannot start TLS: handshake failure' ? undefined : l)),
  },
  {
    id: 'resumed-summary',
    kind: 'bug',
    why:
      'On a resumed TLS 1.3 session Postfix still names the server\'s key: tls_misc.c tls_get_signature_params() ' +
      'takes it from the certificate kept in the session (TLS_PEEK_PEER_CERT) — `server-signature ECDSA ' +
      '(prime256v1)`, without server-digest since no signature was made. sealpost\'s summaryExtra() ' +
      '(src/delivery/tls/summary.ts) reads socket.getPeerCertificate(), which Node leaves empty on a resumed ' +
      'session, so the line ends after `key-exchange X25519`; the chain session-cache.ts keeps with the ticket has the key.',
    applies: () => true,
    sealpost: (pf) => mapLines(pf, (l) => l.replace(/^(smtp: \w+ TLS connection established to .* key-exchange \S+) server-signature \S+ \([^)]*\)$/, '$1')),
  },
  {
    id: 'policy-warning-once',
    kind: 'deliberate',
    why:
      'A warning about a policy-table entry (`smtp_tls_policy_maps, next-hop destination "D": ignoring attribute ' +
      '"..." with TLS disabled`) is logged once by sealpost\'s long-lived delivery agent, which caches the parsed ' +
      'entry until the next reload; Postfix logs it in every smtp(8) process that looks the entry up (its policy ' +
      'cache lives as long as the process, smtp_tls_policy.c smtp_tls_policy_cache_query(); the test runs one ' +
      'delivery per process). Same warning, fewer copies.',
    applies: (c) => c.level === 'none',
    sealpost: (pf) => {
      let seen = false;
      const once = (l: string): string | undefined => {
        if (!/^smtp: warning: smtp_tls_policy_maps, next-hop destination /.test(l)) return l;
        if (seen) return undefined;
        seen = true;
        return l;
      };
      // Time order of the attempts compared at `none`: a@ first, then b@.
      const a = pf.a.map((att) => att.map(once).filter((l): l is string => l !== undefined));
      const b = pf.b.map((att) => att.map(once).filter((l): l is string => l !== undefined));
      return { ...pf, a, b };
    },
  },
];
