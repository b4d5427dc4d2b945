/**
 * relay-one.ts (bench) — one sealpost relay run, for profiling and before/after
 * comparisons: smtp-source (20 sessions, N × 4 KB) → sealpost → smtp-sink, with
 * the same figures as bench/relay.ts prints. Not part of `npm run bench`.
 *   node --import tsx bench/relay-one.ts [N] [main.cf line ...]
 * SEALPOST_BENCH_NODE_ARGS passes node options to the daemon (e.g. --cpu-prof).
 */
import { spawn } from 'node:child_process';
import { userInfo } from 'node:os';
import { freePort, sealpostRun, waitListening } from './relay.ts';

const n = Number(process.argv[2] ?? 10_000);
const extra = process.argv.slice(3);
const sinkPort = await freePort();
const sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
try {
  await waitListening(sinkPort, 'smtp-sink');
  await sealpostRun(`plain, sealpost ${extra.join('; ') || '(default settings)'}`, n, sinkPort, extra);
} finally {
  sink.kill('SIGKILL');
}
