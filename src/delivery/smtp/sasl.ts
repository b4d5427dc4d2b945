/**
 * sasl.ts — SMTP AUTH for the client (Postfix smtp_sasl_glue.c /
 * smtp_sasl_proto.c): find the credentials for a destination, pick a
 * mechanism the security options allow, run AUTH PLAIN or AUTH LOGIN.
 *
 * Contract:
 * - `findCredentials()` looks in smtp_sasl_password_maps (first table that
 *   answers wins, maps_find order) for: the sender, then `@domain` of the
 *   sender when smtp_sender_dependent_authentication = yes; then the next hop
 *   verbatim (`[mail.isp.example]:587`, `example.com`); then the server's host
 *   name. The value is `username:password` (split at the first colon). A
 *   table error is a `tempfail` (the caller defers: never send without AUTH
 *   because a table broke).
 * - `chooseMechanism()`: PLAIN, then LOGIN, among those the server offers,
 *   smtp_sasl_mechanism_filter allows (when set) and the security options
 *   allow. Over plaintext the options are smtp_sasl_security_options (default
 *   `noplaintext, noanonymous`: PLAIN/LOGIN are refused, so no password ever
 *   crosses an unencrypted connection). Over TLS they are
 *   smtp_sasl_tls_security_options **with `noplaintext` ignored** — a
 *   deliberate difference from Postfix+Cyrus (which then reports "no mechanism
 *   available" until the postmaster sets `noanonymous`): TLS already protects
 *   the password, and that FAQ trap serves nobody.
 * - `authenticate()` runs the exchange and returns the server's final reply.
 *
 * Not here: failure texts and consequences (trouble.ts), the session flow.
 */
import type { Config } from '../../config/types.ts';
import type { TableSet } from '../../maps/registry.ts';
import type { SmtpReply } from '../../smtp/reply.ts';
import type { SmtpChat } from './chat.ts';

export interface SaslCredentials {
  readonly user: string;
  readonly password: string;
}

export type CredentialLookup =
  | { readonly kind: 'found'; readonly credentials: SaslCredentials; readonly key: string }
  | { readonly kind: 'none' }
  | { readonly kind: 'tempfail'; readonly reason: string };

/** The keys to try, in Postfix's order. */
export function credentialKeys(nexthop: string, hostname: string, sender: string, senderDependent: boolean): string[] {
  const keys: string[] = [];
  if (senderDependent && sender !== '') {
    keys.push(sender);
    const at = sender.lastIndexOf('@');
    if (at >= 0) keys.push(sender.slice(at));
  }
  keys.push(nexthop);
  if (hostname !== nexthop) keys.push(hostname);
  return keys;
}

export async function findCredentials(
  config: Config, tables: TableSet, nexthop: string, hostname: string, sender: string,
): Promise<CredentialLookup> {
  const specs = config.getList('smtp_sasl_password_maps');
  if (specs.length === 0) return { kind: 'none' };
  const keys = credentialKeys(nexthop, hostname, sender, config.getBool('smtp_sender_dependent_authentication'));
  for (const key of keys) {
    for (const spec of specs) {
      let r;
      try {
        r = await (await tables.get(spec)).lookup(key);
      } catch (err) {
        return { kind: 'tempfail', reason: `${spec}: ${(err as Error).message}` };
      }
      if (r.kind === 'error') return { kind: 'tempfail', reason: r.error.message };
      if (r.kind === 'found') {
        const colon = r.value.indexOf(':');
        const user = colon < 0 ? r.value : r.value.slice(0, colon);
        const password = colon < 0 ? '' : r.value.slice(colon + 1);
        return { kind: 'found', credentials: { user, password }, key };
      }
    }
  }
  return { kind: 'none' };
}

/** Mechanisms that send the password in the clear (Cyrus SASL_SEC_NOPLAINTEXT). */
const PLAINTEXT_MECHS = new Set(['PLAIN', 'LOGIN']);
const SUPPORTED = ['PLAIN', 'LOGIN'] as const;
export type Mechanism = (typeof SUPPORTED)[number];

export function chooseMechanism(offered: readonly string[], config: Config, overTls: boolean): Mechanism | undefined {
  const options = new Set(
    (overTls ? config.getList('smtp_sasl_tls_security_options') : config.getList('smtp_sasl_security_options')).map((o) => o.toLowerCase()),
  );
  // Deliberate difference (header): inside TLS the password is protected; noplaintext does not apply.
  if (overTls) options.delete('noplaintext');
  const filter = config.getList('smtp_sasl_mechanism_filter').map((m) => m.toUpperCase());
  for (const mech of SUPPORTED) {
    if (!offered.includes(mech)) continue;
    if (filter.length > 0 && !filter.includes(mech)) continue;
    if (options.has('noplaintext') && PLAINTEXT_MECHS.has(mech)) continue;
    return mech;
  }
  return undefined;
}

/** Run AUTH; resolves with the final reply (235 on success). ChatFailure propagates. */
export async function authenticate(chat: SmtpChat, mech: Mechanism, creds: SaslCredentials, timeoutMs: number): Promise<SmtpReply> {
  const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
  if (mech === 'PLAIN') {
    // RFC 4616 §2: [authzid] NUL authcid NUL passwd; RFC 4954 §4 initial response.
    await chat.write(`AUTH PLAIN ${b64(`\0${creds.user}\0${creds.password}`)}\r\n`, timeoutMs, true);
    return chat.reply(timeoutMs);
  }
  await chat.write('AUTH LOGIN\r\n', timeoutMs);
  let r = await chat.reply(timeoutMs);
  if (r.code !== 334) return r;
  await chat.write(`${b64(creds.user)}\r\n`, timeoutMs, true);
  r = await chat.reply(timeoutMs);
  if (r.code !== 334) return r;
  await chat.write(`${b64(creds.password)}\r\n`, timeoutMs, true);
  return chat.reply(timeoutMs);
}
