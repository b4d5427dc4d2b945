/**
 * commands.ts — the SMTP commands other than DATA and AUTH: HELO, EHLO,
 * STARTTLS, MAIL, RCPT, RSET, NOOP, VRFY, ETRN, QUIT, with smtpd(8)'s exact
 * reply texts and sequencing errors.
 *
 * Contract: each handler gets the session and the argument text, sends its
 * replies, and returns an Outcome (`ok`/`error` feed the disconnect counters
 * and the error limits; `quit`/`close` end the session). The table COMMANDS
 * says which commands work before STARTTLS when TLS is mandatory
 * (`preTls`), and STATS_ORDER is the order of the disconnect line.
 *
 * Not here: the command loop (session.ts), DATA (data.ts), AUTH (auth.ts),
 * relay policy (restrictions.ts).
 */
import { statfs } from 'node:fs/promises';
import type { ParsedAddress } from '../../smtp/address.ts';
import { formatEhloReply } from '../../smtp/ehlo.ts';
import { parseMailFrom, parseRcptTo } from '../../smtp/esmtp-params.ts';
import { domainToAscii, isAllAscii, translationWarning, validUtf8Hostname } from '../../smtp/idna.ts';
import { checkRecipient } from './restrictions.ts';
import type { MailTransaction, Outcome, Session } from './session.ts';
import { dataCommand } from './data.ts';
import { authCommand, authAdvertised } from './auth.ts';

export interface Command {
  /** Name in log lines (`timeout after RCPT`). */
  readonly name: string;
  /** Key in the disconnect statistics. */
  readonly stat: string;
  /** Allowed before STARTTLS when smtpd_tls_security_level = encrypt. */
  readonly preTls: boolean;
  run(s: Session, args: string, line: string): Promise<Outcome>;
}

export { STATS_ORDER } from './session.ts';

async function fail(s: Session, reply: string): Promise<Outcome> {
  await s.reply(reply);
  return 'error';
}

/** RFC 5321 §4.1.1.1 HELO. */
async function helo(s: Session, args: string): Promise<Outcome> {
  if (args.trim() === '' || /\s/.test(args.trim())) return fail(s, '501 Syntax: HELO hostname');
  s.resetTransaction();
  s.helo = args.trim();
  s.esmtp = false;
  s.pipeliningOffered = false;
  await s.reply(`250 ${s.s.myhostname}`);
  return 'ok';
}

/** The EHLO keywords, in smtpd.c's order. */
export function ehloKeywords(s: Session): string[] {
  const k = ['PIPELINING'];
  k.push(s.s.messageSizeLimit > 0 ? `SIZE ${s.s.messageSizeLimit}` : 'SIZE');
  if (!s.s.disableVrfy) k.push('VRFY');
  k.push('ETRN');
  // RFC 3207: STARTTLS only when it can work and is not active yet.
  if (s.s.tls.context && !s.tls) k.push('STARTTLS');
  const auth = authAdvertised(s);
  if (auth) k.push(`AUTH ${auth}`);
  k.push('ENHANCEDSTATUSCODES', '8BITMIME', 'DSN');
  if (s.s.smtputf8) k.push('SMTPUTF8');
  // RFC 8689 §4: REQUIRETLS only inside TLS.
  if (s.tls && s.s.requireTlsEnable) k.push('REQUIRETLS');
  return k;
}

/** RFC 5321 §4.1.1.1 EHLO. CHUNKING is not offered (no BDAT; docs/intake.md). */
async function ehlo(s: Session, args: string): Promise<Outcome> {
  if (args.trim() === '' || /\s/.test(args.trim())) return fail(s, '501 Syntax: EHLO hostname');
  s.resetTransaction();
  s.helo = args.trim();
  s.esmtp = true;
  await s.reply(formatEhloReply(s.s.myhostname, ehloKeywords(s)));
  s.pipeliningOffered = true;
  return 'ok';
}

/** RFC 3207 STARTTLS. */
async function starttls(s: Session, args: string): Promise<Outcome> {
  if (args.trim() !== '') return fail(s, '501 5.5.4 Syntax: STARTTLS');
  if (s.tls) return fail(s, '554 5.5.1 Error: TLS already active');
  const context = s.s.tls.context;
  if (!context) return fail(s, '502 5.5.1 Error: command not implemented');
  if (s.tx) return fail(s, '503 5.5.1 Error: MAIL transaction in progress');
  await s.reply('220 2.0.0 Ready to start TLS');
  // RFC 3207 §6: anything pipelined behind STARTTLS is discarded (connection.ts).
  const r = await s.conn.startTls(context);
  if (!r.ok) {
    s.log(`SSL_accept error from ${s.namaddr}: ${r.reason}`);
    return 'close';
  }
  s.resetAfterTls();
  s.tlsEstablished();
  return 'ok';
}

/** sendmail -bs: Postfix's SMTPD_STAND_ALONE, which skips the address and queue checks. */
function standAlone(s: Session): boolean {
  return s.env.serviceName === 'sendmail';
}

/**
 * smtpd_check_addr() through trivial-rewrite's resolver (resolve.c): the domain of a
 * non-local address must pass valid_utf8_hostname() — an all-ASCII name valid_hostname(),
 * a UTF-8 name (only with smtputf8_enable) a conversion to A-labels (midna). A trailing dot
 * is stripped first, address literals are checked elsewhere. On failure Postfix logs the
 * warning and answers `501 5.1.3 Bad recipient address syntax` / `501 5.1.7 Bad sender
 * address syntax`; trivial-rewrite logs midna's reason.
 */
function domainRefused(s: Session, address: ParsedAddress, raw: string, command: 'MAIL' | 'RCPT'): boolean {
  const domain = address.domain.replace(/\.$/, '');
  if (standAlone(s) || address.domain === '' || address.literal !== undefined) return false;
  if (validUtf8Hostname(s.s.smtputf8, domain)) return false;
  if (s.s.smtputf8 && !isAllAscii(domain)) {
    const r = domainToAscii(domain);
    if (!r.ok) s.env.log.write(s.program.replace(/smtpd$/, 'trivial-rewrite'), `warning: ${translationWarning(domain, 'ASCII', r.reason)}`);
  }
  s.warn(`Illegal address syntax from ${s.namaddr} in ${command} command: ${raw}`);
  return true;
}

/**
 * smtpd_check_queue() (smtpd_check.c), at every MAIL FROM: refuse when the queue file
 * system has no more than queue_minfree bytes free, or less than 1.5 × message_size_limit
 * (both compared in file-system blocks, as Postfix does). SIZE= plays no part here.
 */
async function queueSpaceReply(s: Session): Promise<string | undefined> {
  if (standAlone(s)) return undefined;
  let fs;
  try {
    fs = await queueSpace(s.env.spool.dir);
  } catch {
    return undefined; // the write itself will fail and say so (452 4.3.1)
  }
  const blocks = (bytes: number) => Math.floor(bytes / fs.bsize);
  if (blocks(s.s.queueMinfree) < fs.bavail && blocks(s.s.messageSizeLimit) < fs.bavail / 1.5) return undefined;
  const reply = '452 4.3.1 Insufficient system storage';
  s.logReject('MAIL', reply);
  s.warn(`not enough free space in mail queue: ${fs.bavail * fs.bsize} bytes < 1.5*message size limit`);
  return reply;
}

/** statfs of a queue directory, at most one call per second per directory (one per MAIL cost a thread-pool round trip each). */
const spaceCache = new Map<string, { at: number; fs: Promise<{ bsize: number; bavail: number }> }>();
function queueSpace(dir: string): Promise<{ bsize: number; bavail: number }> {
  const now = Date.now();
  const hit = spaceCache.get(dir);
  if (hit && now - hit.at < 1000) return hit.fs;
  const fs = statfs(dir).then((f) => ({ bsize: f.bsize, bavail: f.bavail }));
  spaceCache.set(dir, { at: now, fs });
  fs.catch(() => spaceCache.delete(dir));
  return fs;
}

/** RFC 5321 §4.1.1.2 MAIL. */
async function mail(s: Session, _args: string, line: string): Promise<Outcome> {
  if (s.tx) return fail(s, '503 5.5.1 Error: nested MAIL command');
  const parsed = parseMailFrom(line, {
    strictRfc821Envelopes: s.s.strictRfc821,
    smtputf8: s.s.smtputf8,
    auth: s.s.saslEnabled,
    requireTls: s.tls !== undefined && s.s.requireTlsEnable,
  });
  if (!parsed.ok) return fail(s, parsed.error.reply);
  // RFC 1870 §6: refuse a declared SIZE over message_size_limit.
  const size = parsed.value.params.size;
  if (size !== undefined && s.s.messageSizeLimit > 0 && size > s.s.messageSizeLimit) {
    return fail(s, '552 5.3.4 Message size exceeds fixed limit');
  }
  if (domainRefused(s, parsed.value.address, parsed.value.rawAddress, 'MAIL')) return fail(s, '501 5.1.7 Bad sender address syntax');
  s.tx = { mail: parsed.value, recipients: [], rcptCount: 0 };
  const storage = await queueSpaceReply(s);
  if (storage) {
    s.resetTransaction();
    return fail(s, storage);
  }
  await s.reply('250 2.1.0 Ok');
  return 'ok';
}

/** Postfix's state->rcpt_overshoot, per transaction. */
const overshoot = new WeakMap<MailTransaction, number>();

/** RFC 5321 §4.1.1.3 RCPT, with relay control. */
async function rcpt(s: Session, _args: string, line: string): Promise<Outcome> {
  const tx = s.tx;
  if (!tx) return fail(s, '503 5.5.1 Error: need MAIL command');
  const parsed = parseRcptTo(line, {
    strictRfc821Envelopes: s.s.strictRfc821,
    smtputf8: s.s.smtputf8,
    smtputf8Declared: tx.mail.params.smtputf8,
  });
  if (!parsed.ok) return fail(s, parsed.error.reply);
  if (domainRefused(s, parsed.value.address, parsed.value.rawAddress, 'RCPT')) return fail(s, '501 5.1.3 Bad recipient address syntax');
  // postconf(5) smtpd_recipient_limit, counted over accepted recipients (smtpd.c rcpt_cmd()):
  // the first smtpd_recipient_overshoot_limit excess RCPTs get 452 without counting as
  // errors, every one after that also counts towards the error limits.
  if (s.s.recipientLimit > 0 && tx.recipients.length >= s.s.recipientLimit) {
    await s.reply('452 4.5.3 Error: too many recipients');
    const excess = overshoot.get(tx) ?? 0;
    overshoot.set(tx, excess + 1);
    return excess < s.s.recipientOvershootLimit ? 'ok' : 'error';
  }
  tx.rcptCount++;
  const recipient = parsed.value.address.address;
  const verdict = await checkRecipient(s.s.relay, {
    recipient,
    hadSourceRoute: parsed.value.address.hadSourceRoute,
    clientAddress: s.env.clientAddress,
    localAddress: s.env.localAddress,
    saslAuthenticated: s.saslUser !== undefined,
  });
  if (verdict.kind === 'config-error') {
    s.warn(verdict.problem);
    const reply = '451 4.3.5 Server configuration error';
    s.logReject('RCPT', reply, recipient);
    return fail(s, reply);
  }
  if (verdict.kind === 'lookup-error') {
    s.warn(verdict.problem);
    const reply = '451 4.3.0 Temporary lookup error';
    s.logReject('RCPT', reply, recipient);
    return fail(s, reply);
  }
  if (verdict.kind !== 'permit') {
    s.logReject('RCPT', verdict.reply, recipient);
    return fail(s, verdict.reply);
  }
  const p = parsed.value.params;
  tx.recipients.push({ address: recipient, notify: p.notify, orcpt: p.orcpt ? `${p.orcpt.type};${p.orcpt.address}` : undefined });
  await s.reply('250 2.1.5 Ok');
  return 'ok';
}

async function rset(s: Session, args: string): Promise<Outcome> {
  if (args.trim() !== '') return fail(s, '501 5.5.4 Syntax: RSET');
  s.resetTransaction();
  await s.reply('250 2.0.0 Ok');
  return 'ok';
}

async function noop(s: Session): Promise<Outcome> {
  await s.reply('250 2.0.0 Ok');
  return 'ok';
}

/** RFC 5321 §3.5.3: 252, we do not verify (Postfix without address verification). */
async function vrfy(s: Session, args: string): Promise<Outcome> {
  if (s.s.disableVrfy) return fail(s, '502 5.5.1 VRFY command is disabled');
  if (args.trim() === '') return fail(s, '501 5.5.4 Syntax: VRFY address');
  await s.reply(`252 2.0.0 ${args.trim()}`);
  return 'ok';
}

/** RFC 1985 ETRN: accepted but there is no fast-flush service (docs/intake.md). */
async function etrn(s: Session, args: string): Promise<Outcome> {
  if (!s.helo) return fail(s, '503 Error: send HELO/EHLO first');
  if (s.tx) return fail(s, '503 Error: MAIL transaction in progress');
  if (args.trim() === '') return fail(s, '500 Syntax: ETRN domain');
  await s.reply('458 Unable to queue messages for node ' + args.trim());
  return 'error';
}

async function quit(s: Session): Promise<Outcome> {
  await s.reply('221 2.0.0 Bye');
  return 'quit';
}

const table: Array<[string, Command]> = [
  ['HELO', { name: 'HELO', stat: 'helo', preTls: true, run: helo }],
  ['EHLO', { name: 'EHLO', stat: 'ehlo', preTls: true, run: ehlo }],
  ['STARTTLS', { name: 'STARTTLS', stat: 'starttls', preTls: true, run: starttls }],
  ['AUTH', { name: 'AUTH', stat: 'auth', preTls: false, run: authCommand }],
  ['MAIL', { name: 'MAIL', stat: 'mail', preTls: false, run: mail }],
  ['RCPT', { name: 'RCPT', stat: 'rcpt', preTls: false, run: rcpt }],
  ['DATA', { name: 'DATA', stat: 'data', preTls: false, run: dataCommand }],
  ['RSET', { name: 'RSET', stat: 'rset', preTls: true, run: rset }],
  ['NOOP', { name: 'NOOP', stat: 'noop', preTls: true, run: noop }],
  ['VRFY', { name: 'VRFY', stat: 'vrfy', preTls: false, run: vrfy }],
  ['ETRN', { name: 'ETRN', stat: 'etrn', preTls: false, run: etrn }],
  ['QUIT', { name: 'QUIT', stat: 'quit', preTls: true, run: quit }],
];

export const COMMANDS: ReadonlyMap<string, Command> = new Map(table);
