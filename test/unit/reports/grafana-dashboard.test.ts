/**
 * grafana-dashboard.test.ts — docs/grafana-dashboard.json is valid JSON, its
 * panels are laid out on Grafana's 24-column grid, and every metric its
 * queries name is one that sealpost exports (histogram series by their base
 * name); every sealpost_* metric but the build info has a panel.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { SealpostMetrics } from '../../../src/reports/metrics.ts';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; refId: string }>;
}

const dash = JSON.parse(readFileSync('docs/grafana-dashboard.json', 'utf8')) as { title: string; uid: string; panels: Panel[] };

function exported(): Set<string> {
  const m = new SealpostMetrics({ queueGauge: { read: () => Promise.reject(new Error('not read')) } });
  return new Set(m.registry.getMetricsAsArray().map((x) => x.name));
}

test('the dashboard references only metrics sealpost exports', () => {
  const names = exported();
  const used = new Set<string>();
  for (const p of dash.panels) {
    for (const t of p.targets ?? []) {
      for (const [name] of t.expr.matchAll(/\b(?:sealpost|process|nodejs)_[a-z0-9_]+/g)) {
        const base = name.replace(/_(bucket|sum|count)$/, '');
        assert.ok(names.has(name) || names.has(base), `panel "${p.title}" uses ${name}, which sealpost does not export`);
        used.add(names.has(name) ? name : base);
      }
    }
  }
  const unused = [...names].filter((n) => n.startsWith('sealpost_') && n !== 'sealpost_build_info' && !used.has(n));
  assert.deepEqual(unused, [], 'every sealpost metric has a panel');
});

test('the dashboard is laid out on the 24-column grid with unique ids and a query per panel', () => {
  assert.equal(dash.uid, 'sealpost-overview');
  const ids = dash.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length);
  for (const p of dash.panels) {
    assert.ok(p.gridPos.x >= 0 && p.gridPos.x + p.gridPos.w <= 24, p.title);
    if (p.type !== 'row') assert.ok((p.targets ?? []).length > 0 && p.targets!.every((t) => t.expr.length > 0), p.title);
  }
});
