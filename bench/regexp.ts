/**
 * regexp.ts (bench) — how fast a regexp: table answers, evaluated the way
 * Postfix does it: a linear scan, first match wins.
 *
 * Contract: `bench()` builds a 100,000-rule table (an unrealistic upper bound:
 * every lookup that matches late or never runs every rule) and a realistic
 * 1,000-rule table, then prints one line per figure: load time, the first
 * full scan (V8 compiles each RegExp lazily), and lookups/s for a key that
 * matches the first rule, the last rule, and no rule.
 *
 * Not here: file I/O (tables are built in memory) or the pcre: dialect (same
 * evaluation loop; only the translation differs).
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { buildRules, evaluate, logicalLines, parseMatchRule } from '../src/maps/pattern-table.ts';
import type { Rule } from '../src/maps/pattern-table.ts';
import { REGEXP_DIALECT } from '../src/maps/regexp.ts';

/** A table like a large access or transport map: one anchored rule per domain. */
function tableText(rules: number): string {
  const lines: string[] = [];
  for (let i = 0; i < rules; i++) lines.push(`/^(.*)@host${i}\\.example\\.com$/ smtp:[relay${i % 10}.example.net] $1`);
  return lines.join('\n') + '\n';
}

function build(rules: number): { rules: Rule[]; ms: number } {
  const text = tableText(rules);
  const t0 = performance.now();
  const parsed = buildRules(logicalLines(text, 'bench.re'), 'bench.re', 'regexp', parseMatchRule(REGEXP_DIALECT), () => {});
  return { rules: parsed, ms: performance.now() - t0 };
}

/** Lookups per second for one key, over about `budgetMs` of wall time. */
function rate(rules: readonly Rule[], key: string, budgetMs: number): number {
  let n = 0;
  const t0 = performance.now();
  let elapsed = 0;
  do {
    evaluate(rules, key);
    n++;
    elapsed = performance.now() - t0;
  } while (elapsed < budgetMs);
  return (n * 1000) / elapsed;
}

function fmt(x: number): string {
  return x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(1);
}

export async function bench(): Promise<void> {
  for (const size of [1_000, 100_000]) {
    const { rules, ms } = build(size);
    const label = `regexp ${size.toLocaleString('en-US')} rules`;
    console.log(`${label}: load ${ms.toFixed(0)} ms (${fmt((size * 1000) / ms)} rules/s)`);
    // V8 compiles a RegExp on its first exec: the first full scan pays for all of them.
    const t0 = performance.now();
    evaluate(rules, 'warm-up@nowhere.invalid');
    console.log(`${label}: first full scan (compiles every pattern) ${(performance.now() - t0).toFixed(0)} ms`);
    const cases: [string, string][] = [
      ['early match (rule 1)', 'user@host0.example.com'],
      [`late match (rule ${size})`, `user@host${size - 1}.example.com`],
      ['no match', 'user@elsewhere.example.org'],
    ];
    for (const [what, key] of cases) {
      if (evaluate(rules, key) === undefined && what !== 'no match') throw new Error(`bench table does not match ${key}`);
      console.log(`${label}: ${what}: ${fmt(rate(rules, key, 300))} lookups/s`);
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await bench();
}
