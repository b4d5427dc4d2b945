/**
 * tls.ts — `sealpost tls SUBCOMMAND`: dispatches `explain` (tls-explain.ts),
 * `report` (tls-report.ts), `proof` (tls-proof.ts) and `sts` (tls-sts.ts,
 * the MTA-STS policy cache).
 *
 * Contract: the subcommand's main gets the arguments after the subcommand
 * name and `sealpost/tls-<sub>` as its program name, except `explain` and
 * anything unknown, which go to tls-explain.ts unchanged (it owns the usage
 * line of `sealpost tls explain`).
 *
 * Not here: any subcommand's options.
 */
import type { CommandContext } from './context.ts';

export async function main(ctx: CommandContext): Promise<number> {
  const sub = ctx.argv[0];
  if (sub === 'report') return (await import('./tls-report.ts')).main({ ...ctx, prog: 'sealpost/tls-report', argv: ctx.argv.slice(1) });
  if (sub === 'proof') return (await import('./tls-proof.ts')).main({ ...ctx, prog: 'sealpost/tls-proof', argv: ctx.argv.slice(1) });
  if (sub === 'sts') return (await import('./tls-sts.ts')).main({ ...ctx, prog: 'sealpost/tls-sts', argv: ctx.argv.slice(1) });
  return (await import('./tls-explain.ts')).main(ctx);
}
