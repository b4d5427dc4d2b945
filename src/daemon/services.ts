/**
 * services.ts — the SMTP listeners the master runs, derived from master.cf:
 * one listener per address of every `inet` service whose command is `smtpd`.
 *
 * Contract:
 * - `serviceEndpoints()` is pure: master.cf services + inet_interfaces +
 *   inet_protocols → the (service, host, port) list. master(5): the service
 *   field is `port`, `name` or `host:port`; a bare service listens on every
 *   address in inet_interfaces. Port names as lib/services.ts resolves them
 *   (smtp 25, submission 587, submissions/smtps 465, else /etc/services),
 *   else ConfigError naming the master.cf line.
 * - inet services with another command (postscreen, ...) are not run; they are
 *   reported once as a warning. unix/fifo/pass services (Postfix's internal
 *   pickup, cleanup, qmgr ...) are built into sealpost and silently accepted.
 * - `ListenerSet.apply()` makes the running listeners match a new endpoint
 *   list: endpoints that stay get `update(ctx)` (their sessions keep running),
 *   endpoints that went away are closed gracefully, new ones are started. A
 *   failure to bind a new endpoint is returned, never thrown, so that a reload
 *   keeps everything else running.
 *
 * Not here: the SMTP protocol (intake/smtpd), per-service Config building
 * (check.ts), host-name resolution in inet_interfaces (only addresses,
 * `localhost`, `all` and `loopback-only` are understood).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { MasterService } from '../config/master-cf.ts';
import { ConfigError } from '../lib/errors.ts';
import { resolvePort } from '../lib/services.ts';
import type { SmtpdContext, SmtpdListener } from '../intake/smtpd/server.ts';

export interface Endpoint {
  /** `service@host:port`, the identity used to match listeners across reloads. */
  readonly key: string;
  readonly service: MasterService;
  readonly host: string;
  readonly port: number;
}

export { lookupServicesFile, resolvePort } from '../lib/services.ts';

export interface InterfaceOptions {
  /** inet_interfaces, split. */
  readonly interfaces: readonly string[];
  /** inet_protocols, split (`all`, `ipv4`, `ipv6`). */
  readonly protocols: readonly string[];
  /** Whether the host has IPv6 at all (injected in tests). */
  readonly hostHasIpv6?: boolean;
}

function hostHasIpv6(): boolean {
  return Object.values(networkInterfaces()).some((list) => (list ?? []).some((a) => a.family === 'IPv6'));
}

/** postconf(5) inet_interfaces → addresses to bind. `where` names the parameter for errors. */
export function listenAddresses(opts: InterfaceOptions, where = 'inet_interfaces'): string[] {
  const protos = opts.protocols.map((p) => p.toLowerCase());
  const all = protos.length === 0 || protos.includes('all');
  const v6Host = opts.hostHasIpv6 ?? hostHasIpv6();
  const v4 = all || protos.includes('ipv4');
  const v6 = (all || protos.includes('ipv6')) && v6Host;
  const out: string[] = [];
  const add = (a: string): void => {
    if (!out.includes(a)) out.push(a);
  };
  const ifaces = opts.interfaces.length === 0 ? ['all'] : opts.interfaces;
  for (const raw of ifaces) {
    const item = raw.toLowerCase();
    if (item === 'all') {
      // One dual-stack socket on '::' covers IPv4 too (Node's default); IPv4 only otherwise.
      add(v6 ? '::' : '0.0.0.0');
    } else if (item === 'loopback-only' || item === 'localhost') {
      if (v4) add('127.0.0.1');
      if (v6) add('::1');
    } else {
      const addr = item.replace(/^\[(.*)\]$/, '$1');
      if (isIP(addr) === 0) {
        throw new ConfigError(`${where}: "${raw}" is not an IP address: sealpost listens on addresses, "all" or "loopback-only"`);
      }
      add(addr);
    }
  }
  return out;
}

export interface EndpointResult {
  readonly endpoints: Endpoint[];
  /** One line each: services sealpost does not run. */
  readonly warnings: string[];
}

/** Internal Postfix services that sealpost has built in (no warning for them). */
const BUILT_IN_INET = new Set(['smtpd']);

/** The listeners master.cf asks for (see the header). `masterCfPath` is used in messages. */
export function serviceEndpoints(services: readonly MasterService[], opts: InterfaceOptions, masterCfPath: string): EndpointResult {
  const endpoints: Endpoint[] = [];
  const warnings: string[] = [];
  const seen = new Map<string, MasterService>();
  let defaults: string[] | undefined;
  for (const s of services) {
    if (s.type !== 'inet') continue;
    if (!BUILT_IN_INET.has(s.command)) {
      warnings.push(`${masterCfPath}, line ${s.line}: service "${s.name}": command "${s.command}" is not supported by sealpost; the service is not started`);
      continue;
    }
    const port = resolvePort(s.service);
    if (port === undefined) {
      throw new ConfigError(`service "${s.name}": unknown port or service name "${s.service}": use a number or a name from /etc/services`, masterCfPath, s.line);
    }
    let hosts: string[];
    if (s.host !== undefined) {
      const h = s.host.toLowerCase() === 'localhost' ? '127.0.0.1' : s.host;
      if (isIP(h) === 0) throw new ConfigError(`service "${s.name}": "${s.host}" is not an IP address`, masterCfPath, s.line);
      hosts = [h];
    } else {
      hosts = defaults ??= listenAddresses(opts);
    }
    for (const host of hosts) {
      const where = `${host}:${port}`;
      const prev = seen.get(where);
      // master(8): two services on one address is "bind ... Address already in use".
      if (prev) throw new ConfigError(`service "${s.name}": address ${where} is already used by service "${prev.name}" (line ${prev.line})`, masterCfPath, s.line);
      seen.set(where, s);
      endpoints.push({ key: `${s.name}@${where}`, service: s, host, port });
    }
  }
  return { endpoints, warnings };
}

/** `startSmtpd` from intake/smtpd/server.ts (injectable for tests). */
export type StartListener = (listen: { readonly host: string; readonly port: number }, ctx: SmtpdContext) => Promise<SmtpdListener>;

export interface DesiredListener {
  readonly endpoint: Endpoint;
  readonly ctx: SmtpdContext;
}

export interface ApplyResult {
  readonly started: string[];
  readonly updated: string[];
  readonly closed: string[];
  readonly failed: ReadonlyArray<{ readonly key: string; readonly error: string }>;
}

/** Postfix's words for a failed bind: `bind 0.0.0.0 port 25: Address already in use`. */
export function bindError(host: string, port: number, err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const why =
    e?.code === 'EADDRINUSE' ? 'Address already in use' : e?.code === 'EACCES' ? 'Permission denied' : e?.code === 'EADDRNOTAVAIL' ? 'Cannot assign requested address' : (e?.message ?? String(err));
  return `bind ${host} port ${port}: ${why}`;
}

export class ListenerSet {
  private readonly running = new Map<string, SmtpdListener>();

  constructor(private readonly start: StartListener) {}

  keys(): string[] {
    return [...this.running.keys()];
  }

  get(key: string): SmtpdListener | undefined {
    return this.running.get(key);
  }

  /** Make the running set match `desired` (see the header). */
  async apply(desired: readonly DesiredListener[], close: { graceful: boolean; timeoutMs: number }): Promise<ApplyResult> {
    const want = new Map(desired.map((d) => [d.endpoint.key, d]));
    const closed: string[] = [];
    await Promise.all(
      [...this.running].map(async ([key, l]) => {
        if (want.has(key)) return;
        this.running.delete(key);
        closed.push(key);
        await l.close(close);
      }),
    );
    const started: string[] = [];
    const updated: string[] = [];
    const failed: Array<{ key: string; error: string }> = [];
    for (const d of desired) {
      const existing = this.running.get(d.endpoint.key);
      if (existing) {
        existing.update(d.ctx);
        updated.push(d.endpoint.key);
        continue;
      }
      try {
        this.running.set(d.endpoint.key, await this.start({ host: d.endpoint.host, port: d.endpoint.port }, d.ctx));
        started.push(d.endpoint.key);
      } catch (err) {
        failed.push({ key: d.endpoint.key, error: bindError(d.endpoint.host, d.endpoint.port, err) });
      }
    }
    return { started, updated, closed, failed };
  }

  /** Close every listener. */
  async closeAll(close: { graceful: boolean; timeoutMs: number }): Promise<void> {
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.allSettled(all.map((l) => l.close(close)));
  }
}
