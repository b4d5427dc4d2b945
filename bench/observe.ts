/**
 * observe.ts (bench) — what observability costs the relay (issue 13: under 5%).
 *
 * 1. Subscribers: the delivery events of one relayed message (received,
 *    tls-session, outcome, removed — shaped as the queue manager publishes
 *    them) through a real EventBus, with the metrics, the TLS posture store
 *    and the TLS proof store subscribed (their files written under a temp
 *    data_directory, flushes included), against the same events on a bus
 *    with no subscriber: CPU µs per message (process.cpuUsage).
 * 2. The real thing: bench/relay.ts's setup (smtp-source → sealpost start-fg
 *    → smtp-sink) with the daemon's own event flow (intake publishes
 *    `received`, the queue manager the rest), in interleaved rounds: a run
 *    (ABBA order) with observability off (`sealpost_tls_report_enable = no`,
 *    `sealpost_tls_proof_enable = no`, no listener), then one with it on (the
 *    listener, metrics, both stores, and /metrics scraped every 5 s, three
 *    times Prometheus' default rate): msgs/s and daemon CPU per message (from the moment
 *    the daemon listens; the start's CPU is printed apart), their medians per
 *    mode, the difference, and the load average before and after (the machine
 *    is shared). The last scrape's received/delivered counters are printed as a
 *    check that the events really flowed.
 *
 * SEALPOST_BENCH_OBSERVE_EVENTS (default 20000), SEALPOST_BENCH_OBSERVE_N
 * (relay messages per run, default 3000) and SEALPOST_BENCH_OBSERVE_ROUNDS
 * (default 6) scale it. Figures only, no thresholds.
 * Run alone: `node --import tsx bench/observe.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { EventBus } from '../src/reports/events.ts';
import { SealpostMetrics } from '../src/reports/metrics.ts';
import { PostureStore } from '../src/reports/posture.ts';
import { ProofStore } from '../src/reports/proof.ts';
import { publishMessage } from '../test/harness/delivery-events.ts';
import { freePort, procFigures, runSmtpSource, startSealpost, stopDaemon, waitDelivered, waitListening } from './relay.ts';

const DOMAINS = ['bank.example', 'hospital.example', 'agency.example', 'shop.example', 'news.example'];

function drive(bus: EventBus, n: number): void {
  const t = Date.now();
  for (let i = 0; i < n; i++) {
    const domain = DOMAINS[i % DOMAINS.length]!;
    publishMessage(bus, {
      queueId: `Q${i.toString(16).toUpperCase()}`,
      messageId: `${i}.bench@origin.test`,
      arrival: t + i,
      groups: [{ session: { domain, time: t + i + 50, source: i % 3 === 0 ? 'dane' : 'default', trust: i % 3 === 0 ? 'Verified' : 'Trusted' }, recipients: [`user${i % 100}@${domain}`], status: 'sent' }],
    });
  }
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** CPU µs per message: subscribers on minus an empty bus. */
async function subscriberCost(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-observe-'));
  try {
    drive(new EventBus(), Math.min(n, 2000)); // warm-up of the event construction itself
    let c0 = cpuMicros();
    drive(new EventBus(), n);
    const bare = cpuMicros() - c0;
    const bus = new EventBus();
    const metrics = new SealpostMetrics({ defaultMetrics: false });
    const posture = new PostureStore({ dataDir: dir, retentionMs: 400 * 86_400_000 });
    const proof = new ProofStore({ dataDir: dir, retentionMs: 400 * 86_400_000 });
    await posture.open();
    await proof.open();
    bus.subscribe(metrics.subscriber);
    bus.subscribe(posture.subscriber);
    bus.subscribe(proof.subscriber);
    c0 = cpuMicros();
    const chunk = 1000;
    for (let done = 0; done < n; done += chunk) {
      drive(bus, Math.min(chunk, n - done));
      await proof.flush(); // the store's 2 s flushes, compressed
    }
    await posture.close();
    await proof.close();
    await metrics.text(); // one scrape
    const on = cpuMicros() - c0;
    const perMsg = (on - bare) / n;
    process.stdout.write(`observe: subscribers (metrics + posture + proof stores): ${perMsg.toFixed(1)} µs CPU per message (${n} messages; bare bus ${(bare / n).toFixed(1)} µs)\n`);
    return perMsg;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface RelayFigures {
  readonly rate: number;
  readonly cpuPerMsg: number;
  /** The last scrape's received and delivered counters (observability on). */
  readonly scraped?: { readonly received: number; readonly delivered: number; readonly scrapes: number };
}

function counter(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) sum += Number(m[1]);
  return sum;
}

/** Scrape /metrics every 5 s (a Prometheus scraping three times as often as its default 15 s) until `stop` resolves. */
async function scraper(url: string, stop: Promise<void>): Promise<{ text: string; scrapes: number }> {
  let text = '';
  let scrapes = 0;
  let done = false;
  void stop.then(() => (done = true));
  while (!done) {
    try {
      text = await (await fetch(url)).text();
      scrapes++;
    } catch {
      // The listener is not up yet.
    }
    await Promise.race([new Promise((r) => setTimeout(r, 5000)), stop]);
  }
  text = await (await fetch(url)).text();
  return { text, scrapes: scrapes + 1 };
}

/** One relay run through a real daemon (smtp-source → sealpost start-fg → smtp-sink); `observe` turns metrics, listener and stores on. */
async function relayRun(n: number, observe: boolean): Promise<RelayFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-observe-relay-'));
  // Run as root, the daemon becomes mail_owner after binding: it must reach its configuration and queue.
  chmodSync(dir, 0o755);
  let sink: ChildProcess | undefined;
  let daemon: ChildProcess | undefined;
  try {
    const sinkPort = await freePort();
    const port = await freePort();
    const httpPort = await freePort();
    const extra = observe
      ? [`sealpost_http_listen = 127.0.0.1:${httpPort}`, 'sealpost_tls_report_enable = yes', 'sealpost_tls_proof_enable = yes']
      : ['sealpost_tls_report_enable = no', 'sealpost_tls_proof_enable = no'];
    sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
    await waitListening(sinkPort, 'smtp-sink');
    daemon = await startSealpost(dir, [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = none', ...extra], `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    await waitListening(port, 'sealpost');
    // Steady state: the CPU of the start (module loading, e.g. prom-client) is reported apart.
    const startCpu = procFigures(daemon.pid!).cpu;
    let finished!: () => void;
    const stop = new Promise<void>((r) => (finished = r));
    const scraping = observe ? scraper(`http://127.0.0.1:${httpPort}/metrics`, stop) : undefined;
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', '20', '-m', String(n), '-l', '4096', '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = procFigures(daemon.pid!).cpu - startCpu;
    finished();
    const last = await scraping;
    const rate = f.sent / secs;
    const cpuPerMsg = (cpu * 1e6) / Math.max(1, f.sent);
    const scraped = last ? { received: counter(last.text, 'sealpost_messages_received_total'), delivered: counter(last.text, 'sealpost_messages_delivered_total'), scrapes: last.scrapes } : undefined;
    const note = scraped ? `; ${scraped.scrapes} scrapes, last: received ${scraped.received}, delivered ${scraped.delivered}` : '';
    process.stdout.write(`observe: relay ${observe ? 'on ' : 'off'}: ${rate.toFixed(0)} msgs/s (${f.sent} sent), daemon CPU ${cpuPerMsg.toFixed(0)} µs per message (start: ${(startCpu * 1000).toFixed(0)} ms)${note}\n`);
    return { rate, cpuPerMsg, ...(scraped ? { scraped } : {}) };
  } finally {
    if (daemon) await stopDaemon(daemon);
    if (sink) sink.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function load(): string {
  return loadavg().map((x) => x.toFixed(2)).join(' ');
}

export async function bench(): Promise<void> {
  const events = Number(process.env.SEALPOST_BENCH_OBSERVE_EVENTS ?? 20_000);
  const perMsg = await subscriberCost(events);
  if (!existsSync('/usr/sbin/smtp-source') || !existsSync('/usr/sbin/smtp-sink')) {
    process.stdout.write('observe: relay runs skipped (smtp-source/smtp-sink from the Debian postfix package are not installed)\n');
    return;
  }
  const n = Number(process.env.SEALPOST_BENCH_OBSERVE_N ?? 3000);
  const rounds = Number(process.env.SEALPOST_BENCH_OBSERVE_ROUNDS ?? 6);
  process.stdout.write(`observe: ${rounds} interleaved rounds of ${n} messages, ABBA order (load average before: ${load()})\n`);
  const off: RelayFigures[] = [];
  const on: RelayFigures[] = [];
  // Interleaved on a shared machine, ABBA (off on, on off, ...): a load drift hits both modes alike.
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? [false, true] : [true, false];
    for (const observe of order) (observe ? on : off).push(await relayRun(n, observe));
  }
  const offCpu = median(off.map((r) => r.cpuPerMsg));
  const onCpu = median(on.map((r) => r.cpuPerMsg));
  const offRate = median(off.map((r) => r.rate));
  const onRate = median(on.map((r) => r.rate));
  process.stdout.write(`observe: subscribers cost ${((perMsg / offCpu) * 100).toFixed(2)}% of the relay's CPU per message\n`);
  process.stdout.write(
    `observe: relay on vs off (medians of ${rounds}): ${onRate.toFixed(0)} vs ${offRate.toFixed(0)} msgs/s (${(((offRate - onRate) / offRate) * 100).toFixed(1)}% fewer), ` +
      `${onCpu.toFixed(0)} vs ${offCpu.toFixed(0)} µs daemon CPU per message (${(((onCpu - offCpu) / offCpu) * 100).toFixed(1)}% more); load average after: ${load()}\n`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
