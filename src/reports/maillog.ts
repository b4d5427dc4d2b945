/**
 * maillog.ts — the mail log in Postfix's line shape, so existing tools
 * (pflogsumm, fail2ban rules, log shippers) read it unchanged:
 *
 *     Nov 28 12:00:01 mx1 sealpost/smtpd[4711]: 3F2A81C0B4: client=localhost[127.0.0.1]
 *
 * i.e. `Mon DD HH:MM:SS host syslog_name/service[pid]: text` (syslog's
 * timestamp, day padded with a space). With `sealpost_maillog_format = json`
 * each line is instead one JSON object {time, host, program, pid, text}.
 *
 * Contract: `maillog_file` is a path (appended to) or `/dev/stdout` /
 * `/dev/stderr`; each record is written with one write(2) so concurrent
 * writers never interleave inside a line. Unbuffered (the default, tools and
 * tests), writing is synchronous: a line is in the file (page cache) before
 * the event it reports is acted on further. The daemon opens its log
 * `buffered`: lines written in one turn of the event loop go out together in
 * one write(2) at the end of that turn (or at 64 KiB) — the mail path logs
 * about six lines per message and one system call each was a tenth of the
 * relay's CPU. `flush()` and `close()` write what is pending; a SIGKILL can
 * lose at most the lines of the current turn (Postfix's syslog path is
 * asynchronous too).
 *
 * Not here: log rotation (postlog's maillog_file_rotate_suffix), the system
 * logger (syslog.ts: what the daemon uses when maillog_file is empty).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';

export interface MailLog {
  /** Log `text` as `syslog_name/service[pid]`. `service` may already carry a prefix (`postfix/submission/smtpd`). */
  write(service: string, text: string): void;
  /** Shorthand for `write(service, 'warning: ' + text)`. */
  warn(service: string, text: string): void;
  /** Write pending lines now (buffered logs). */
  flush?(): void;
  close(): void;
}

export interface MailLogOptions {
  /** `maillog_file`: a path, `/dev/stdout` or `/dev/stderr`. */
  readonly file: string;
  /** `syslog_name` (default `sealpost`). */
  readonly syslogName?: string;
  /** Host name shown in each line (default: the short host name, as syslog shows it). */
  readonly hostname?: string;
  readonly format?: 'postfix' | 'json';
  readonly pid?: number;
  /** Injected clock (tests). */
  readonly now?: () => Date;
  /** Batch the lines of one event-loop turn into one write (the daemon). */
  readonly buffered?: boolean;
}

const FLUSH_AT = 64 * 1024;

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** syslog's RFC 3164 timestamp: `Nov  8 04:19:00` (local time). */
export function syslogTimestamp(d: Date): string {
  const dd = String(d.getDate()).padStart(2, ' ');
  const two = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${dd} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function openMailLog(opts: MailLogOptions): MailLog {
  const syslogName = opts.syslogName ?? 'sealpost';
  const host = opts.hostname ?? osHostname().split('.')[0] ?? 'localhost';
  const pid = opts.pid ?? process.pid;
  const now = opts.now;
  // The timestamp changes once a second: formatted (local time) once per second, not per line.
  let stampSecond = Number.NaN;
  let stampText = '';
  const stamp = (ms: number): string => {
    const second = Math.floor(ms / 1000);
    if (second !== stampSecond) {
      stampSecond = second;
      stampText = syslogTimestamp(new Date(ms));
    }
    return stampText;
  };
  const format = opts.format ?? 'postfix';
  let fd: number;
  let owned = true;
  if (opts.file === '/dev/stdout') {
    fd = 1;
    owned = false;
  } else if (opts.file === '/dev/stderr') {
    fd = 2;
    owned = false;
  } else {
    fd = openSync(opts.file, 'a', 0o640);
  }
  const programOf = (service: string) => (service.includes('/') ? service : `${syslogName}/${service}`);
  let pending = '';
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending === '' || fd < 0) return;
    const out = pending;
    pending = '';
    writeSync(fd, out);
  };
  const write = (service: string, text: string) => {
    if (fd < 0) return;
    const program = programOf(service);
    const ms = now ? now().getTime() : Date.now();
    const line =
      format === 'json'
        ? JSON.stringify({ time: new Date(ms).toISOString(), host, program, pid, text })
        : `${stamp(ms)} ${host} ${program}[${pid}]: ${text}`;
    if (!opts.buffered) {
      writeSync(fd, line + '\n');
      return;
    }
    pending += line + '\n';
    if (pending.length >= FLUSH_AT) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    write,
    warn: (service, text) => write(service, `warning: ${text}`),
    flush,
    close: () => {
      flush();
      if (owned && fd >= 0) closeSync(fd);
      fd = -1;
    },
  };
}

/** A MailLog that keeps lines in memory (tests, and `reload` dry runs). */
export function memoryMailLog(syslogName = 'sealpost'): MailLog & { readonly lines: string[] } {
  const lines: string[] = [];
  const write = (service: string, text: string) => {
    lines.push(`${service.includes('/') ? service : `${syslogName}/${service}`}: ${text}`);
  };
  return { lines, write, warn: (s, t) => write(s, `warning: ${t}`), close: () => {} };
}
