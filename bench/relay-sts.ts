/**
 * relay-sts.ts (bench) — what MTA-STS costs on the relay path (issue 11):
 * smtp-source (20 sessions) → a real sealpost daemon → a STARTTLS sink
 * (bench/tls-sink.ts, its own process) that is the MX host of `sts.bench`,
 * found through a lab DNS server on loopback, with a certificate for the MX
 * name from a test CA (smtp_tls_CAfile). Two runs to the same destination:
 *   1. `sts.bench` publishes an MTA-STS `enforce` policy (the policy host on
 *      port 443 of a loopback address; fetched once, then cached): every
 *      delivery asks the `_mta-sts` TXT record (RFC 8461 §5.1) and checks
 *      the MX against the policy — the daemon as it runs for real;
 *   2. the same destination with a plain `secure` entry in
 *      smtp_tls_policy_maps (no MTA-STS lookups at all).
 * The figures show what the source costs once the policy is cached.
 *
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_STS_N changes the
 * message count (default 3000, 4 KB each). Needs /usr/sbin/smtp-source and
 * root (port 443 for the policy host). Run alone:
 * `node --import tsx bench/relay-sts.ts` (after `npm run build`). Figures
 * only, no thresholds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer, type DnsLab } from '../test/harness/dns-server.ts';
import { makeCa, mintCert } from '../test/harness/pki.ts';
import { startStsServer, type StsLab } from '../test/harness/sts-server.ts';
import { freePort, percentile, procFigures, runSmtpSource, startSealpost, stopDaemon, waitDelivered, waitListening } from './relay.ts';

const SESSIONS = 20;
const SIZE = 4096;

interface Lab {
  readonly dir: string;
  readonly ca: string;
  readonly sinkPort: number;
  readonly dns: DnsLab;
  readonly sts: StsLab;
  readonly sink: ChildProcess;
}

async function startLab(): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-sts-'));
  // The daemon runs as mail_owner: it must read the CA file.
  chmodSync(dir, 0o755);
  const root = makeCa(dir, 'root');
  const mx = mintCert(dir, 'mx', { names: ['mx.sts.bench'], issuer: root });
  const host = mintCert(dir, 'policy-host', { names: ['mta-sts.sts.bench'], issuer: root });
  const sts = await startStsServer({ sites: { 'mta-sts.sts.bench': { cert: host, policy: 'version: STSv1\nmode: enforce\nmx: mx.sts.bench\nmax_age: 86400\n' } } });
  const dns = await startDnsServer({
    'sts.bench': { MX: [[10, 'mx.sts.bench']] },
    'mx.sts.bench': { A: ['127.0.0.1'] },
    '_mta-sts.sts.bench': { TXT: ['v=STSv1; id=bench1;'] },
    'mta-sts.sts.bench': { A: [sts.address] },
  });
  const sinkPort = await freePort();
  const sink = spawn(process.execPath, ['--import', 'tsx', 'bench/tls-sink.ts', '127.0.0.1', String(sinkPort), mx.cert, mx.key], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(sinkPort, 'tls-sink');
  return { dir, ca: root.cert, sinkPort, dns, sts, sink };
}

async function run(lab: Lab, n: number, label: string, extra: readonly string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-sts-run-'));
  // The daemon drops to mail_owner after binding: it must reach its queue.
  chmodSync(dir, 0o755);
  let daemon: ChildProcess | undefined;
  try {
    const port = await freePort();
    daemon = await startSealpost(dir, [
      'mynetworks = 127.0.0.0/8', 'inet_protocols = ipv4', 'smtp_tls_security_level = may',
      `smtp_tls_CAfile = ${lab.ca}`, `sealpost_dns_resolvers = 127.0.0.1:${lab.dns.port}`, `smtp_tcp_port = ${lab.sinkPort}`, ...extra,
    ], `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    await waitListening(port, 'sealpost');
    const fetchesBefore = lab.sts.requests.length;
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@sts.bench', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const proc = procFigures(daemon.pid!);
    const delays = [...f.delays].sort((a, b) => a - b);
    process.stdout.write(
      `relay-sts: ${label}: ${(f.sent / secs).toFixed(0)} msgs/s relayed (${f.sent} sent, ${f.other} not sent, ${secs.toFixed(2)} s), ` +
        `latency p50 ${percentile(delays, 50).toFixed(2)} s, p99 ${percentile(delays, 99).toFixed(2)} s, CPU ${proc.cpu.toFixed(1)} s, ` +
        `policy fetches ${lab.sts.requests.length - fetchesBefore}\n`,
    );
  } finally {
    if (daemon) await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  if (!existsSync('/usr/sbin/smtp-source')) {
    process.stdout.write('relay-sts: skipped (smtp-source from the Debian postfix package is not installed)\n');
    return;
  }
  if (process.getuid?.() !== 0) {
    process.stdout.write('relay-sts: skipped (the MTA-STS policy host needs port 443: run as root)\n');
    return;
  }
  const n = Number(process.env.SEALPOST_BENCH_STS_N ?? 3000);
  const lab = await startLab();
  try {
    await run(lab, n, `${n} x 4 KB to an MTA-STS enforce destination (policy cached after the first fetch)`, []);
    await run(lab, n, `${n} x 4 KB to the same destination with a "secure" table entry (no MTA-STS)`, ['smtp_tls_policy_maps = inline:{ {sts.bench = secure} }']);
  } finally {
    lab.sink.kill('SIGTERM');
    await lab.sts.close();
    await lab.dns.close();
    rmSync(lab.dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
