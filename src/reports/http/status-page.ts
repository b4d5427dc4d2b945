/**
 * status-page.ts — the read-only status page as server-rendered HTML: the
 * queues, the waiting mail by destination and age (qshape's table), the
 * current deferrals by destination and reason with links to each
 * destination's `tls explain`, and the TLS posture table with its picture.
 *
 * Contract (pure: data in, HTML out):
 * - Works without JavaScript and loads nothing else: the CSS is inline, the
 *   posture picture is the same SVG as `sealpost tls report --svg`, inlined.
 * - Every value from mail (domains, reasons, recipients) is HTML-escaped.
 * - Stable hooks for tests and scrapers: tables have ids (`queue-counts`,
 *   `queue-shape`, `deferrals`, `posture`) and rows carry `data-domain` /
 *   `data-queue`; numbers are plain text in their cells.
 *
 * Not here: reading the queue or the store (queue-snapshot.ts, posture.ts),
 * HTTP (server.ts).
 */
import { MESSAGE_QUEUES, type MessageQueue } from '../../queue/spool.ts';
import type { PostureWindow } from '../posture.ts';
import { postureRows, renderPostureSvg, share, type PostureRow } from '../posture-render.ts';
import type { PostureCounts } from '../posture.ts';
import type { QueueFigures } from '../queue-gauge.ts';
import type { QueueSnapshot } from '../queue-snapshot.ts';

export interface StatusPageData {
  readonly hostname: string;
  readonly version: string;
  readonly now: number;
  readonly startedAt: number;
  readonly queues: Readonly<Record<MessageQueue, QueueFigures>>;
  readonly snapshot: QueueSnapshot;
  readonly posture: ReadonlyMap<string, PostureCounts>;
  readonly window: PostureWindow;
  readonly windowLabel: string;
  readonly metrics: boolean;
}

export function html(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** `45s`, `12m`, `3h 05m`, `2d 04h`. */
export function age(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${String(h % 24).padStart(2, '0')}h`;
}

function utc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + ' UTC';
}

const STYLE = `
body{font-family:sans-serif;margin:1.5em;color:#212121;max-width:1200px}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}th,td{padding:.25em .6em;border-bottom:1px solid #eee;text-align:right}
th{background:#f5f5f5}td.name,th.name{text-align:left}td.reason{text-align:left;max-width:40em}
tr.total td{font-weight:bold}.meta{color:#616161;font-size:.9em}nav a{margin-right:1em}
pre{background:#f5f5f5;padding:1em;overflow:auto}.note{color:#8e24aa}`;

function queueTable(d: StatusPageData): string {
  const rows = MESSAGE_QUEUES.map((q) => {
    const f = d.queues[q];
    // The arrival time read from the envelopes when the snapshot has it, else the file's age.
    const t = d.snapshot.oldestArrival[q] ?? f.oldest;
    const oldest = f.messages === 0 || t === undefined ? '-' : age(d.now - t);
    return `<tr data-queue="${q}"><td class="name">${q}</td><td>${f.messages}</td><td>${oldest}</td></tr>`;
  });
  return `<table id="queue-counts"><tr><th class="name">queue</th><th>messages</th><th>oldest</th></tr>${rows.join('')}</table>`;
}

function shapeTable(s: QueueSnapshot): string {
  const heads = s.shape.headings();
  const head = `<tr><th class="name">destination</th>${heads.map((h, i) => `<th title="${i === 0 ? 'total' : `age up to ${h} minutes`}">${html(h)}</th>`).join('')}</tr>`;
  const rows = s.shape.rows().slice(0, 51).map((r) => {
    const cls = r.domain === 'TOTAL' ? ' class="total"' : '';
    return `<tr${cls} data-domain="${html(r.domain)}"><td class="name">${html(r.domain)}</td>${r.counts.map((c) => `<td>${c}</td>`).join('')}</tr>`;
  });
  const note = s.truncated ? `<p class="note">Only the first ${s.scanned} messages were read.</p>` : '';
  return `<table id="queue-shape">${head}${rows.join('')}</table>${note}`;
}

function explainLink(domain: string): string {
  return `<a href="/explain?domain=${encodeURIComponent(domain)}">explain</a>`;
}

function deferralTable(d: StatusPageData): string {
  const list = d.snapshot.deferrals;
  if (list.length === 0) return '<p id="deferrals-none">No deferred mail.</p>';
  const rows = list.slice(0, 200).map(
    (g) =>
      `<tr data-domain="${html(g.domain)}"><td class="name">${html(g.domain || '(local)')}</td><td class="reason">${html(g.reason)}</td>` +
      `<td>${g.recipients}</td><td>${g.messages.size}</td><td>${age(d.now - g.oldestArrival)}</td><td>${g.domain ? explainLink(g.domain) : ''}</td></tr>`,
  );
  return `<table id="deferrals"><tr><th class="name">destination</th><th class="name">reason</th><th>recipients</th><th>messages</th><th>oldest</th><th></th></tr>${rows.join('')}</table>`;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

function postureRow(r: PostureRow): string {
  const c = r.counts;
  const cls = r.destination === 'TOTAL' ? ' class="total"' : '';
  const cells = [
    c.messages,
    c.recipients,
    c.outcomes,
    pct(share(c, ['verified-table', 'verified-dane', 'verified-mta-sts', 'verified-default', 'verified-other'])),
    pct(share(c, ['trusted', 'untrusted', 'anonymous'])),
    pct(share(c, ['plaintext'])),
    pct(share(c, ['deferred-tls', 'bounced-tls'])),
    pct(share(c, ['deferred-other', 'bounced-other'])),
  ];
  const link = r.destination === 'TOTAL' || r.destination === '(local)' ? '' : explainLink(r.destination);
  return `<tr${cls} data-domain="${html(r.destination)}"><td class="name">${html(r.destination)}</td>${cells.map((x) => `<td>${x}</td>`).join('')}<td>${link}</td></tr>`;
}

function postureSection(d: StatusPageData): string {
  const rows = postureRows(d.posture);
  const head =
    '<tr><th class="name">destination</th><th>messages</th><th>recipients</th><th>outcomes</th><th>verified TLS</th><th>unverified TLS</th>' +
    '<th>plaintext</th><th>TLS deferred/bounced</th><th>other failures</th><th></th></tr>';
  const svg = renderPostureSvg(rows, d.window).replace(/^<\?xml[^>]*>\n/, '');
  return `<table id="posture">${head}${rows.slice(0, 51).map(postureRow).join('')}</table><figure id="posture-picture">${svg}</figure>`;
}

export function renderStatusPage(d: StatusPageData): string {
  const metrics = d.metrics ? '<a href="/metrics">metrics</a>' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>sealpost status: ${html(d.hostname)}</title><style>${STYLE}</style></head>
<body>
<h1>sealpost on ${html(d.hostname)}</h1>
<p class="meta">version ${html(d.version)} · page generated ${utc(d.now)} · running since ${utc(d.startedAt)} · read-only</p>
<nav><a href="#queues">queues</a><a href="#waiting">waiting mail</a><a href="#deferred">deferrals</a><a href="#tls">TLS posture</a>${metrics}</nav>
<h2 id="queues">Queues</h2>
${queueTable(d)}
<h2 id="waiting">Waiting mail by destination and age in minutes (qshape: incoming, active, deferred)</h2>
${shapeTable(d.snapshot)}
<h2 id="deferred">Current deferrals by destination and reason</h2>
${deferralTable(d)}
<h2 id="tls">TLS posture, ${html(d.windowLabel)}</h2>
${postureSection(d)}
</body></html>
`;
}

export function renderExplainPage(domain: string, recipient: string, lines: readonly string[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tls explain ${html(recipient)}</title><style>${STYLE}</style></head>
<body><p><a href="/">back to the status page</a></p>
<h1>TLS policy for ${html(domain)}</h1>
<p class="meta">sealpost tls explain ${html(recipient)}</p>
<pre id="explain">${html(lines.join('\n'))}</pre>
</body></html>
`;
}
