/**
 * relay-tls.ts (bench) — what a TLS handshake costs the sender, and how much
 * of it sealpost avoids:
 * 1. The client's crypto per handshake, by algorithm (node:crypto, CPU µs per
 *    operation): an ephemeral key share and the shared secret with X25519 and
 *    with P-256; verifying the server's signature with ECDSA P-256, RSA-PSS
 *    2048 and Ed25519 (and, for the receiver's side, making one). These
 *    figures chose the client's key-exchange order (delivery/tls/context.ts
 *    CLIENT_GROUPS).
 * 2. sealpost at `smtp_tls_security_level = encrypt` relaying smtp-source's
 *    load to a STARTTLS sink (bench/tls-sink.ts) three ways: a full handshake
 *    per message (no reuse, no session cache), session resumption per
 *    message (`smtp_tls_connection_reuse = no`, Postfix's default), and TLS
 *    connection reuse (sealpost's default). Postfix's figures are in
 *    bench/relay.ts.
 *
 * `bench()` is imported by bench/run.ts; SEALPOST_BENCH_TLS_N (default 5000;
 * 1500 with SEALPOST_BENCH_QUICK). Run alone: `node --import tsx bench/relay-tls.ts`.
 * Figures only, no thresholds.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { constants, diffieHellman, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, loadavg, percentile, runSmtpSource, startSealpost, stopDaemon, treeCpu, waitDelivered, waitListening } from './relay.ts';

const SESSIONS = 20;
const SIZE = 4096;

function cpuMicros(f: () => void, n: number): number {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) f();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

/** Part 1: the handshake's public-key operations, CPU µs each. */
function cryptoFigures(): void {
  const peerX = generateKeyPairSync('x25519');
  const peerP = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const share = (type: 'x25519' | 'p256', peer: KeyObject) => () => {
    const k = type === 'x25519' ? generateKeyPairSync('x25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    diffieHellman({ privateKey: k.privateKey, publicKey: peer });
  };
  process.stdout.write(
    `relay-tls: key exchange (client key share + shared secret): X25519 ${cpuMicros(share('x25519', peerX.publicKey), 2000).toFixed(0)} µs, P-256 ${cpuMicros(share('p256', peerP.publicKey), 2000).toFixed(0)} µs (load ${loadavg()})\n`,
  );
  const data = Buffer.alloc(100, 1);
  const pss = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const sigEc = sign('sha256', data, ec.privateKey);
  const sigRsa = sign('sha256', data, { key: rsa.privateKey, ...pss });
  const sigEd = sign(null, data, ed.privateKey);
  const rows = [
    ['ECDSA P-256', () => verify('sha256', data, ec.publicKey, sigEc), () => sign('sha256', data, ec.privateKey)],
    ['RSA-PSS 2048', () => verify('sha256', data, { key: rsa.publicKey, ...pss }, sigRsa), () => sign('sha256', data, { key: rsa.privateKey, ...pss })],
    ['Ed25519', () => verify(null, data, ed.publicKey, sigEd), () => sign(null, data, ed.privateKey)],
  ] as const;
  for (const [name, v, s] of rows) {
    process.stdout.write(`relay-tls: signature ${name}: the client verifies in ${cpuMicros(v, 2000).toFixed(0)} µs, the server signs in ${cpuMicros(s, 300).toFixed(0)} µs\n`);
  }
}

function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'sink.crt');
  const key = join(dir, 'sink.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=sink.bench.test', '-days', '2', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

async function runSealpost(n: number, sinkPort: number, label: string, extra: readonly string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-tls-'));
  let daemon: ChildProcess | undefined;
  try {
    const port = await freePort();
    daemon = await startSealpost(
      dir,
      [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = encrypt', ...extra],
      `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`,
    );
    await waitListening(port, 'sealpost');
    await new Promise((r) => setTimeout(r, 1000));
    const cpu0 = treeCpu(daemon.pid!);
    const t0 = process.hrtime.bigint();
    await runSmtpSource(['-s', String(SESSIONS), '-m', String(n), '-l', String(SIZE), '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
    const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = treeCpu(daemon.pid!) - cpu0;
    const delays = [...f.delays].sort((a, b) => a - b);
    process.stdout.write(
      `relay-tls: encrypt, ${label}: ${(f.sent / secs).toFixed(0)} msgs/s (${f.sent} sent, ${f.other} not), latency p50 ${percentile(delays, 50).toFixed(2)} s p99 ${percentile(delays, 99).toFixed(2)} s, CPU ${((cpu * 1000) / n).toFixed(2)} ms/msg (load ${loadavg()})\n`,
    );
  } finally {
    if (daemon) await stopDaemon(daemon);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function bench(): Promise<void> {
  cryptoFigures();
  if (!existsSync('/usr/sbin/smtp-source')) {
    process.stdout.write('relay-tls: relay runs skipped (smtp-source from the Debian postfix package is not installed)\n');
    return;
  }
  const quick = process.env.SEALPOST_BENCH_QUICK !== undefined && process.env.SEALPOST_BENCH_QUICK !== '';
  const n = Number(process.env.SEALPOST_BENCH_TLS_N ?? (quick ? 1500 : 5000));
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-tls-pki-'));
  chmodSync(dir, 0o755);
  let sink: ChildProcess | undefined;
  try {
    const { cert, key } = makeCert(dir);
    const sinkPort = await freePort();
    sink = spawn(process.execPath, ['--import', 'tsx', 'bench/tls-sink.ts', '127.0.0.1', String(sinkPort), cert, key], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitListening(sinkPort, 'tls-sink');
    await runSealpost(n, sinkPort, 'a full handshake per message (no reuse, no session cache)', ['smtp_tls_connection_reuse = no', 'smtp_tls_session_cache_timeout = 0']);
    await runSealpost(n, sinkPort, 'session resumption per message (smtp_tls_connection_reuse = no)', ['smtp_tls_connection_reuse = no']);
    await runSealpost(n, sinkPort, 'TLS connection reuse (the default)', []);
  } finally {
    if (sink) sink.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await bench();
