/**
 * loop.ts — "mail for X loops back to myself": the SMTP client's checks that it is about to
 * hand mail to this very MTA (Postfix smtp_addr.c smtp_find_self() / smtp_truncate_self(),
 * smtp_proto.c smtp_helo()).
 *
 * Contract (pure; the machine's addresses are injected):
 * - `loopSettings(config)` reads myhostname, proxy_interfaces and the listeners master.cf
 *   declares: every `inet` smtpd service on its own address, or on inet_interfaces for a
 *   bare port (`all` = every address; `loopback-only`/`localhost` = 127.0.0.1 and ::1),
 *   as the daemon binds them (daemon/services.ts, which delivery must not import).
 * - `isSelf(settings, address, port)`: the server is one of our own listeners — an exact
 *   `address:port`, or any address of this machine (every 127.0.0.0/8 and ::1 address
 *   included) for a listener on the wildcard address — or a proxy_interfaces address on
 *   port 25. Postfix checks only port 25 against inet_interfaces and proxy_interfaces
 *   (it assumes smtpd listens there); sealpost checks every listener it has, on its own
 *   port, and no port it does not listen on (another MTA on the same host is not us).
 * - `selfCheck(hostForText, targets, settings, bracketed)`: smtp_host_addr() for a `[host]`
 *   next hop — any address of ours is `5.4.6 mail for HOST loops back to myself`;
 *   smtp_domain_addr() for MX targets — the list is cut before the preference at which we
 *   appear; when nothing is left, `5.4.6` (we are the best MX) — never a connection to
 *   ourselves. Postfix says `4.4.4 unable to find primary relay for DOMAIN` when better MX
 *   hosts exist in DNS but have no address: the targets here come after address lookup,
 *   so that case reads as 5.4.6 too.
 * - `checkPort(settings, port)`: where the greeting/EHLO name is compared with myhostname —
 *   port 25 as Postfix (SMTP_MISC_FLAG_LOOP_DETECT), and the ports we listen on.
 *   `ehloLoop(...)`: Postfix's warning and Trouble when the EHLO reply's first word is
 *   myhostname — 5.4.6 at a best MX, 4.4.6 at a backup (try the next server).
 *   `greetingWarning(...)`: the greeting alone only warns, as Postfix.
 *
 * Not here: what the failures then mean (trouble.ts decide/leftOver: a relayhost that loops
 * is a configuration problem, 4.3.5), routing mail for our own domains and address literals
 * as local (scheduler/resolve.ts).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Config } from '../../config/types.ts';
import type { MasterService } from '../../config/master-cf.ts';
import { resolvePort } from '../../lib/services.ts';
import type { Trouble } from './trouble.ts';

export interface Listener {
  readonly host: string;
  readonly port: number;
}

export interface LoopSettings {
  /** myhostname, lower case. */
  readonly myhostname: string;
  /** Where our smtpd listens (`0.0.0.0` and `::` are wildcards). */
  readonly listeners: readonly Listener[];
  /** proxy_interfaces addresses (checked on port 25). */
  readonly proxyAddresses: readonly string[];
  /** The addresses of this machine's interfaces (os.networkInterfaces by default). */
  readonly localAddresses: readonly string[];
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; lower case. */
function canonical(address: string): string {
  const a = address.toLowerCase();
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  return m ? m[1]! : a;
}

function machineAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => canonical(a.address)));
}

/** inet_interfaces as addresses; `::` stands for every address of the machine. */
function interfaceAddresses(config: Config): string[] {
  const out: string[] = [];
  for (const raw of config.getList('inet_interfaces')) {
    const item = raw.toLowerCase().replace(/^\[(.*)\]$/, '$1');
    if (item === 'all') out.push('::');
    else if (item === 'loopback-only' || item === 'localhost') out.push('127.0.0.1', '::1');
    else if (isIP(item) !== 0) out.push(canonical(item));
  }
  return out.length > 0 || config.getList('inet_interfaces').length > 0 ? out : ['::'];
}

/** The smtpd listeners master.cf declares (master(5): `port`, `name` or `host:port`). */
function listenersOf(config: Config, services: readonly MasterService[] | undefined): Listener[] {
  const out: Listener[] = [];
  let defaults: string[] | undefined;
  for (const svc of services ?? []) {
    if (svc.type !== 'inet' || svc.command !== 'smtpd') continue;
    const port = resolvePort(svc.service);
    if (port === undefined) continue;
    const hosts = svc.host !== undefined
      ? [svc.host.toLowerCase() === 'localhost' ? '127.0.0.1' : canonical(svc.host)]
      : (defaults ??= interfaceAddresses(config));
    for (const host of hosts) out.push({ host, port });
  }
  return out;
}

/** `services`: master.cf as the daemon reads it (LoadedConfig.services). */
export function loopSettings(config: Config & { readonly services?: readonly MasterService[] }, localAddresses: readonly string[] = machineAddresses()): LoopSettings {
  return {
    myhostname: config.get('myhostname').toLowerCase(),
    listeners: listenersOf(config, config.services),
    proxyAddresses: config.getList('proxy_interfaces').map((a) => canonical(a.replace(/^\[(.*)\]$/, '$1'))).filter((a) => isIP(a) !== 0),
    localAddresses: localAddresses.map(canonical),
  };
}

function isLocalAddress(s: LoopSettings, a: string, wildcard: string): boolean {
  const v4 = isIP(a) === 4;
  // A socket on "0.0.0.0" takes IPv4 only; one on "::" (Node's dual stack) takes both.
  if (wildcard === '0.0.0.0' && !v4) return false;
  if (v4 && a.startsWith('127.')) return true; // the whole loopback net reaches a wildcard listener (Linux)
  return a === '::1' || s.localAddresses.includes(a);
}

/** smtp_addr.c smtp_find_self(), over every listener (see the header). */
export function isSelf(s: LoopSettings, address: string, port: number): boolean {
  const a = canonical(address);
  for (const l of s.listeners) {
    if (l.port !== port) continue;
    if (l.host === '0.0.0.0' || l.host === '::' ? isLocalAddress(s, a, l.host) : l.host === a) return true;
  }
  return port === 25 && s.proxyAddresses.includes(a);
}

/** smtp_addr.c: "mail for %s loops back to myself" (5.4.6). */
function loopsBack(name: string): { readonly dsn: string; readonly reason: string } {
  return { dsn: '5.4.6', reason: `mail for ${name} loops back to myself` };
}

export type SelfCheck<T> = { readonly kind: 'ok'; readonly targets: readonly T[] } | { readonly kind: 'loop'; readonly dsn: string; readonly reason: string };

/**
 * smtp_host_addr() (`bracketed`) and smtp_domain_addr(): drop ourselves and every server
 * no better than us, or say that the mail loops. `name` is the host or domain as Postfix
 * names it in the text (without brackets or port).
 */
export function selfCheck<T extends { readonly address: string; readonly port: number; readonly preference?: number }>(
  s: LoopSettings | undefined, name: string, targets: readonly T[], bracketed: boolean,
): SelfCheck<T> {
  if (!s) return { kind: 'ok', targets };
  const self = targets.find((t) => isSelf(s, t.address, t.port));
  if (!self) return { kind: 'ok', targets };
  if (bracketed) return { kind: 'loop', ...loopsBack(name) };
  // smtp_truncate_self(): only servers more preferred than we are may take the mail.
  const kept = targets.filter((t) => (t.preference ?? 0) < (self.preference ?? 0));
  return kept.length > 0 ? { kind: 'ok', targets: kept } : { kind: 'loop', ...loopsBack(name) };
}

/** smtp_connect.c SMTP_MISC_FLAG_LOOP_DETECT: port 25 — and, in sealpost, every port we listen on. */
export function checkPort(s: LoopSettings | undefined, port: number): s is LoopSettings {
  return s !== undefined && (port === 25 || s.listeners.some((l) => l.port === port));
}

/** The first word of a greeting or EHLO reply line (smtp_proto.c mystrtok). */
function firstWord(line: string): string {
  return line.replace(/^\d{3}[ -]?/, '').trim().split(/[ \t]+/)[0] ?? '';
}

/** smtp_proto.c: the greeting names us — Postfix only warns. */
export function greetingWarning(s: LoopSettings | undefined, greetingLine: string, namaddrport: string, port: number): string | undefined {
  if (!checkPort(s, port) || firstWord(greetingLine).toLowerCase() !== s.myhostname) return undefined;
  return `host ${namaddrport} greeted me with my own hostname ${s.myhostname}`;
}

/**
 * smtp_proto.c smtp_helo(): the EHLO/HELO reply names us. smtp_site_fail() with 5.4.6 at a
 * best MX (bounce) or 4.4.6 at a backup (the next server may take it), text naming the next
 * hop; `warning` is Postfix's warning line.
 */
export function ehloLoop(
  s: LoopSettings | undefined, ehloName: string, server: { readonly port: number; readonly bestMx?: boolean }, nexthop: string, relay: string, namaddrport: string,
): { readonly trouble: Trouble; readonly warning: string } | undefined {
  if (!checkPort(s, server.port) || ehloName.toLowerCase() !== s.myhostname) return undefined;
  const { reason } = loopsBack(nexthop);
  const dsn = server.bestMx === false ? '4.4.6' : '5.4.6';
  return {
    warning: `host ${namaddrport} replied to HELO/EHLO with my own hostname ${s.myhostname}`,
    trouble: { scope: 'site', dsn, reason, relay, throttle: true },
  };
}
