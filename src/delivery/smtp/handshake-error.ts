/**
 * handshake-error.ts — what Postfix logs when the TLS handshake after
 * STARTTLS fails (tls_client.c tls_client_start()), from what Node says
 * about the failure:
 *
 *   SSL_connect error to mx.example[192.0.2.1]:25: -1
 *   warning: TLS library problem: error:0A00010B:SSL routines::wrong version number:../ssl/record/ssl3_record.c:350:
 *       OpenSSL reported errors: SSL_connect()'s return value, then each
 *       error of the queue (tls_misc.c tls_print_errors(): ERR_error_string_n,
 *       file, line, data);
 *   SSL_connect error to mx.example[192.0.2.1]:25: Connection reset by peer
 *       a system call failed (`%m`, strerror of errno);
 *   SSL_connect error to mx.example[192.0.2.1]:25: Connection timed out
 *       smtp_starttls_timeout passed (Postfix's timed read sets ETIMEDOUT);
 *   SSL_connect error to mx.example[192.0.2.1]:25: lost connection
 *       the server closed the connection (no OpenSSL error, errno 0).
 *
 * Contract: pure; `sslConnectErrorLines()` returns the lines in Postfix's
 * order, to be logged before the delivery's status line (they travel in the
 * session record's `logLines`, outcome.ts).
 *
 * What Node does not let us match (docs/differences-from-postfix.md):
 * - A TCP reset that arrives before Node has sent the ClientHello (a
 *   server that resets right after its 220) reaches us as an end of stream
 *   — Node's own error "Client network socket disconnected before secure
 *   TLS connection was established", code ECONNRESET but no system call —
 *   exactly as a close does, so it is logged as `lost connection` where
 *   Postfix, whose read returns ECONNRESET, says `Connection reset by peer`.
 *   A reset that comes later is an error of a named system call (`read
 *   ECONNRESET`) and gets its strerror text, as in Postfix.
 * - OpenSSL's errors come from Node's message (ERR_print_errors form); the
 *   function name, which OpenSSL 3's ERR_error_string_n leaves empty, is
 *   dropped, and Node's bundled source path (`../deps/openssl/openssl/ssl/...`)
 *   is shortened to OpenSSL's own (`../ssl/...`). Line numbers are those of
 *   Node's OpenSSL build.
 *
 * Not here: what a failed handshake means for the delivery (enforce.ts,
 * trouble.ts), running the handshake (session.ts).
 */
import { errnoText } from './trouble.ts';

/** How the handshake ended without a TLS session. */
export type HandshakeFailure = { readonly kind: 'timeout' } | { readonly kind: 'error'; readonly error: unknown };

/** One line of ERR_print_errors(): `TID:error:CODE:LIB:FUNC:REASON:FILE:LINE:DATA`. */
const OPENSSL_LINE = /^[0-9A-Fa-f]+:error:([0-9A-Fa-f]{8}):([^:]*):[^:]*:([^:]*):([^:]*):(\d+):(.*)$/;

/** tls_print_errors()'s `TLS library problem: ...` for each OpenSSL error in Node's message. */
export function opensslProblems(message: string): string[] {
  const out: string[] = [];
  for (const line of message.split('\n')) {
    const m = OPENSSL_LINE.exec(line.trim());
    if (!m) continue;
    const [, code, lib, reason, file, lineNo, data] = m;
    const path = file!.replace('/deps/openssl/openssl/', '/');
    // "%s:%s:%d:%s:" with ERR_TXT_STRING data, "%s:%s:%d:" without.
    out.push(`TLS library problem: error:${code!.toUpperCase()}:${lib}::${reason}:${path}:${lineNo}:${data ? `${data}:` : ''}`);
  }
  return out;
}

function errorFields(error: unknown): { code?: string; syscall?: string; message: string } {
  if (typeof error !== 'object' || error === null) return { message: String(error) };
  const e = error as { code?: unknown; syscall?: unknown; message?: unknown };
  return {
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(typeof e.syscall === 'string' ? { syscall: e.syscall } : {}),
    message: typeof e.message === 'string' ? e.message : String(error),
  };
}

/** The lines tls_client.c logs for a failed handshake with `relay` (`host[addr]:port`). */
export function sslConnectErrorLines(relay: string, failure: HandshakeFailure): string[] {
  const head = `SSL_connect error to ${relay}: `;
  if (failure.kind === 'timeout') return [`${head}${errnoText('ETIMEDOUT', 'Connection timed out')}`];
  const e = errorFields(failure.error);
  const problems = opensslProblems(e.message);
  // OpenSSL said why: SSL_connect() returned -1 (a fatal error), then its error queue.
  if (problems.length > 0) return [`${head}-1`, ...problems.map((p) => `warning: ${p}`)];
  if (e.code?.startsWith('ERR_SSL_')) return [`${head}-1`, `warning: TLS library problem: ${e.message.trim()}`];
  if (e.syscall && e.code) return [`${head}${errnoText(e.code, e.message)}`];
  return [`${head}lost connection`];
}
