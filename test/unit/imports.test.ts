/**
 * imports.test.ts — the module graph of src/ has no import cycle (type-only
 * imports and dynamic imports count: a cycle of types is a cycle of
 * concepts), and the layers keep their direction where the house review
 * asked: the TLS policy code imports no sockets, delivery does not reach up
 * into the daemon or the scheduler.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Relative imports of one file (static, `export ... from`, dynamic), as absolute paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  const re = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|^import\s+['"](\.[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) out.push(resolve(dirname(file), m[1] ?? m[2] ?? m[3]!));
  return out;
}

const graph = new Map(sources(SRC).map((f) => [f, importsOf(f)]));
const rel = (f: string) => relative(SRC, f);

test('the graph is read (sanity: known edges are seen)', () => {
  assert.ok(graph.size > 100);
  assert.ok(graph.get(join(SRC, 'delivery/smtp/agent.ts'))?.includes(join(SRC, 'delivery/smtp/attempt.ts')));
  assert.ok(graph.get(join(SRC, 'delivery/hosting/service-agent.ts'))?.includes(join(SRC, 'delivery/hosting/thread-pool.ts')), 'dynamic imports count');
});

test('no import cycle in src/', () => {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string): void => {
    state.set(f, 1);
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (!graph.has(d)) continue;
      if (state.get(d) === 1) cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' -> '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('layers: the TLS policy imports no sockets; delivery imports neither the daemon nor the scheduler', () => {
  const offenders: string[] = [];
  for (const [f, deps] of graph) {
    const r = rel(f);
    for (const d of deps) {
      const to = rel(d);
      if (r.startsWith('delivery/') && (to.startsWith('daemon/') || to.startsWith('scheduler/') || to.startsWith('cli/'))) offenders.push(`${r} -> ${to}`);
    }
    if (/^delivery\/tls\/(policy|combine|sources\/)/.test(r) && /from ['"]node:(net|tls)['"]/.test(readFileSync(f, 'utf8'))) offenders.push(`${r} imports a socket module`);
  }
  assert.deepEqual(offenders, []);
});
