/**
 * session.ts — the state of one SMTP server session (smtpd(8)): what the
 * client said (HELO, TLS, AUTH, the transaction), the error count, the
 * per-command statistics of the disconnect line, and the reply and log
 * helpers every command handler uses. The command loop is command-loop.ts.
 *
 * Contract:
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
 *   `disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4`
 *   (STATS_ORDER is smtpd's command table order).
 * - The client is named before the connect line as Postfix names it
 *   (peer-name.ts: reverse lookup with forward confirmation, honouring
 *   smtpd_peername_lookup): `localhost[127.0.0.1]`, else `unknown[addr]`.
 * - This file imports no command handler: the handlers import it (no import cycle).
 *
 * Not here: the command loop (command-loop.ts), the command semantics
 * (commands.ts, data.ts, auth.ts).
 */
import { isIPv6 } from 'node:net';
import type { Spool } from '../../queue/spool.ts';
import type { MailLog } from '../../reports/maillog.ts';
import type { MailFromCommand } from '../../smtp/esmtp-params.ts';
import type { AcceptedRecipient } from '../cleanup.ts';
import type { SmtpConnection } from './connection.ts';
import type { SmtpdSettings } from './settings.ts';
import type { TlsSummary } from './tls.ts';
import { tlsEstablishedLine, tlsSummary } from './tls.ts';
import { peerName, type PeerResolver } from './peer-name.ts';
import type { Publish } from '../../reports/received-event.ts';

export interface SessionEnv {
  readonly settings: SmtpdSettings;
  readonly spool: Spool;
  readonly log: MailLog;
  readonly serviceName: string;
  readonly onQueued?: ((queueId: string) => void) | undefined;
  /** A `received` event per queued message (reports/received-event.ts). */
  readonly publish?: Publish | undefined;
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

/** Postfix's smtpd_cmd_table order, as shown on the disconnect line. */
export const STATS_ORDER = ['helo', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'bdat', 'rset', 'noop', 'vrfy', 'etrn', 'quit', 'unknown'];

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

/** smtpd_forbid_bare_newline_exclusions: is this client exempt? */
export async function bareLfExempt(s: Session): Promise<boolean> {
  const m = await s.s.bareNewlineExclusions.match(s.env.clientAddress);
  return m.kind === 'match';
}
