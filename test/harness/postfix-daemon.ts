/**
 * postfix-daemon.ts (test harness) — a throw-away Debian Postfix 3.7 instance
 * as a real peer for interoperability tests: `postfix -c TMP/conf start` with
 * its own queue_directory, data_directory and maillog_file under a temp dir,
 * one smtpd on a loopback address and port, no chroot, and the caller's
 * main.cf lines on top. `stop()` runs `postfix -c ... stop` and removes the
 * directory.
 *
 * Contract: needs root (Postfix's master refuses otherwise), the `postfix`
 * user and the Debian package (.ci/run installs it). Failures throw one
 * message naming what is missing. Nothing binds outside 127.0.0.0/8.
 *
 * Options (`PeerOptions`): `chroot` runs the named master.cf services
 * chrooted to the queue directory and writes the given files there (e.g.
 * `etc/resolv.conf` naming a lab DNS server, which only the chrooted daemons
 * see) — how postfix-sender.ts points Postfix's smtp(8) at the test DNS;
 * `serviceOptions` adds `-o name=value` to a service's master.cf line.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { tempDir } from './cli.ts';

export interface PostfixPeer {
  readonly dir: string;
  readonly host: string;
  readonly port: number;
  /** The peer's maillog so far. */
  log(): string;
  /** Resolves when the log matches `re`. */
  waitLog(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(): void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, host, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export interface PeerOptions {
  /** Run these master.cf services chrooted ($queue_directory) with these files (path relative to the queue directory → content). */
  readonly chroot?: { readonly services: readonly string[]; readonly files: Readonly<Record<string, string>> };
  /** Temp directory prefix (default sealpost-postfix-peer-). */
  readonly prefix?: string;
  /** master.cf `-o name=value` overrides per service name (e.g. `{ smtp: ['max_use=1'] }`). */
  readonly serviceOptions?: Readonly<Record<string, readonly string[]>>;
  /** Lines added to master.cf (e.g. the tlsproxy service Debian ships commented out). */
  readonly extraMasterCf?: string;
}

export async function startPostfixPeer(host: string, port: number, mainCf: readonly string[], opts: PeerOptions = {}): Promise<PostfixPeer> {
  if (process.getuid?.() !== 0) throw new Error('a Postfix peer needs root (Postfix\'s master runs only as root)');
  if (!existsSync('/usr/sbin/postfix') || !existsSync('/etc/postfix/master.cf')) throw new Error('Debian\'s postfix package is missing: .ci/run installs it');
  const uid = Number(execFileSync('id', ['-u', 'postfix'], { encoding: 'utf8' }).trim());
  const t = tempDir(opts.prefix ?? 'sealpost-postfix-peer-');
  const dir = t.dir;
  chmodSync(dir, 0o755); // Postfix's unprivileged daemons must reach the queue and the certificates
  const conf = join(dir, 'conf');
  mkdirSync(conf);
  mkdirSync(join(dir, 'queue'));
  mkdirSync(join(dir, 'data'));
  chownSync(join(dir, 'data'), uid, -1);
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .filter((l) => !/^(smtp\s+inet|postlog)\s/.test(l))
    // No chroot: the temp queue has no copies of /etc files.
    .map((l) => l.replace(/^(\S+\s+(?:unix|inet|fifo|pass|unix-dgram)\s+\S+\s+\S+\s+)y(\s)/, '$1n$2'))
    .map((l) => (opts.chroot?.services.includes(l.split(/\s+/)[0]!) ? l.replace(/^(\S+\s+(?:unix|inet)\s+\S+\s+\S+\s+)n(\s)/, '$1y$2') : l))
    .map((l) => {
      const extra = /^\S+\s+(?:unix|inet)\s/.test(l) ? opts.serviceOptions?.[l.split(/\s+/)[0]!] : undefined;
      return extra ? `${l} ${extra.map((o) => `-o ${o}`).join(' ')}` : l;
    })
    .join('\n');
  for (const [rel, text] of Object.entries(opts.chroot?.files ?? {})) {
    mkdirSync(dirname(join(dir, 'queue', rel)), { recursive: true });
    writeFileSync(join(dir, 'queue', rel), text);
  }
  writeFileSync(join(conf, 'master.cf'), `${host}:${port} inet n - n - - smtpd\n${master}\npostlog   unix-dgram n  -       n       -       1       postlogd\n${opts.extraMasterCf ?? ''}`);
  for (const f of ['dynamicmaps.cf', 'dynamicmaps.cf.d']) if (existsSync(`/etc/postfix/${f}`)) cpSync(`/etc/postfix/${f}`, join(conf, f), { recursive: true });
  const logFile = join(dir, 'maillog');
  writeFileSync(
    join(conf, 'main.cf'),
    [
      'compatibility_level = 3.6',
      `queue_directory = ${dir}/queue`,
      `data_directory = ${dir}/data`,
      'mail_owner = postfix',
      'inet_interfaces = loopback-only',
      'inet_protocols = ipv4',
      'myhostname = peer.postfix.test',
      'mydestination =',
      `maillog_file_prefixes = ${dir}`,
      `maillog_file = ${logFile}`,
    ]
      // A parameter the caller sets replaces the default here (no "overriding earlier entry" warnings).
      .filter((line) => !mainCf.some((m) => m.split('=')[0]!.trim() === line.split('=')[0]!.trim()))
      .concat(mainCf, '')
      .join('\n'),
  );
  try {
    execFileSync('/usr/sbin/postfix', ['-c', conf, 'start'], { stdio: 'pipe' });
  } catch (err) {
    t.cleanup();
    throw new Error(`postfix -c ${conf} start failed: ${String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim()}`);
  }
  const stop = () => {
    try {
      execFileSync('/usr/sbin/postfix', ['-c', conf, 'stop'], { stdio: 'ignore' });
    } catch {
      /* already stopped */
    }
    t.cleanup();
  };
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  for (let i = 0; !(await listening(host, port)); i++) {
    if (i > 200) {
      const text = log();
      stop();
      throw new Error(`the Postfix peer did not listen on ${host}:${port}:\n${text}`);
    }
    await sleep(50);
  }
  return {
    dir,
    host,
    port,
    log,
    waitLog: async (re, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = re.exec(log());
        if (m) return m[0];
        if (Date.now() > deadline) throw new Error(`timeout waiting for ${re} in the Postfix peer's log:\n${log()}`);
        await sleep(100);
      }
    },
    stop,
  };
}
