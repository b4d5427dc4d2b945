/**
 * relayhost-trap.ts — the relayhost trap (MISSION.md step 5) in one place:
 * an smtp_tls_policy_maps entry for a recipient domain (or a `.parent` of
 * it) that is never consulted, because the policy table is looked up by
 * next hop and mail for that domain goes to another next hop (the
 * relayhost, sender_dependent_relayhost_maps, a transport_maps or
 * default_transport next hop).
 *
 * Used by `sealpost check` / start / reload (daemon/check-tls.ts: one
 * warning per bare-domain entry, routing `postmaster@DOMAIN`) and by
 * `sealpost tls explain` (cli/tls-explain.ts: a warning per recipient, with
 * the fixes). Both ask the same two questions the delivery code answers:
 * the Router's route (scheduler/resolve.ts) and the entry the policy
 * engine's hop step (delivery/tls/policy.ts decideHop) finds for the domain
 * as if it were the next hop.
 *
 * Contract: `findRelayhostTrap()` reads tables, no network; it returns
 * undefined when a next hop of the route is the domain itself (the entry
 * applies), when no policy table is configured, or when the hop step finds
 * no entry (or fails to look: a lookup error is reported where the policy
 * is explained or delivered, not here). Warnings of the hop step are
 * dropped: the callers report policy-table problems themselves.
 *
 * Not here: the wording of the warnings and fixes (each caller's), routing
 * (resolve.ts), the policy semantics (delivery/tls/).
 */
import type { Config } from '../config/types.ts';
import { decideHop } from '../delivery/tls/policy.ts';
import type { TableEntryRef } from '../delivery/tls/sources/types.ts';
import type { TableSet } from '../maps/registry.ts';
import type { Route } from './resolve.ts';

export type DeliverRoute = Extract<Route, { kind: 'deliver' }>;

export interface RelayhostTrap {
  /** The recipient domain (lower case). */
  readonly domain: string;
  /** The policy entry the hop step finds for the domain, never consulted for its mail. */
  readonly entry: TableEntryRef;
  /** Where mail for the domain goes instead. */
  readonly nexthops: readonly string[];
  /** The setting that chose those next hops (nexthopSource()). */
  readonly via: string;
}

/** The smtp_tls_policy_maps entry the hop step finds for `nexthop`, if any. */
export async function policyEntryFor(config: Config, tables: TableSet, nexthop: string): Promise<TableEntryRef | undefined> {
  const decision = await decideHop({ config, openTable: (spec) => tables.get(spec), warn: () => undefined }, nexthop, { tlsRequiredNo: false, requireTls: false });
  const step = decision.trace.steps.find((s) => s.source === 'table');
  return step && (step.answer.kind === 'demand' || step.answer.kind === 'invalid') ? step.answer.tableEntry : undefined;
}

/** The trap for mail to `domain` routed as `route`, or undefined when there is none. */
export async function findRelayhostTrap(config: Config, tables: TableSet, domain: string, route: DeliverRoute): Promise<RelayhostTrap | undefined> {
  if (config.getList('smtp_tls_policy_maps').length === 0) return undefined;
  const d = domain.toLowerCase();
  if (route.nexthops.length === 0 || route.nexthops.some((n) => n.toLowerCase() === d)) return undefined;
  const entry = await policyEntryFor(config, tables, d);
  if (!entry) return undefined;
  return { domain: d, entry, nexthops: route.nexthops, via: nexthopSource(route) };
}

/** Which setting chose the next hop (from the Router's steps). */
export function nexthopSource(route: DeliverRoute): string {
  for (const s of route.steps) {
    if (s.what === 'transport_maps' && /->\s*"[^"]*:\s*\S/.test(s.detail)) return 'transport_maps';
  }
  for (const s of route.steps) {
    if (s.what === 'sender_dependent_relayhost_maps' && s.detail.includes('->')) return 'sender_dependent_relayhost_maps';
    if (s.what === 'relayhost') return 'relayhost';
  }
  for (const s of route.steps) {
    if ((s.what === 'default_transport' || s.what === 'relay_transport' || s.what === 'sender_dependent_default_transport_maps') && /:\s*\S/.test(s.detail)) return s.what;
  }
  return 'routing';
}
