/**
 * program-log.ts — a MailLog that logs under a service's own syslog_name
 * (master.cf `-o syslog_name=sealpost/relay` → `sealpost/relay/smtp`), as
 * Postfix's daemons do: the one place that builds a program name from a
 * syslog_name and a service tag.
 *
 * Contract: a tag that already holds a `/` is used as is; close() does not
 * close the underlying log (it is shared).
 *
 * Not here: the log file and the line shape (maillog.ts).
 */
import type { MailLog } from './maillog.ts';

/** `SYSLOG_NAME/service`, unless `service` already names a program. */
export function programName(syslogName: string, service: string): string {
  return service.includes('/') ? service : `${syslogName}/${service}`;
}

/** Log as `syslogName/service` through `base`. */
export function programLog(base: MailLog, syslogName: string): MailLog {
  return {
    write: (s, t) => base.write(programName(syslogName, s), t),
    warn: (s, t) => base.warn(programName(syslogName, s), t),
    close: () => undefined,
  };
}
