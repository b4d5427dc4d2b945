import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort, percentile, procFigures, runSmtpSource, startSealpost, stopDaemon, waitDelivered, waitListening } from './relay.ts';
const n = Number(process.env.N ?? 3000);
const extra = (process.env.EXTRA ?? '').split(';').filter(Boolean);
const dir = mkdtempSync(join(tmpdir(), 'sp-prof-'));
const sinkPort = await freePort();
const port = await freePort();
const sink = spawn('/usr/sbin/smtp-sink', ['-u', userInfo().username, `127.0.0.1:${sinkPort}`, '256'], { stdio: 'ignore' });
await waitListening(sinkPort, 'smtp-sink');
const daemon = await startSealpost(dir, [`relayhost = [127.0.0.1]:${sinkPort}`, 'mynetworks = 127.0.0.0/8', 'smtp_tls_security_level = none', ...extra], `127.0.0.1:${port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
await waitListening(port, 'sealpost');
const { readdirSync: rd, readFileSync: rf } = await import('node:fs');
const threadCpu = () => { const m = new Map<string, number>(); for (const t of rd(`/proc/${daemon.pid}/task`)) { const st = rf(`/proc/${daemon.pid}/task/${t}/stat`, 'utf8'); const f = st.slice(st.lastIndexOf(')') + 2).split(' '); m.set(t, (Number(f[11]) + Number(f[12])) / 100); } return m; };
await new Promise((r) => setTimeout(r, 1000));
const before = threadCpu();
const cpu0 = procFigures(daemon.pid!).cpu;
const t0 = process.hrtime.bigint();
await runSmtpSource(['-s', '20', '-m', String(n), '-l', '4096', '-f', 'bench@example.org', '-t', 'sink@example.com', `127.0.0.1:${port}`]);
const f = await waitDelivered(join(dir, 'maillog'), n, 600_000);
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
const proc = procFigures(daemon.pid!);
{
  const { readdirSync, readFileSync } = await import('node:fs');
  const by = new Map<string, number>();
  for (const t of readdirSync(`/proc/${daemon.pid}/task`)) {
    const st = readFileSync(`/proc/${daemon.pid}/task/${t}/stat`, 'utf8');
    const name = `${t}:${readFileSync(`/proc/${daemon.pid}/task/${t}/comm`, "utf8").trim()}`;
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    by.set(name, (by.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) / 100);
  }
  console.log([...by].map(([k, v]) => `${k}=${v.toFixed(2)}`).join(' '));
  const after = threadCpu();
  console.log('during load:', [...after].map(([k, v]) => `${k}=${(v - (before.get(k) ?? 0)).toFixed(2)}`).join(' '), `total ${(procFigures(daemon.pid!).cpu - cpu0).toFixed(2)} s = ${((procFigures(daemon.pid!).cpu - cpu0) * 1000 / n).toFixed(2)} ms/msg`);
  for (const c of readFileSync(`/proc/${daemon.pid}/task/${daemon.pid}/children`, 'utf8').trim().split(' ').filter(Boolean)) console.log('child', c, procFigures(Number(c)).cpu);
}
const d = [...f.delays].sort((a, b) => a - b);
console.log(`${(f.sent / secs).toFixed(0)} msgs/s, sent ${f.sent}, p50 ${percentile(d, 50)} p99 ${percentile(d, 99)}, cpu ${proc.cpu.toFixed(2)} s = ${(proc.cpu * 1000 / n).toFixed(2)} ms/msg, rss ${proc.peakRssMiB.toFixed(0)}`);
await stopDaemon(daemon);
sink.kill('SIGKILL');
rmSync(dir, { recursive: true, force: true });
