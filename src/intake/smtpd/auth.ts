/**
 * auth.ts — the AUTH command (RFC 4954) with the PLAIN and LOGIN mechanisms
 * against the hashed password file (sasl.ts), with Postfix smtpd's replies.
 *
 * Contract:
 * - AUTH is offered when smtpd_sasl_auth_enable = yes and, if
 *   smtpd_tls_auth_only = yes or TLS is mandatory, only inside TLS
 *   (`504 5.5.4 Encryption required for requested authentication
 *   mechanism` otherwise, RFC 4954 §4).
 * - `235 2.7.0 Authentication successful`; a wrong user or password gives
 *   `535 5.7.8 Error: authentication failed: authentication failure` and the
 *   warning `unknown[addr]: SASL PLAIN authentication failed: ...,
 *   sasl_username=u`; `*` cancels (`501 5.7.0 Authentication aborted`).
 * - A password file problem is a configuration error: `454 4.7.0 Temporary
 *   authentication failure: ...`, logged as a warning.
 *
 * Not here: the hash format and decoders (sasl.ts).
 */
import { ConfigError } from '../../lib/errors.ts';
import { decodePlain, LOGIN_PROMPTS, SASL_MECHANISMS, strictBase64, verifyPassword } from './sasl.ts';
import type { Outcome, Session } from './session.ts';

/** The AUTH keyword's mechanism list, or undefined when AUTH is not offered now. */
export function authAdvertised(s: Session): string | undefined {
  if (!s.s.saslEnabled) return undefined;
  if (s.s.tlsAuthOnly && !s.tls) return undefined;
  return SASL_MECHANISMS.join(' ');
}

type Step = { kind: 'data'; data: Buffer } | { kind: 'end'; outcome: Outcome };

async function fail(s: Session, reply: string): Promise<Outcome> {
  await s.reply(reply);
  return 'error';
}

/** One 334 challenge and its response (RFC 4954 §4). */
async function challenge(s: Session, prompt: string): Promise<Step> {
  await s.reply(`334 ${prompt}`);
  const line = await s.conn.readLine();
  if (line === 'eof' || line === 'timeout') {
    s.log(`${line === 'eof' ? 'lost connection' : 'timeout'} after AUTH from ${s.namaddr}`);
    return { kind: 'end', outcome: 'close' };
  }
  return decodeResponse(s, line.line.toString('latin1'), 'continued');
}

async function decodeResponse(s: Session, text: string, what: 'initial' | 'continued'): Promise<Step> {
  if (text === '*') {
    s.log(`${s.namaddr}: SASL authentication aborted`);
    return { kind: 'end', outcome: await fail(s, '501 5.7.0 Authentication aborted') };
  }
  // RFC 4954 §4: "=" is an empty initial response.
  const data = text === '=' ? Buffer.alloc(0) : strictBase64(text);
  if (!data) return { kind: 'end', outcome: await fail(s, `501 5.5.2 Invalid base64 data in ${what} response`) };
  return { kind: 'data', data };
}

async function plain(s: Session, initial: string | undefined): Promise<Step> {
  return initial !== undefined ? decodeResponse(s, initial, 'initial') : challenge(s, '');
}

async function login(s: Session, initial: string | undefined): Promise<{ user: string; password: string } | Outcome> {
  const u = initial !== undefined ? await decodeResponse(s, initial, 'initial') : await challenge(s, LOGIN_PROMPTS.user);
  if (u.kind === 'end') return u.outcome;
  const p = await challenge(s, LOGIN_PROMPTS.password);
  if (p.kind === 'end') return p.outcome;
  return { user: u.data.toString('utf8'), password: p.data.toString('utf8') };
}

async function credentials(s: Session, mech: string, initial: string | undefined): Promise<{ user: string; password: string } | Outcome> {
  if (mech === 'LOGIN') return login(s, initial);
  const step = await plain(s, initial);
  if (step.kind === 'end') return step.outcome;
  const d = decodePlain(step.data);
  // RFC 4616 §2: an authzid other than the authcid is not supported.
  if (!d || (d.authzid !== '' && d.authzid !== d.user)) return { user: d?.user ?? '', password: '' };
  return d;
}

export async function authCommand(s: Session, args: string): Promise<Outcome> {
  if (!s.s.saslEnabled) return fail(s, '503 5.5.1 Error: authentication not enabled');
  if (s.s.tlsAuthOnly && !s.tls) return fail(s, '504 5.5.4 Encryption required for requested authentication mechanism');
  if (s.saslUser !== undefined) return fail(s, '503 5.5.1 Error: already authenticated');
  if (s.tx) return fail(s, '503 5.5.1 Error: MAIL transaction in progress');
  const [mechRaw, initial, extra] = args.trim().split(/\s+/).filter((x) => x !== '');
  if (mechRaw === undefined || extra !== undefined) return fail(s, '501 5.5.4 Syntax: AUTH mechanism');
  const mech = mechRaw.toUpperCase();
  if (!(SASL_MECHANISMS as readonly string[]).includes(mech)) return fail(s, '535 5.7.8 Error: authentication failed: Invalid authentication mechanism');
  const cred = await credentials(s, mech, initial);
  if (typeof cred === 'string') return cred;
  let ok: boolean;
  try {
    ok = cred.password !== '' && (await verifyPassword(s.s.saslPasswordFile, cred.user, cred.password));
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : String(e);
    s.warn(`${s.namaddr}: SASL ${mech} authentication problem: ${msg}`);
    return fail(s, '454 4.7.0 Temporary authentication failure: Server configuration error');
  }
  if (!ok) {
    s.warn(`${s.namaddr}: SASL ${mech} authentication failed: authentication failure, sasl_username=${cred.user}`);
    return fail(s, '535 5.7.8 Error: authentication failed: authentication failure');
  }
  s.saslUser = cred.user;
  s.saslMethod = mech;
  await s.reply('235 2.7.0 Authentication successful');
  return 'ok';
}
