/**
 * relay-one.ts (bench) — one sealpost relay run, for profiling and before/after
 * comparisons: smtp-source (20 sessions, N × 4 KB) → sealpost → smtp-sink (or,
 * with `encrypt`, the STARTTLS sink bench/tls-sink.ts at
 * `smtp_tls_security_level = encrypt`), with the same figures as
 * bench/relay.ts prints. Not part of `npm run bench`.
 *   node --import tsx bench/relay-one.ts [N] [encrypt] [main.cf line ...]
 * SEALPOST_BENCH_NODE_ARGS passes node options to the daemon (e.g. --cpu-prof);
 * SEALPOST_BENCH_ROOT measures another built checkout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, makeCert, sealpostRun, startTlsSink, waitListening } from './relay.ts';

const n = Number(process.argv[2] ?? 10_000);
const encrypt = process.argv[3] === 'encrypt';
const extra = process.argv.slice(encrypt ? 4 : 3);
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-one-'));
chmodSync(dir, 0o755);
let sink: ChildProcess | undefined;
try {
  if (encrypt) {
    const { cert, key } = makeCert(dir);
    sink = await startTlsSink(port, cert, key);
  } else {
    sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${port}`, '256'], { stdio: 'ignore' });
    await waitListening(port, 'smtp-sink');
  }
  const settings = [...(encrypt ? ['smtp_tls_security_level = encrypt'] : []), ...extra];
  await sealpostRun(`${encrypt ? 'encrypt' : 'plain'}, sealpost ${extra.join('; ') || '(default settings)'}`, n, port, settings);
} finally {
  sink?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
