/**
 * run.ts — `npm run bench`: runs every benchmark module in order. Each module
 * exports `async function bench(): Promise<void>` and prints one line per
 * figure. Modules are imported one at a time so one failing module is
 * reported and the others still run.
 *
 * Not here: thresholds or pass/fail decisions (these are figures to read).
 */
const MODULES: ReadonlyArray<readonly [string, () => Promise<{ bench: () => Promise<void> }>]> = [
  ['maps', () => import('./maps.ts')],
  ['regexp', () => import('./regexp.ts')],
  ['queue', () => import('./queue.ts')],
  ['intake', () => import('./intake.ts')],
  ['intake-large', () => import('./intake-large.ts')],
  ['large', () => import('./large.ts')],
  ['relay', () => import('./relay.ts')],
  ['relay-tls', () => import('./relay-tls.ts')],
  ['tlsrpt', () => import('./tlsrpt.ts')],
  ['policy-sources', () => import('./policy-sources.ts')],
  ['relay-sts', () => import('./relay-sts.ts')],
  ['observe', () => import('./observe.ts')],
];

let failed = 0;
for (const [name, load] of MODULES) {
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
