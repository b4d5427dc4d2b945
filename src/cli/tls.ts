/**
 * tls.ts — `sealpost tls SUBCOMMAND`: dispatches `explain` (tls-explain.ts),
 * `report` (tls-report.ts), `proof` (tls-proof.ts) and `sts` (tls-sts.ts,
 * the MTA-STS policy cache).
 *
 * Contract: `-c config_dir` may come before the subcommand. The subcommand's
 * main gets the arguments after the subcommand
 * name and `sealpost/tls-<sub>` as its program name, except `explain` and
 * anything unknown, which go to tls-explain.ts unchanged (it owns the usage
 * line of `sealpost tls explain`).
 *
 * Not here: any subcommand's options.
 */
import type { CommandContext } from './context.ts';

const SUBCOMMANDS: readonly string[] = ['explain', 'report', 'proof', 'sts'];

async function usageOf(sub: string): Promise<string> {
  if (sub === 'report') return (await import('./tls-report.ts')).USAGE;
  if (sub === 'proof') return (await import('./tls-proof.ts')).USAGE;
  if (sub === 'sts') return (await import('./tls-sts.ts')).USAGE;
  return (await import('./tls-explain.ts')).USAGE;
}

export async function main(ctx0: CommandContext): Promise<number> {
  // `sealpost tls -c DIR SUB ...` (the -c of the command, before the subcommand) = `sealpost tls SUB -c DIR ...`.
  const a = ctx0.argv;
  const ctx = a[0] === '-c' && a.length >= 3 ? { ...ctx0, argv: [a[2]!, '-c', a[1]!, ...a.slice(3)] } : ctx0;
  const sub = ctx.argv[0];
  // `sealpost tls SUB --help`: that subcommand's usage, exit 0 (as `sealpost COMMAND --help`).
  const helpAt = ctx.argv[1] === '-c' ? 3 : 1;
  if (ctx.argv[helpAt] === '--help' && sub !== undefined && SUBCOMMANDS.includes(sub)) {
    ctx.stdout.write(`${await usageOf(sub)}\n`);
    return 0;
  }
  if (sub === 'report') return (await import('./tls-report.ts')).main({ ...ctx, prog: 'sealpost/tls-report', argv: ctx.argv.slice(1) });
  if (sub === 'proof') return (await import('./tls-proof.ts')).main({ ...ctx, prog: 'sealpost/tls-proof', argv: ctx.argv.slice(1) });
  if (sub === 'sts') return (await import('./tls-sts.ts')).main({ ...ctx, prog: 'sealpost/tls-sts', argv: ctx.argv.slice(1) });
  return (await import('./tls-explain.ts')).main(ctx);
}
