/**
 * session.ts — one SMTP server session (smtpd(8)): the greeting, the command
 * loop with Postfix's error limits, timeouts and unauthenticated-pipelining
 * check, the per-session state, and the connect/disconnect log lines.
 *
 * Contract:
 * - `runSession()` owns the connection until it ends; it never throws (an
 *   unexpected error is logged as a warning and the connection is cut).
 * - Every reply goes through `reply()`: after smtpd_soft_error_limit errors
 *   each reply waits smtpd_error_sleep_time first (smtpd_chat_reply()); at
 *   smtpd_hard_error_limit errors the session ends with `421 4.7.0
 *   $myhostname Error: too many errors`.
 * - smtpd_forbid_unauth_pipelining (Postfix ≥ 3.9 default yes): a client
 *   that sends more input behind a command while PIPELINING has not been
 *   offered (before EHLO, after HELO, or after STARTTLS until the next EHLO)
 *   gets `554 5.5.0 Error: SMTP protocol synchronization` and is
 *   disconnected; logged as `improper command pipelining after CMD from ...`.
 * - The disconnect line counts commands as Postfix does:
 *   `disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`.
 * - The client is named before the connect line as Postfix names it
 *   (peer-name.ts: reverse lookup with forward confirmation, honouring
 *   smtpd_peername_lookup): `localhost[127.0.0.1]`, else `unknown[addr]`.
 *
 * Not here: the command semantics (commands.ts, data.ts, auth.ts).
 */
import { isIPv6 } from 'node:net';
import type { Spool } from '../../queue/spool.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { MailFromCommand } from '../../smtp/esmtp-params.ts';
import type { SmtpLine } from '../../smtp/line-reader.ts';
import { printable } from '../../smtp/reply.ts';
import type { AcceptedRecipient } from '../cleanup.ts';
import type { SmtpConnection } from './connection.ts';
import type { SmtpdSettings } from './settings.ts';
import type { TlsSummary } from './tls.ts';
import { tlsEstablishedLine, tlsSummary } from './tls.ts';
import { COMMANDS, STATS_ORDER } from './commands.ts';
import { peerName, type PeerResolver } from './peer-name.ts';

export interface SessionEnv {
  readonly settings: SmtpdSettings;
  readonly spool: Spool;
  readonly log: MailLog;
  readonly serviceName: string;
  readonly onQueued?: ((queueId: string) => void) | undefined;
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly localAddress: string;
  /** The resolver for the client name (tests); default the system's. */
  readonly peerResolver?: PeerResolver;
}

export interface MailTransaction {
  readonly mail: MailFromCommand;
  readonly recipients: AcceptedRecipient[];
  /** RCPT commands in this transaction (accepted or not), for smtpd_recipient_limit. */
  rcptCount: number;
}

/** What a command handler reports: counted as ok or failed, or the session must end. */
export type Outcome = 'ok' | 'error' | 'quit' | 'close';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Postfix's client name without reverse DNS: `unknown`. */
export const UNKNOWN_NAME = 'unknown';

export class Session {
  /** The verified client name (`unknown` until and unless nameClient() finds one). */
  clientName = UNKNOWN_NAME;
  /** `name[addr]`, as Postfix's log lines show the client. */
  namaddr: string;
  helo: string | undefined;
  esmtp = false;
  pipeliningOffered = false;
  tls: TlsSummary | undefined;
  saslUser: string | undefined;
  saslMethod: string | undefined;
  authAttempts = 0;
  tx: MailTransaction | undefined;
  errorCount = 0;
  /** Postfix's state->where: the last command, for timeout/lost-connection lines. */
  where = 'CONNECT';
  dataBytes = 0;
  /** The last command line ended in a bare LF (for the DATA reader). */
  lastLineBareLf = false;
  private readonly stats = new Map<string, { ok: number; total: number }>();
  readonly program: string;

  constructor(
    readonly conn: SmtpConnection,
    readonly env: SessionEnv,
  ) {
    this.namaddr = `${UNKNOWN_NAME}[${env.clientAddress}]`;
    const syslogName = env.settings.config.get('syslog_name');
    this.program = syslogName.includes('/') ? `${syslogName}/smtpd` : 'smtpd';
  }

  get s(): SmtpdSettings {
    return this.env.settings;
  }

  /** Look the client's name up (peer-name.ts) and use it from now on. */
  async nameClient(): Promise<void> {
    this.clientName = await peerName(this.env.clientAddress, {
      enabled: this.s.config.getBool('smtpd_peername_lookup'),
      ...(this.env.peerResolver ? { resolver: this.env.peerResolver } : {}),
      warn: (text) => this.warn(text),
    });
    this.namaddr = `${this.clientName}[${this.env.clientAddress}]`;
  }

  /** RFC 3848 protocol name for Received: and the log. */
  get protocol(): string {
    if (!this.esmtp) return this.tls ? 'SMTPS' : 'SMTP';
    return `ESMTP${this.tls ? 'S' : ''}${this.saslUser !== undefined ? 'A' : ''}`;
  }

  get clientIsIPv6(): boolean {
    return isIPv6(this.env.clientAddress);
  }

  log(text: string): void {
    this.env.log.write(this.program, text);
  }

  warn(text: string): void {
    this.env.log.write(this.program, `warning: ${text}`);
  }

  /** Send one reply (a line without CRLF, or several for multi-line replies). */
  async reply(text: string): Promise<void> {
    // smtpd_chat_reply(): slow down clients that make many errors.
    if (this.errorCount >= this.s.softErrorLimit && this.s.errorSleepMs > 0) await sleep(this.s.errorSleepMs);
    this.conn.write(text.endsWith('\r\n') ? text : `${text}\r\n`);
  }

  /** Log a rejected command in Postfix's shape (`NOQUEUE: reject: RCPT from ...`). */
  logReject(command: string, reply: string, recipient?: string): void {
    const from = this.tx ? `from=<${this.tx.mail.address.address}> ` : '';
    const to = recipient !== undefined ? `to=<${recipient}> ` : '';
    const helo = this.helo !== undefined ? ` helo=<${this.helo}>` : '';
    this.log(`NOQUEUE: reject: ${command} from ${this.namaddr}: ${reply}; ${from}${to}proto=${this.esmtp ? 'ESMTP' : 'SMTP'}${helo}`);
  }

  count(name: string, ok: boolean): void {
    const c = this.stats.get(name) ?? { ok: 0, total: 0 };
    c.total++;
    if (ok) c.ok++;
    this.stats.set(name, c);
  }

  /** `ehlo=1 mail=1 rcpt=0/1 ... commands=N[/M]` */
  statsText(): string {
    let ok = 0;
    let total = 0;
    const parts: string[] = [];
    for (const name of STATS_ORDER) {
      const c = this.stats.get(name);
      if (!c) continue;
      ok += c.ok;
      total += c.total;
      parts.push(`${name}=${c.ok === c.total ? c.ok : `${c.ok}/${c.total}`}`);
    }
    parts.push(`commands=${ok === total ? ok : `${ok}/${total}`}`);
    return parts.join(' ');
  }

  resetTransaction(): void {
    this.tx = undefined;
  }

  /** After STARTTLS: forget everything learned in plaintext (RFC 3207 §4.2). */
  resetAfterTls(): void {
    this.helo = undefined;
    this.esmtp = false;
    this.pipeliningOffered = false;
    this.tx = undefined;
  }

  /** Wrapper mode or STARTTLS succeeded: note the session and log it. */
  tlsEstablished(): void {
    const socket = this.conn.socket as import('node:tls').TLSSocket;
    this.tls = tlsSummary(socket);
    this.log(tlsEstablishedLine(this.namaddr, this.tls));
  }
}

function decodeLine(s: Session, line: SmtpLine): string | undefined {
  if (!s.s.smtputf8) return line.line.toString('latin1');
  const text = line.line.toString('utf8');
  // Postfix: "500 5.5.2 Error: bad UTF-8 syntax" when SMTPUTF8 is on and the bytes are not UTF-8.
  return Buffer.from(text, 'utf8').equals(line.line) ? text : undefined;
}

/** One turn of the loop: read a command, check it, run it. */
async function step(s: Session): Promise<'continue' | 'end'> {
  if (s.errorCount >= s.s.hardErrorLimit) {
    s.log(`too many errors after ${s.where} from ${s.namaddr}`);
    await s.reply(`421 4.7.0 ${s.s.myhostname} Error: too many errors`);
    return 'end';
  }
  const line = await s.conn.readLine();
  if (line === 'eof') {
    s.log(`lost connection after ${s.where} from ${s.namaddr}`);
    return 'end';
  }
  if (line === 'timeout') {
    s.log(`timeout after ${s.where} from ${s.namaddr}`);
    await s.reply(`421 4.4.2 ${s.s.myhostname} Error: timeout exceeded`);
    return 'end';
  }
  return runCommand(s, line);
}

async function refuseBareLf(s: Session, line: SmtpLine, exempt: boolean): Promise<boolean> {
  // postconf(5) smtpd_forbid_bare_newline = reject: a command ending in bare <LF> is rejected, then disconnect.
  if (!line.bareLf || s.s.bareNewline !== 'reject' || exempt) return false;
  s.log(`disallowed bare <LF> received from ${s.namaddr} after ${s.where}`);
  await s.reply(`${s.s.bareNewlineRejectCode} 5.5.2 ${s.s.myhostname} Error: bare <LF> received`);
  return true;
}

async function runCommand(s: Session, line: SmtpLine): Promise<'continue' | 'end'> {
  s.lastLineBareLf = line.bareLf;
  const text = decodeLine(s, line);
  if (text === undefined) {
    s.errorCount++;
    await s.reply('500 5.5.2 Error: bad UTF-8 syntax');
    return 'continue';
  }
  const verb = (/^\S*/.exec(text)?.[0] ?? '').toUpperCase();
  const cmd = COMMANDS.get(verb);
  if (await refuseBareLf(s, line, await bareLfExempt(s))) return 'end';
  if (text.trim() === '' || text.includes('\0')) {
    s.errorCount++;
    await s.reply('500 5.5.2 Error: bad syntax');
    return 'continue';
  }
  // smtpd_forbid_unauth_pipelining: input behind a command that PIPELINING did not allow.
  if (s.s.forbidUnauthPipelining && !s.pipeliningOffered && verb !== 'QUIT' && s.conn.reader.hasBufferedData()) {
    s.log(`improper command pipelining after ${cmd?.name ?? verb} from ${s.namaddr}: ${printable(peekBuffered(s)).slice(0, 100)}`);
    await s.reply('554 5.5.0 Error: SMTP protocol synchronization');
    return 'end';
  }
  if (!cmd) {
    s.count('unknown', false);
    s.errorCount++;
    s.where = 'UNKNOWN';
    await s.reply('500 5.5.2 Error: command not recognized');
    return 'continue';
  }
  s.where = cmd.name;
  // Postfix: with TLS mandatory only a few commands work before STARTTLS.
  if (s.s.tls.level === 'encrypt' && !s.tls && !cmd.preTls) {
    s.count(cmd.stat, false);
    s.errorCount++;
    await s.reply('530 5.7.0 Must issue a STARTTLS command first');
    return 'continue';
  }
  const args = text.slice(verb.length).replace(/^[ \t]+/, '');
  const outcome = await cmd.run(s, args, text);
  s.count(cmd.stat, outcome === 'ok' || outcome === 'quit');
  if (outcome === 'error') s.errorCount++;
  return outcome === 'quit' || outcome === 'close' ? 'end' : 'continue';
}

function peekBuffered(s: Session): string {
  // The session ends here, so the pipelined input can be consumed for the log line.
  return s.conn.reader.takeBuffered().subarray(0, 100).toString('latin1');
}

async function bareLfExempt(s: Session): Promise<boolean> {
  const m = await s.s.bareNewlineExclusions.match(s.env.clientAddress);
  return m.kind === 'match';
}

export { bareLfExempt };

/** Run a session from the greeting to the disconnect line. */
export async function runSession(s: Session): Promise<void> {
  await s.nameClient();
  s.log(`connect from ${s.namaddr}`);
  try {
    if (s.s.tls.wrapperMode) {
      const r = await s.conn.wrapTls(s.s.tls.context!);
      if (!r.ok) {
        s.log(`SSL_accept error from ${s.namaddr}: ${r.reason}`);
        s.log(`lost connection after CONNECT from ${s.namaddr}`);
        return;
      }
      s.tlsEstablished();
    }
    // RFC 5321 §4.2: 220 greeting; Postfix: "220 $smtpd_banner".
    await s.reply(`220 ${s.s.banner}`);
    while ((await step(s)) === 'continue') {
      /* next command */
    }
  } catch (e) {
    s.warn(`${s.namaddr}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    s.log(`disconnect from ${s.namaddr} ${s.statsText()}`);
    await s.conn.close();
  }
}
