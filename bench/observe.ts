/**
 * observe.ts (bench) — what observability costs the relay (issue 13: under 5%).
 *
 * 1. Subscribers: the delivery events of one relayed message (received,
 *    tls-session, outcome, removed — shaped as the queue manager publishes
 *    them) through a real EventBus, with the metrics, the TLS posture store
 *    and the TLS proof store subscribed (their files written under a temp
 *    data_directory, flushes included), against the same events on a bus
 *    with no subscriber: CPU µs per message (process.cpuUsage).
 * 2. The relay's own CPU per message: bench/relay.ts's setup (smtp-source →
 *    sealpost start-fg → smtp-sink), run twice, with the observability
 *    parameters off (`sealpost_tls_report_enable = no`,
 *    `sealpost_tls_proof_enable = no`, no listener) and on
 *    (`sealpost_http_listen = 127.0.0.1:0`, both stores): msgs/s and daemon CPU
 *    per message for each, and the cost of (1) as a share of the relay's CPU
 *    per message. Once the daemon publishes its events and wires
 *    reports/observe.ts (main.ts), the on/off runs measure the real cost; until
 *    then they differ only by noise, and (1) is the estimate.
 *
 * SEALPOST_BENCH_OBSERVE_EVENTS (default 20000) and SEALPOST_BENCH_OBSERVE_N
 * (relay messages per run, default 5000) scale it. Figures only, no thresholds.
 * Run alone: `node --import tsx bench/observe.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
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

async function relayRun(n: number, extra: readonly string[], label: string): Promise<{ rate: number; cpuPerMsg: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-observe-relay-'));
  let sink: ChildProcess | undefined;
  let daemon: ChildProcess | undefined;
  try {
    const sinkPort = await freePort();
    const port = await freePort();
    sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
    await waitListening(sinkPort, 'smtp-sink');
    daemon = await startSealpost(dir, [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = none', ...extra], `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    await waitListening(port, 'sealpost');
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', '20', '-m', String(n), '-l', '4096', '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = procFigures(daemon.pid!).cpu;
    const rate = f.sent / secs;
    const cpuPerMsg = (cpu * 1e6) / Math.max(1, f.sent);
    process.stdout.write(`observe: relay ${label}: ${rate.toFixed(0)} msgs/s (${f.sent} sent), daemon CPU ${cpuPerMsg.toFixed(0)} µs per message\n`);
    return { rate, cpuPerMsg };
  } finally {
    if (daemon) await stopDaemon(daemon);
    if (sink) sink.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  const events = Number(process.env.SEALPOST_BENCH_OBSERVE_EVENTS ?? 20_000);
  const perMsg = await subscriberCost(events);
  if (!existsSync('/usr/sbin/smtp-source') || !existsSync('/usr/sbin/smtp-sink')) {
    process.stdout.write('observe: relay runs skipped (smtp-source/smtp-sink from the Debian postfix package are not installed)\n');
    return;
  }
  const n = Number(process.env.SEALPOST_BENCH_OBSERVE_N ?? 5000);
  const off = await relayRun(n, ['sealpost_tls_report_enable = no', 'sealpost_tls_proof_enable = no'], 'observability off');
  const on = await relayRun(n, ['sealpost_http_listen = 127.0.0.1:0'], 'observability on (listener, metrics, both stores)');
  process.stdout.write(`observe: subscribers cost ${((perMsg / off.cpuPerMsg) * 100).toFixed(2)}% of the relay's CPU per message\n`);
  process.stdout.write(`observe: relay on vs off: ${(((off.rate - on.rate) / off.rate) * 100).toFixed(1)}% fewer msgs/s, ${(((on.cpuPerMsg - off.cpuPerMsg) / off.cpuPerMsg) * 100).toFixed(1)}% more CPU per message\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
