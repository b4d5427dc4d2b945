/**
 * ciphers.ts — cipher grades and exclusions (postconf(5) smtp_tls_ciphers,
 * smtp_tls_mandatory_ciphers, smtp_tls_(mandatory_)exclude_ciphers,
 * `ciphers=`, `exclude=`; tls_set_ciphers() in tls_misc.c and
 * set_cipher_grade() in smtp_tls_policy.c) → an OpenSSL cipher string for
 * Node's `ciphers` option (TLS ≤1.2 suites; TLS 1.3 suites are not graded).
 *
 * Contract: pure. A grade is `high`, `medium`, `null`, or `low`/`export`
 * (= `medium` since Postfix 3.8); its cipher list comes from
 * `tls_<grade>_cipherlist` (passed in). Each exclusion becomes `:!NAME`;
 * names that start with one of `!+-@` are Postfix's error `invalid unary
 * '!+-@' in cipher exclusion`. Returns `{ error }` instead of throwing.
 *
 * Not here: checking that OpenSSL accepts the string (context.ts builds the
 * SecureContext and turns a rejection into an invalid policy).
 */
import type { TlsLevel } from './types.ts';

export type CipherGrade = 'high' | 'medium' | 'null';

/** Grade name → the grade whose cipherlist applies. */
export function parseGrade(text: string): CipherGrade | undefined {
  switch (text.toLowerCase()) {
    case 'high':
      return 'high';
    case 'medium':
    case 'low':
    case 'export':
      // Postfix 3.8: "low" and "export" are aliases for "medium".
      return 'medium';
    case 'null':
      return 'null';
    default:
      return undefined;
  }
}

/**
 * smtp_tls_policy.c set_cipher_grade(): the exclusions a level adds on top
 * of the configured ones — `eNULL` at encrypt, `aNULL` (anonymous ciphers) at
 * every level that verifies the peer.
 */
export function levelExclusions(level: TlsLevel): string[] {
  if (level === 'encrypt') return ['eNULL'];
  if (level === 'fingerprint' || level === 'dane' || level === 'dane-only' || level === 'verify' || level === 'secure') return ['aNULL'];
  return [];
}

export interface CipherInput {
  readonly grade: string;
  /** tls_high_cipherlist / tls_medium_cipherlist / tls_null_cipherlist values. */
  readonly cipherlists: Readonly<Record<CipherGrade, string>>;
  /** Exclusion lists (already chosen: exclude= preempts main.cf), whitespace/comma/colon separated. */
  readonly exclude: readonly string[];
}

/** Build the OpenSSL cipher string. */
export function cipherString(input: CipherInput): string | { error: string } {
  const grade = parseGrade(input.grade);
  if (grade === undefined) return { error: `invalid cipher grade: "${input.grade}"` };
  let out = input.cipherlists[grade];
  for (const list of input.exclude) {
    for (const tok of list.split(/[\s,:]+/).filter((s) => s !== '')) {
      // tls_misc.c: "Can't exclude ciphers that start with modifiers."
      if ('!+-@'.includes(tok[0]!)) return { error: `invalid unary '!+-@' in cipher exclusion: "${tok}"` };
      out += `:!${tok}`;
    }
  }
  return out;
}
