/**
 * tls-diff-differences.ts — every known difference between sealpost's and
 * Postfix 3.7's TLS client in tls-diff-postfix.test.ts, as a transformation
 * of Postfix's facts into what sealpost does today. The test applies the
 * entries in this order and then requires sealpost's facts to be EQUAL to the
 * result; an entry that changes no case at all fails the run (so a fixed bug
 * forces its entry out).
 *
 * Kinds:
 *   deliberate  sealpost differs on purpose (also in docs/differences-from-postfix.md),
 *               e.g. where it follows Postfix 3.11 and Debian's 3.7 is older;
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
    id: 'resumed-summary',
    kind: 'deliberate',
    why:
      'On a resumed TLS 1.3 session Postfix 3.7 still names the server\'s key (`server-signature ECDSA (prime256v1)`, ' +
      'from the certificate kept in the session); Postfix 3.10 and later do not: tls_misc.c tls_get_signature_params() ' +
      'returns after the key exchange when TLScontext->session_reused ("Resumption makes no use of signature keys or ' +
      'digests", HISTORY 20250215: a server with several certificates could be reported with the wrong one). sealpost ' +
      'follows 3.11: src/delivery/tls/summary.ts summaryExtra() names the key only when the handshake presented a ' +
      'certificate, so the line ends after `key-exchange X25519`.',
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
