/**
 * run.ts — `npm run bench`: runs every benchmark module in order. Each module
 * exports `async function bench(): Promise<void>` and prints one line per
 * figure. Modules are imported one at a time so one failing module is
 * reported and the others still run.
 *
 * SEALPOST_BENCH_QUICK=1 makes every module that knows it run fewer messages
 * (relay: 3,000 instead of 20,000), so a whole run takes a few minutes;
 * SEALPOST_BENCH_ONLY=relay,relay-tls runs only the named modules.
 *
 * Not here: thresholds or pass/fail decisions (these are figures to read).
 */
const MODULES: ReadonlyArray<readonly [string, () => Promise<{ bench: () => Promise<void> }>]> = [
  ['maps', () => import('./maps.ts')],
  ['regexp', () => import('./regexp.ts')],
  ['queue', () => import('./queue.ts')],
  ['queue-commit', () => import('./queue-commit.ts')],
  ['intake', () => import('./intake.ts')],
  ['intake-large', () => import('./intake-large.ts')],
  ['large', () => import('./large.ts')],
  ['relay', () => import('./relay.ts')],
  ['relay-tls', () => import('./relay-tls.ts')],
  ['tlsrpt', () => import('./tlsrpt.ts')],
  ['policy-sources', () => import('./policy-sources.ts')],
  ['relay-sts', () => import('./relay-sts.ts')],
  ['relay-workers', () => import('./relay-workers.ts')],
  ['observe', () => import('./observe.ts')],
];

let failed = 0;
const only = (process.env.SEALPOST_BENCH_ONLY ?? '').split(',').filter(Boolean);
for (const [name, load] of MODULES) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stdout.write(`== ${name}\n`);
  try {
    const mod = await load();
    await mod.bench();
  } catch (err) {
    failed++;
    process.stdout.write(`bench ${name} failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
