/**
 * require-tls-esmtp.ts — Postfix 3.11's `Require-TLS-ESMTP: yes` header
 * (REQUIRETLS_README; cleanup_message.c): a way to carry a sender's
 * REQUIRETLS request through programs that only pass the message on (content
 * filters), and to ask for REQUIRETLS without SMTP.
 *
 * Contract (when requiretls_enable = yes and requiretls_esmtp_header = yes;
 * otherwise the header means nothing and is never added):
 * - a message whose header has `Require-TLS-ESMTP: yes` (value compared
 *   case-insensitively) is treated as sent with REQUIRETLS;
 * - a message sent with REQUIRETLS (MAIL FROM ... REQUIRETLS, `sendmail -O
 *   requiretls=yes`) that lacks the header gets `Require-TLS-ESMTP: yes`
 *   appended at the end of its header.
 * Nobody removes the header: it travels with the message, as in Postfix.
 * Pure.
 *
 * Not here: where cleanup puts headers (intake/cleanup.ts, daemon/pickup.ts).
 */
import { findHeaders, parseHeaders } from './headers.ts';

export const REQUIRE_TLS_ESMTP_HEADER = 'Require-TLS-ESMTP: yes';

/** The header asks for REQUIRETLS. */
export function hasRequireTlsEsmtp(content: Buffer): boolean {
  return findHeaders(parseHeaders(content), 'Require-TLS-ESMTP').some((f) => f.value.trim().toLowerCase() === 'yes');
}

/**
 * The message's REQUIRETLS flag and the header lines cleanup must append.
 * `enabled` = requiretls_enable && requiretls_esmtp_header.
 */
export function requireTlsEsmtp(content: Buffer, requested: boolean, enabled: boolean): { readonly requireTls: boolean; readonly append: readonly string[] } {
  if (!enabled) return { requireTls: requested, append: [] };
  const seen = hasRequireTlsEsmtp(content);
  return { requireTls: requested || seen, append: requested && !seen ? [REQUIRE_TLS_ESMTP_HEADER] : [] };
}
