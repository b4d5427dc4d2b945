/**
 * syslog-receiver.ts (test harness) — a stand-in for /dev/log: a UNIX
 * datagram socket (Node has none in core, so python3 binds it) that records
 * every datagram it receives, one per line, exactly as sent.
 *
 * Contract: `startSyslogReceiver(path)` resolves once the socket exists (mode
 * 0666, so unprivileged senders reach it); `lines` holds the datagrams;
 * `waitFor(re)` resolves with the first matching one; `close()` stops it and
 * removes the socket.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const PROGRAM = `
import os, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
print("ready", flush=True)
while True:
    data = s.recv(65536)
    sys.stdout.write(data.decode("utf-8", "replace").replace("\\n", "\\\\n") + "\\n")
    sys.stdout.flush()
`;

export interface SyslogReceiver {
  readonly path: string;
  readonly lines: string[];
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startSyslogReceiver(path: string): Promise<SyslogReceiver> {
  const p = spawn('python3', ['-c', PROGRAM, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let buf = '';
  let ready = false;
  p.stdout.on('data', (c: Buffer) => {
    buf += c.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!ready && line === 'ready') ready = true;
      else lines.push(line);
    }
  });
  for (let i = 0; i < 200 && !(ready && existsSync(path)); i++) await new Promise((r) => setTimeout(r, 25));
  if (!ready) throw new Error(`python3 did not bind ${path}: the syslog tests need python3`);
  return {
    path,
    lines,
    async waitFor(re, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = lines.find((l) => re.test(l));
        if (hit !== undefined) return hit;
        if (Date.now() > deadline) throw new Error(`no datagram matching ${re} in:\n${lines.join('\n')}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    async close() {
      const exited = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await exited;
      const { rmSync } = await import('node:fs');
      rmSync(path, { force: true });
    },
  };
}
