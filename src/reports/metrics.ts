/**
 * metrics.ts — sealpost's Prometheus metrics (prom-client): a subscriber of
 * the delivery event stream (events.ts), the hooks of observe-hooks.ts, and a
 * queue gauge read at scrape time. The HTTP listener (http/server.ts) serves
 * `registry.metrics()` at /metrics.
 *
 * Contract (Prometheus naming conventions: https://prometheus.io/docs/practices/naming/):
 * - Every name starts with `sealpost_`; counters end in `_total`; durations
 *   are `_seconds` histograms; ages are seconds. The process_* and nodejs_*
 *   metrics of prom-client's default collectors come along unprefixed, as
 *   every Node exporter has them.
 * - Label values come from closed vocabularies (statuses, TLS levels, trust
 *   words, policy sources, RFC 8460 result types, queue names) or are
 *   sanitised and capped: a transport/service name is a master.cf name; a TLS
 *   protocol outside `SSLv3`/`TLSv1`..`TLSv1.3` becomes `other`. No label ever
 *   holds a recipient, a sender or a queue ID.
 * - Destinations (the recipient's domain) are labelled only in the
 *   `sealpost_destination_*` metrics, and only for the domains the postmaster
 *   lists (`sealpost_metrics_destinations`: `example.com` or `.example.com`
 *   for its subdomains) plus the first `sealpost_metrics_destination_limit`
 *   other domains seen since start (on a relay the busiest appear first); every
 *   further domain is counted under `other`. Counters never move between labels.
 * - Message-level counts follow a message by queue ID while this process
 *   sees it: `messages_deferred_total` and `messages_bounced_total` count a
 *   message once however many recipients or attempts; `messages_delivered_total`
 *   counts a removal after delivery where no recipient bounced. The map is
 *   capped (`trackLimit`), so memory stays bounded on a huge deferred queue.
 * - The subscriber does no I/O and allocates little: the mail path never waits.
 *
 * Not here: the listener, authentication and TLS (http/), the queue directory
 * walk (queue-gauge.ts), configuration parsing (observe.ts).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TlsSessionRecord } from '../delivery/outcome.ts';
import type { DeliveryEvent, RecipientOutcomeEvent, Subscriber } from './events.ts';
import type { ObservabilityHooks } from './observe-hooks.ts';
import type { QueueGauge } from './queue-gauge.ts';
import { MESSAGE_QUEUES } from '../queue/spool.ts';
import { recipientDomain } from './posture.ts';

export interface MetricsOptions {
  /** Domains always labelled (`example.com`, or `.example.com` for every subdomain). */
  readonly destinations?: readonly string[];
  /** How many other domains get a label of their own before `other` (default 20). */
  readonly destinationLimit?: number;
  readonly queueGauge?: QueueGauge;
  readonly version?: string;
  /** process_* / nodejs_* collectors (default true; off in tests that compare exact output). */
  readonly defaultMetrics?: boolean;
  readonly now?: () => number;
  /** Messages followed at once for the message-level counters (default 500 000). */
  readonly trackLimit?: number;
}

/** Arrival → delivered, from seconds to the 5-day default maximal_queue_lifetime. */
const LATENCY_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86400, 5 * 86400];
const DNS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const FETCH_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A master.cf-style name as a label value; anything else is `other`. */
export function nameLabel(s: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/.test(s) ? s : 'other';
}

export function protocolLabel(p: string | undefined): string {
  if (p === undefined) return 'none';
  return /^(SSLv3|TLSv1|TLSv1\.[0-3])$/.test(p) ? p : 'other';
}

/** Decides which destination gets a label of its own (see the header). */
export class DestinationLabels {
  private readonly exact = new Set<string>();
  private readonly parents: string[] = [];
  private readonly admitted = new Set<string>();

  constructor(
    listed: readonly string[],
    private readonly limit: number,
  ) {
    for (const d of listed) {
      const l = d.toLowerCase();
      if (l.startsWith('.')) this.parents.push(l);
      else this.exact.add(l);
    }
  }

  label(domain: string): string {
    if (domain === '' || !/^[a-z0-9_.-]{1,253}$/.test(domain)) return 'other';
    if (this.exact.has(domain) || this.admitted.has(domain)) return domain;
    for (const p of this.parents) if (domain.endsWith(p)) return domain;
    if (this.admitted.size < this.limit) {
      this.admitted.add(domain);
      return domain;
    }
    return 'other';
  }
}

function trustLabel(s: TlsSessionRecord | undefined): string {
  return s?.tls ? s.tls.trust.toLowerCase() : 'none';
}

/**
 * A labelled counter as the mail path increments it: a Map keyed by the label
 * values, one string and one lookup per increment. Its prom-client Counter
 * receives the increments at scrape time (`collect`): prom-client's own
 * `inc()` hashes and validates the label object on every call (about 2 µs,
 * a dozen calls per relayed message).
 */
class Tally {
  private readonly series = new Map<string, { readonly labels: Record<string, string>; pending: number }>();
  private readonly counter: Counter<string>;

  constructor(name: string, help: string, private readonly labelNames: readonly string[], registers: Registry[]) {
    const flush = (): void => this.flush();
    this.counter = new Counter({ name, help, labelNames: [...labelNames], registers, collect: flush });
  }

  inc(labels?: Readonly<Record<string, string>>): void {
    let key = '';
    if (labels) for (const n of this.labelNames) key += `${labels[n]}\u0000`;
    const s = this.series.get(key);
    if (s) s.pending++;
    else this.series.set(key, { labels: { ...labels }, pending: 1 });
  }

  private flush(): void {
    for (const s of this.series.values()) {
      if (s.pending === 0) continue;
      if (this.labelNames.length === 0) this.counter.inc(s.pending);
      else this.counter.inc(s.labels, s.pending);
      s.pending = 0;
    }
  }
}

interface Tracked {
  deferred: boolean;
  bounced: boolean;
}

export class SealpostMetrics {
  readonly registry = new Registry();
  private readonly labels: DestinationLabels;
  private readonly tracked = new Map<string, Tracked>();
  private readonly trackLimit: number;
  private readonly c;
  /** Sessions of the delivery being published, and those its outcomes said ran on a cached connection. */
  private pendingSessions: TlsSessionRecord[] = [];
  /** Inbound connections open now, by service label. */
  private readonly openConnections = new Map<string, number>();
  private readonly reusedSessions = new WeakSet<TlsSessionRecord>();
  readonly hooks: ObservabilityHooks;

  constructor(opts: MetricsOptions = {}) {
    const r = [this.registry];
    this.labels = new DestinationLabels(opts.destinations ?? [], opts.destinationLimit ?? 20);
    this.trackLimit = opts.trackLimit ?? 500_000;
    const counter = (name: string, help: string, labelNames: string[] = []) => new Tally(name, help, labelNames, r);
    const histogram = (name: string, help: string, buckets: number[], labelNames: string[] = []) => new Histogram({ name, help, buckets, labelNames, registers: r });
    this.c = {
      received: counter('sealpost_messages_received_total', 'Messages accepted into the queue, by origin (smtpd, submission, pickup, bounce)', ['origin']),
      delivered: counter('sealpost_messages_delivered_total', 'Messages removed from the queue after delivery with no bounced recipient'),
      deferredMsgs: counter('sealpost_messages_deferred_total', 'Messages that had at least one recipient deferred (counted once per message)'),
      bouncedMsgs: counter('sealpost_messages_bounced_total', 'Messages that had at least one recipient bounced (counted once per message)'),
      removed: counter('sealpost_messages_removed_total', 'Messages that left the queue, by reason (delivered, expired, deleted)', ['reason']),
      recipients: counter('sealpost_recipients_total', 'Recipient delivery outcomes, by status (sent, deferred, bounced) and master.cf transport', ['status', 'transport']),
      latency: histogram('sealpost_delivery_latency_seconds', 'Time from message arrival to the recipient\'s successful delivery', LATENCY_BUCKETS, ['transport']),
      sessions: counter(
        'sealpost_tls_sessions_total',
        'Outbound SMTP sessions (and decisions not to connect), by TLS level, trust, protocol, policy source and result',
        ['level', 'trust', 'protocol', 'policy_source', 'result'],
      ),
      failures: counter('sealpost_tls_failures_total', 'TLS failures by RFC 8460 result type and policy type; enforced=no under MTA-STS testing', ['result_type', 'policy_type', 'enforced']),
      connOut: counter('sealpost_smtp_connections_out_total', 'New outbound SMTP connections (reused connections are not counted)'),
      destRcpt: counter('sealpost_destination_recipients_total', 'Recipient outcomes per destination domain (listed or first seen; others are "other")', ['destination', 'status']),
      destTls: counter('sealpost_destination_tls_sessions_total', 'Outbound sessions per destination domain and TLS trust', ['destination', 'trust']),
      dnsLookups: counter('sealpost_dns_lookups_total', 'DNS lookups by record type and result', ['type', 'result']),
      dnsLatency: histogram('sealpost_dns_lookup_duration_seconds', 'DNS lookup duration by record type', DNS_BUCKETS, ['type']),
      stsCache: counter('sealpost_mta_sts_cache_lookups_total', 'MTA-STS policy cache lookups by result (hit, miss, stale, refreshed)', ['result']),
      stsFetch: counter('sealpost_mta_sts_policy_fetches_total', 'MTA-STS policy fetches by result', ['result']),
      stsFetchLatency: histogram('sealpost_mta_sts_policy_fetch_duration_seconds', 'MTA-STS policy fetch duration', FETCH_BUCKETS),
      stsCached: new Gauge({ name: 'sealpost_mta_sts_cached_policies', help: 'MTA-STS policies in the cache', registers: r }),
      rptGenerated: counter('sealpost_tlsrpt_reports_generated_total', 'TLS-RPT aggregate reports generated (one per policy domain and day)'),
      rptDelivered: counter('sealpost_tlsrpt_reports_delivered_total', 'TLS-RPT reports handed to their rua destination, by method and result', ['method', 'result']),
      connIn: counter('sealpost_smtp_connections_in_total', 'Inbound SMTP connections by master.cf service', ['service']),
      openIn: new Gauge({
        name: 'sealpost_smtp_connections_in_open', help: 'Inbound SMTP connections open now, by master.cf service', labelNames: ['service'], registers: r,
        // Counted in a Map as connections come and go, handed over at scrape time (see Tally).
        collect: () => {
          for (const [service, n] of this.openConnections) this.c.openIn.set({ service }, n);
        },
      }),
    };
    new Gauge({ name: 'sealpost_build_info', help: 'The running sealpost version (value 1)', labelNames: ['version'], registers: r }).set({ version: opts.version ?? 'unknown' }, 1);
    if (opts.queueGauge) this.queueMetrics(opts.queueGauge, opts.now ?? Date.now);
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry });
      // Gauges that prom-client names with `_total`, which promtool's lint rejects (counters only).
      for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    }
    this.hooks = this.makeHooks();
  }

  /** The delivery-event subscriber. */
  readonly subscriber: Subscriber = (e: DeliveryEvent) => {
    switch (e.kind) {
      case 'received':
        this.c.received.inc({ origin: nameLabel(e.origin) });
        return;
      case 'outcome':
        this.outcome(e);
        return;
      case 'tls-session':
        this.session(e.record);
        return;
      case 'removed':
        this.removed(e.queueId, e.reason);
        return;
    }
  };

  private track(queueId: string): Tracked {
    let t = this.tracked.get(queueId);
    if (!t) {
      if (this.tracked.size >= this.trackLimit) this.tracked.delete(this.tracked.keys().next().value!);
      t = { deferred: false, bounced: false };
      this.tracked.set(queueId, t);
    }
    return t;
  }

  private outcome(e: RecipientOutcomeEvent): void {
    if (e.session && e.connUse !== undefined && e.connUse >= 2) this.reusedSessions.add(e.session);
    const transport = nameLabel(e.transport);
    this.c.recipients.inc({ status: e.status, transport });
    this.c.destRcpt.inc({ destination: this.labels.label(recipientDomain(e.recipient)), status: e.status });
    if (e.status === 'sent') {
      this.c.latency.observe({ transport }, Math.max(0, (e.time - e.arrivalTime) / 1000));
      return;
    }
    const t = this.track(e.queueId);
    if (e.status === 'deferred' && !t.deferred) {
      t.deferred = true;
      this.c.deferredMsgs.inc();
    } else if (e.status === 'bounced' && !t.bounced) {
      t.bounced = true;
      this.c.bouncedMsgs.inc();
    }
  }

  private session(s: TlsSessionRecord): void {
    this.c.sessions.inc({
      level: s.policy.level,
      trust: trustLabel(s),
      protocol: protocolLabel(s.tls?.protocol),
      policy_source: s.policy.source,
      result: s.result.kind,
    });
    if (s.result.kind === 'failure') {
      this.c.failures.inc({ result_type: s.result.type, policy_type: s.policy.type, enforced: s.result.enforced ? 'yes' : 'no' });
    }
    this.connectionOut(s);
    this.c.destTls.inc({ destination: this.labels.label(s.policy.domain.toLowerCase()), trust: trustLabel(s) });
  }

  /**
   * A session that read a greeting or shook hands connected — unless it ran on
   * a cached connection: `tls.reused` says so for TLS, the outcomes' `connUse`
   * (≥ 2, Postfix's conn_use) for plaintext. The queue manager publishes a
   * delivery's sessions and then its outcomes in one synchronous batch, so the
   * sessions are judged in a microtask, after their outcomes.
   */
  private connectionOut(s: TlsSessionRecord): void {
    if ((s.server.helo === undefined && s.tls === undefined) || s.tls?.reused) return;
    this.pendingSessions.push(s);
    if (this.pendingSessions.length === 1) queueMicrotask(() => this.countConnections());
  }

  private countConnections(): void {
    for (const s of this.pendingSessions) if (!this.reusedSessions.has(s)) this.c.connOut.inc();
    this.pendingSessions = [];
  }

  private removed(queueId: string, reason: 'delivered' | 'expired' | 'deleted'): void {
    this.c.removed.inc({ reason });
    const t = this.tracked.get(queueId);
    this.tracked.delete(queueId);
    if (reason === 'delivered' && !t?.bounced) this.c.delivered.inc();
  }

  private queueMetrics(gauge: QueueGauge, now: () => number): void {
    let pending: Promise<void> | undefined;
    // One spool read per scrape serves both gauges (prom-client collects each in turn).
    const refresh = (): Promise<void> =>
      (pending ??= gauge
        .read()
        .then((figures) => {
          const t = now();
          for (const q of MESSAGE_QUEUES) {
            const f = figures[q];
            size.set({ queue: q }, f.messages);
            age.set({ queue: q }, f.oldest === undefined ? 0 : Math.max(0, (t - f.oldest) / 1000));
          }
        })
        .finally(() => {
          setImmediate(() => (pending = undefined));
        }));
    const size = new Gauge({ name: 'sealpost_queue_messages', help: 'Messages in each queue', labelNames: ['queue'], registers: [this.registry], collect: refresh });
    const age = new Gauge({
      name: 'sealpost_queue_oldest_message_age_seconds',
      help: 'Age of the oldest queue file in each queue (0 when empty)',
      labelNames: ['queue'],
      registers: [this.registry],
      collect: refresh,
    });
  }

  private makeHooks(): ObservabilityHooks {
    const c = this.c;
    return {
      dns: {
        lookup: (type, result, seconds) => {
          c.dnsLookups.inc({ type, result });
          c.dnsLatency.observe({ type }, seconds);
        },
      },
      mtaSts: {
        cacheLookup: (result) => c.stsCache.inc({ result }),
        policyFetch: (result, seconds) => {
          c.stsFetch.inc({ result });
          c.stsFetchLatency.observe(seconds);
        },
        cachedPolicies: (n) => c.stsCached.set(n),
      },
      tlsRpt: {
        reportGenerated: () => c.rptGenerated.inc(),
        reportDelivered: (method, ok) => c.rptDelivered.inc({ method, result: ok ? 'ok' : 'error' }),
      },
      smtpd: {
        connectionOpened: (service) => {
          const label = nameLabel(service);
          const openNow = this.openConnections;
          c.connIn.inc({ service: label });
          openNow.set(label, (openNow.get(label) ?? 0) + 1);
          let open = true;
          return () => {
            if (open) openNow.set(label, (openNow.get(label) ?? 1) - 1);
            open = false;
          };
        },
      },
    };
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  async text(): Promise<string> {
    // Connections are counted in a microtask after their delivery's outcomes (connectionOut):
    // let it run before the tallies are handed over.
    await Promise.resolve();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
