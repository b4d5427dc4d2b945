/**
 * services.ts — TCP port names (master(5) service fields, smtp_tcp_port, the
 * port of a `host:port` next hop): a number, a name sealpost knows without
 * /etc/services, or a name from /etc/services.
 *
 * Contract: `resolvePort` returns undefined for an unknown name or a number
 * out of range (the caller words the error: a master.cf line, Postfix's
 * `unknown service: NAME/tcp`); /etc/services is read through an injectable
 * function (tests), and its absence is an empty file.
 *
 * Not here: listeners (daemon/services.ts), connections (delivery/smtp/connect.ts).
 */
import { readFileSync } from 'node:fs';

/** Well-known ports sealpost knows without /etc/services. */
const WELL_KNOWN: Readonly<Record<string, number>> = { smtp: 25, submission: 587, submissions: 465, smtps: 465 };

/** Parse /etc/services text: the TCP port of `name` (or an alias), if listed. */
export function lookupServicesFile(text: string, name: string): number | undefined {
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') continue;
    const [svc, portProto, ...aliases] = line.split(/\s+/);
    const m = /^(\d+)\/tcp$/.exec(portProto ?? '');
    if (m && (svc === name || aliases.includes(name))) return Number(m[1]);
  }
  return undefined;
}

function readServicesFile(): string {
  try {
    return readFileSync('/etc/services', 'utf8');
  } catch {
    return '';
  }
}

/** master(5): a numeric port or a service name. */
export function resolvePort(service: string, servicesText: () => string = readServicesFile): number | undefined {
  if (/^\d+$/.test(service)) {
    const n = Number(service);
    return n >= 1 && n <= 65535 ? n : undefined;
  }
  return WELL_KNOWN[service] ?? lookupServicesFile(servicesText(), service);
}
