/**
 * posture-render.ts — the TLS posture report in three forms: an aligned text
 * table, JSON, and a self-contained SVG picture (one stacked bar per
 * destination) that a postmaster can attach to a compliance report.
 *
 * Contract (pure: counts in, text out):
 * - Rows: the TOTAL first, then destinations by outcomes (descending, then
 *   name). Shares are of outcomes (posture.ts: every sent, deferred or bounced
 *   recipient outcome) and add up to 100% across CATEGORIES.
 * - The SVG uses no script, no external font, image or stylesheet: generic
 *   `sans-serif`/`monospace` families, inline attributes. Each bar segment is a
 *   `<rect>` with `data-category` and `data-count`, its width exactly
 *   `count / outcomes * BAR_WIDTH` (rounded to 0.01 px), and a `<title>` tooltip.
 *   At most `maxBars` destinations get a bar; the rest are summed into one
 *   `(N other destinations)` bar.
 *
 * Not here: reading the store (posture.ts), options and files (cli/tls-report.ts).
 */
import { addCounts, CATEGORIES, emptyCounts, type Category, type PostureCounts, type PostureWindow } from './posture.ts';

export interface PostureRow {
  readonly destination: string;
  readonly counts: PostureCounts;
}

export const CATEGORY_LABELS: Readonly<Record<Category, string>> = {
  'verified-table': 'verified TLS, policy table',
  'verified-dane': 'verified TLS, DANE',
  'verified-mta-sts': 'verified TLS, MTA-STS',
  'verified-default': 'verified TLS, main.cf default',
  'verified-other': 'verified TLS, other source',
  trusted: 'TLS, trusted certificate (name not checked)',
  untrusted: 'TLS, untrusted certificate',
  anonymous: 'TLS, anonymous',
  plaintext: 'plaintext',
  'deferred-tls': 'deferred for a TLS reason',
  'bounced-tls': 'bounced for a TLS reason',
  'deferred-other': 'deferred, other reason',
  'bounced-other': 'bounced, other reason',
};

export const CATEGORY_COLORS: Readonly<Record<Category, string>> = {
  'verified-table': '#1b5e20',
  'verified-dane': '#00796b',
  'verified-mta-sts': '#43a047',
  'verified-default': '#9ccc65',
  'verified-other': '#c0ca33',
  trusted: '#e6ee9c',
  untrusted: '#ffd54f',
  anonymous: '#ffb74d',
  plaintext: '#e53935',
  'deferred-tls': '#8e24aa',
  'bounced-tls': '#4a148c',
  'deferred-other': '#b0bec5',
  'bounced-other': '#546e7a',
};

const VERIFIED: readonly Category[] = ['verified-table', 'verified-dane', 'verified-mta-sts', 'verified-default', 'verified-other'];

/** TOTAL first, then destinations (see the header). */
export function postureRows(byDomain: ReadonlyMap<string, PostureCounts>): PostureRow[] {
  const total = emptyCounts();
  const rows: PostureRow[] = [];
  for (const [d, c] of byDomain) {
    addCounts(total, c);
    rows.push({ destination: d === '' ? '(local)' : d, counts: c });
  }
  rows.sort((a, b) => b.counts.outcomes - a.counts.outcomes || (a.destination < b.destination ? -1 : 1));
  return [{ destination: 'TOTAL', counts: total }, ...rows];
}

export function share(c: PostureCounts, cats: readonly Category[]): number {
  if (c.outcomes === 0) return 0;
  return cats.reduce((n, k) => n + c.byCategory[k], 0) / c.outcomes;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

export function topReasons(c: PostureCounts, n: number): Array<{ reason: string; count: number }> {
  return Object.entries(c.reasons)
    .map(([reason, count]) => ({ reason, count }))
    .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1))
    .slice(0, n);
}

function utc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

function via(c: PostureCounts): string {
  const names: Array<[Category, string]> = [['verified-table', 'table'], ['verified-dane', 'dane'], ['verified-mta-sts', 'mta-sts'], ['verified-default', 'default'], ['verified-other', 'other']];
  const parts = names.filter(([k]) => c.byCategory[k] > 0).map(([k, n]) => `${n} ${c.byCategory[k]}`);
  return parts.length > 0 ? parts.join(', ') : '-';
}

const HEADINGS = ['DESTINATION', 'MSGS', 'RCPTS', 'OUTCOMES', 'VERIFIED', 'TRUSTED', 'UNTRUSTED', 'ANON', 'PLAIN', 'TLS-DEFER', 'TLS-BOUNCE', 'OTHER-FAIL', 'VERIFIED VIA'];

function textCells(r: PostureRow): string[] {
  const c = r.counts;
  return [
    r.destination,
    String(c.messages),
    String(c.recipients),
    String(c.outcomes),
    pct(share(c, VERIFIED)),
    pct(share(c, ['trusted'])),
    pct(share(c, ['untrusted'])),
    pct(share(c, ['anonymous'])),
    pct(share(c, ['plaintext'])),
    pct(share(c, ['deferred-tls'])),
    pct(share(c, ['bounced-tls'])),
    pct(share(c, ['deferred-other', 'bounced-other'])),
    via(c),
  ];
}

/** The aligned text table, then the top reasons per destination. */
export function renderPostureText(rows: readonly PostureRow[], w: PostureWindow, reasons = 3): string {
  const table = [HEADINGS, ...rows.map(textCells)];
  const widths = HEADINGS.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === 0 || i === cells.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [`TLS posture from ${utc(w.from)} to ${utc(w.to)} UTC (shares are of recipient outcomes: sent, deferred or bounced)`, ''];
  out.push(...table.map(line));
  const withReasons = rows.slice(1).filter((r) => Object.keys(r.counts.reasons).length > 0);
  if (withReasons.length > 0) {
    out.push('', 'top reasons (deferred or bounced):');
    const dw = Math.max(...withReasons.map((r) => r.destination.length));
    for (const r of withReasons) {
      topReasons(r.counts, reasons).forEach((t, i) => out.push(`  ${(i === 0 ? r.destination : '').padEnd(dw)}  ${String(t.count).padStart(6)}  ${t.reason}`));
    }
  }
  return out.join('\n') + '\n';
}

export function postureJson(rows: readonly PostureRow[], w: PostureWindow, reasons = 5): object {
  const one = (r: PostureRow) => ({
    destination: r.destination,
    messages: r.counts.messages,
    recipients: r.counts.recipients,
    outcomes: r.counts.outcomes,
    counts: { ...r.counts.byCategory },
    shares: Object.fromEntries(CATEGORIES.map((k) => [k, r.counts.outcomes ? r.counts.byCategory[k] / r.counts.outcomes : 0])),
    verifiedShare: share(r.counts, VERIFIED),
    topReasons: topReasons(r.counts, reasons),
  });
  return { from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString(), unit: 'recipient outcome', total: one(rows[0]!), destinations: rows.slice(1).map(one) };
}

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

export const BAR_WIDTH = 560;
const LABEL_WIDTH = 210;
const ROW = 26;

/** At most `maxBars` rows after TOTAL; the rest summed. */
export function barRows(rows: readonly PostureRow[], maxBars: number): PostureRow[] {
  if (rows.length - 1 <= maxBars) return [...rows];
  const rest = emptyCounts();
  const tail = rows.slice(1 + maxBars);
  for (const r of tail) addCounts(rest, r.counts);
  return [...rows.slice(0, 1 + maxBars), { destination: `(${tail.length} other destinations)`, counts: rest }];
}

function barSvg(r: PostureRow, y: number): string[] {
  const out = [`<text x="${LABEL_WIDTH - 8}" y="${y + 15}" text-anchor="end" font-weight="${r.destination === 'TOTAL' ? 'bold' : 'normal'}">${xmlEscape(r.destination)}</text>`];
  out.push(`<rect x="${LABEL_WIDTH}" y="${y + 2}" width="${BAR_WIDTH}" height="${ROW - 8}" fill="#f5f5f5" stroke="#bdbdbd"/>`);
  let x = LABEL_WIDTH;
  for (const k of CATEGORIES) {
    const n = r.counts.byCategory[k];
    if (n === 0 || r.counts.outcomes === 0) continue;
    const width = Math.round((n / r.counts.outcomes) * BAR_WIDTH * 100) / 100;
    const tip = `${r.destination}: ${CATEGORY_LABELS[k]}: ${n} of ${r.counts.outcomes} (${pct(n / r.counts.outcomes)})`;
    out.push(`<rect class="seg" data-destination="${xmlEscape(r.destination)}" data-category="${k}" data-count="${n}" x="${x.toFixed(2)}" y="${y + 2}" width="${width.toFixed(2)}" height="${ROW - 8}" fill="${CATEGORY_COLORS[k]}"><title>${xmlEscape(tip)}</title></rect>`);
    x += width;
  }
  const v = pct(share(r.counts, VERIFIED));
  out.push(`<text x="${LABEL_WIDTH + BAR_WIDTH + 8}" y="${y + 15}">${r.counts.outcomes} · ${v} verified</text>`);
  return out;
}

function legendSvg(y: number): string[] {
  const out: string[] = [];
  CATEGORIES.forEach((k, i) => {
    const col = i % 3;
    const row = Math.floor(i / 3);
    const x = 16 + col * 300;
    const yy = y + row * 18;
    out.push(`<rect x="${x}" y="${yy}" width="12" height="12" fill="${CATEGORY_COLORS[k]}"/>`, `<text x="${x + 18}" y="${yy + 10}">${xmlEscape(CATEGORY_LABELS[k])}</text>`);
  });
  return out;
}

/** The stacked-bar picture (see the header). */
export function renderPostureSvg(rows: readonly PostureRow[], w: PostureWindow, opts: { maxBars?: number; title?: string } = {}): string {
  const bars = barRows(rows, opts.maxBars ?? 30);
  const legendRows = Math.ceil(CATEGORIES.length / 3);
  const top = 56 + legendRows * 18 + 10;
  const width = LABEL_WIDTH + BAR_WIDTH + 150;
  const height = top + bars.length * ROW + 16;
  const title = opts.title ?? 'Outgoing mail: TLS protection per destination';
  const body = [
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="16" y="24" font-size="16" font-weight="bold">${xmlEscape(title)}</text>`,
    `<text x="16" y="44">${xmlEscape(`${utc(w.from)} to ${utc(w.to)} UTC; bars are shares of recipient outcomes (sent, deferred, bounced)`)}</text>`,
    ...legendSvg(56),
    ...bars.flatMap((r, i) => barSvg(r, top + i * ROW)),
  ];
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" role="img">`,
    `<title>${xmlEscape(title)}</title>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
