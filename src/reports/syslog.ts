/**
 * syslog.ts — the mail log through the system logger, as Postfix logs when
 * `maillog_file` is empty: one RFC 3164 datagram per line on the local
 * socket (`/dev/log`; journald's `/run/systemd/journal/dev-log` when there is
 * no /dev/log), `<PRI>Mmm dd hh:mm:ss syslog_name/service[pid]: text`, with
 * `syslog_facility` and a severity per line: `warning:` → LOG_WARNING,
 * `error:` → LOG_ERR, `fatal:`/`panic:` → LOG_CRIT, else LOG_INFO (Postfix's
 * msg_syslog.c).
 *
 * How: Node has no AF_UNIX datagram sockets in core. One long-running
 * util-linux `logger` child per program tag (`logger --id=PID -t TAG -p
 * FACILITY.info --prio-prefix -u SOCKET`) reads lines on its standard input
 * and sends each as one datagram — the same bytes glibc's syslog(3) sends.
 * It needs no native module and no dependency (logger is in every Debian
 * base system); the price is one small process per tag (smtpd, smtp, qmgr,
 * pickup, cleanup, master ...), spawned on first use. Lines of one event-loop
 * turn go out in one pipe write per tag.
 *
 * Contract:
 * - `findSyslogSocket()` says which socket to use (or none).
 * - `openSyslogLog()` returns a MailLog. When a logger cannot be run or
 *   stops (the socket went away: `--socket-errors=on`), the log calls
 *   `fallback()` once, writes `warning: ...` there, and every later line goes
 *   to the fallback: nothing is discarded silently.
 * - Run as root, the loggers are spawned as `spawnAs` (mail_owner), so no
 *   part of the mail system keeps root for its logging.
 *
 * Not here: file logs (maillog.ts), the choice between them (daemon/main.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { UserError } from '../lib/errors.ts';
import type { MailLog } from './maillog.ts';

/** syslog(3) facility names logger(1) accepts; Postfix's syslog_facility takes the same. */
const FACILITIES = new Set([
  'auth', 'authpriv', 'cron', 'daemon', 'ftp', 'kern', 'lpr', 'mail', 'news', 'syslog', 'user', 'uucp',
  'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
]);

/** The sockets tried when sealpost_syslog_socket is empty, in order. */
export const DEFAULT_SYSLOG_SOCKETS = ['/dev/log', '/run/systemd/journal/dev-log'] as const;

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** The configured socket (which must exist), else the first default that does; undefined when none. */
export function findSyslogSocket(configured: string, candidates: readonly string[] = DEFAULT_SYSLOG_SOCKETS): string | undefined {
  if (configured !== '') return isSocket(configured) ? configured : undefined;
  return candidates.find(isSocket);
}

/** postconf(5) syslog_facility, checked as Postfix does at start (`fatal: unknown syslog facility`). */
export function checkFacility(facility: string): string {
  const f = facility.trim().toLowerCase();
  if (!FACILITIES.has(f)) throw new UserError(`syslog_facility: unknown syslog facility: ${facility}: use mail, daemon, local0 ... local7 and the like`);
  return f;
}

/** Postfix's msg_syslog severities: LOG_CRIT 2, LOG_ERR 3, LOG_WARNING 4, LOG_INFO 6. */
export function severityOf(text: string): number {
  if (text.startsWith('fatal: ') || text.startsWith('panic: ')) return 2;
  if (text.startsWith('error: ')) return 3;
  if (text.startsWith('warning: ')) return 4;
  return 6;
}

export interface SyslogOptions {
  readonly socket: string;
  readonly facility: string;
  readonly syslogName: string;
  readonly pid?: number;
  /** Spawn the loggers as this account (only while this process is root). */
  readonly spawnAs?: { readonly uid: number; readonly gid: number };
  /** Where lines go once the system logger fails (see the header). */
  readonly fallback: () => MailLog;
  readonly loggerCommand?: string;
}

interface Tagged {
  readonly child: ChildProcess;
  /** Texts not yet handed to the logger. */
  pending: string[];
  /** The last batch handed over: replayed to the fallback when the logger fails (it may not have sent it). */
  sent: string[];
}

class SyslogLog implements MailLog {
  private readonly children = new Map<string, Tagged>();
  private scheduled = false;
  private failed: MailLog | undefined;
  private closed = false;
  private readonly facility: string;
  private readonly pid: number;

  constructor(private readonly opts: SyslogOptions) {
    this.facility = checkFacility(opts.facility);
    this.pid = opts.pid ?? process.pid;
  }

  private program(service: string): string {
    return service.includes('/') ? service : `${this.opts.syslogName}/${service}`;
  }

  private spawnLogger(tag: string): Tagged {
    const args = [`--id=${this.pid}`, '-t', tag, '-p', `${this.facility}.info`, '--prio-prefix', '-u', this.opts.socket, '--socket-errors=on', '--size', '8192'];
    const as = this.opts.spawnAs && process.getuid?.() === 0 ? { uid: this.opts.spawnAs.uid, gid: this.opts.spawnAs.gid } : {};
    const child = spawn(this.opts.loggerCommand ?? 'logger', args, { stdio: ['pipe', 'ignore', 'pipe'], ...as });
    let why = '';
    child.stderr!.on('data', (c: Buffer) => {
      why += c.toString('utf8');
    });
    child.stdin!.on('error', () => undefined);
    child.on('error', (err) => this.fail(`cannot run logger: ${err.message}`));
    child.on('exit', (code, signal) => {
      if (!this.closed) this.fail(`logger for ${tag} stopped (${signal ?? `status ${code}`})${why.trim() !== '' ? `: ${why.trim().split('\n')[0]}` : ''}`);
    });
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stderr as unknown as { unref?: () => void }).unref?.();
    return { child, pending: [], sent: [] };
  }

  private fail(why: string): void {
    if (this.failed || this.closed) return;
    const fallback = this.opts.fallback();
    this.failed = fallback;
    fallback.warn('master', `system logger unavailable (${this.opts.socket}): ${why}; logging here instead`);
    for (const [tag, t] of this.children) {
      t.child.stdin?.end();
      for (const text of [...t.sent, ...t.pending]) fallback.write(tag, text);
    }
    this.children.clear();
  }

  write(service: string, text: string): void {
    if (this.closed) return;
    if (this.failed) return this.failed.write(service, text);
    const tag = this.program(service);
    let t = this.children.get(tag);
    if (!t) {
      t = this.spawnLogger(tag);
      this.children.set(tag, t);
    }
    // One line per record: logger sends each input line as one message.
    t.pending.push(text.replace(/[\r\n]+/g, ' '));
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  warn(service: string, text: string): void {
    this.write(service, `warning: ${text}`);
  }

  flush(): void {
    this.scheduled = false;
    for (const t of this.children.values()) {
      if (t.pending.length === 0) continue;
      t.child.stdin?.write(t.pending.map((text) => `<${severityOf(text)}>${text}\n`).join(''));
      t.sent = t.pending;
      t.pending = [];
    }
    this.failed?.flush?.();
  }

  close(): void {
    this.flush();
    this.closed = true;
    for (const t of this.children.values()) t.child.stdin?.end();
    this.children.clear();
    this.failed?.close();
  }
}

/** A MailLog that sends every line to the system logger; see the header. */
export function openSyslogLog(opts: SyslogOptions): MailLog {
  return new SyslogLog(opts);
}
