/**
 * postfix-sender.ts (test harness) — Debian's Postfix 3.7 as a second SMTP
 * *sender* beside sealpost, for differential TLS scenarios: the same message,
 * the same policy-table entry, the same receiver, and Postfix's log, queue
 * and `mailq` to compare with ours.
 *
 * Contract:
 * - `startPostfixSender({ dnsPort, mainCf })` starts a throw-away Postfix
 *   (postfix-daemon.ts: own temp config, queue and maillog_file) with an smtpd
 *   on 127.0.0.1:PORT that relays for 127.0.0.0/8 (mail is submitted the way
 *   sealpost's tests submit to sealpost: over SMTP), and smtp(8)/relay
 *   chrooted to its queue directory, where `etc/resolv.conf` names a relay on
 *   UDP/TCP port 53 of a free 127.53.x.y address that forwards every query to
 *   the lab DNS server (`test/harness/dns-server.ts` on 127.0.0.1:dnsPort).
 *   So Postfix resolves MX and A records — and sees the AD bit, with
 *   `options trust-ad` — exactly as sealpost does with
 *   `sealpost_dns_resolvers`, without touching the system's resolver. Each
 *   smtp(8) process makes one delivery (`-o max_use=1`).
 * - `lines(re)` gives the mail log as `program: text` (syslog prefix, pid
 *   stripped; `mailLogLines()` does the same for any Postfix-shaped log,
 *   sealpost's included).
 * - `mailq()` runs Postfix's own `postqueue -p`, `flush(id)` its
 *   `postqueue -i id` (retry a deferred message now) on the sender's queue.
 * - `stop()` stops Postfix, closes the DNS relay and removes the directory.
 *
 * Needs root (Postfix's master, port 53, chroot). Nothing binds or connects
 * outside 127.0.0.0/8. Not here: the receivers (tls-postures.ts), the
 * comparison (the tests).
 */
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { freePort, SmtpClient } from '../unit/daemon/fixtures/instance.ts';
import { startPostfixPeer, type PostfixPeer } from './postfix-daemon.ts';

export interface DnsRelay {
  readonly address: string;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Listen on UDP and TCP port 53 of `address`; resolves false when the address is taken. */
async function bindRelay(address: string, udp: UdpSocket, tcp: Server): Promise<boolean> {
  const ok = await new Promise<boolean>((resolve) => {
    udp.once('error', () => resolve(false));
    udp.bind(53, address, () => resolve(true));
  });
  if (!ok) return false;
  const tcpOk = await new Promise<boolean>((resolve) => {
    tcp.once('error', () => resolve(false));
    tcp.listen(53, address, () => resolve(true));
  });
  if (!tcpOk) udp.close();
  return tcpOk;
}

/**
 * A DNS relay on port 53 of a free 127.53.x.y address (glibc's resolv.conf
 * has no port syntax) to the lab DNS server on 127.0.0.1:target.
 */
export async function startDnsRelay(target: number): Promise<DnsRelay> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const address = `127.53.${1 + Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;
    const udp = createSocket('udp4');
    const sockets = new Set<Socket>();
    const tcp = createServer((client) => {
      const upstream = connect(target, '127.0.0.1');
      sockets.add(client).add(upstream);
      for (const s of [client, upstream]) {
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    if (!(await bindRelay(address, udp, tcp))) continue;
    // One upstream socket per query: the reply goes back to whoever asked.
    udp.on('message', (msg, from) => {
      const up = createSocket('udp4');
      const done = (): void => {
        clearTimeout(timer);
        up.close();
      };
      // The lab server answers at once or never (`drop`): give up after a while.
      const timer = setTimeout(done, 5000);
      timer.unref();
      up.on('error', done);
      up.on('message', (reply) => {
        // Several datagrams may answer one query (the lab's `spoof` switch): relay them all.
        udp.send(reply, from.port, from.address);
      });
      up.send(msg, target, '127.0.0.1');
      up.unref();
    });
    return {
      address,
      close: async () => {
        for (const s of sockets) s.destroy();
        await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
      },
    };
  }
  throw new Error('startDnsRelay: no free 127.53.x.y address for port 53');
}

/**
 * A mail log (Postfix's or sealpost's syslog-shaped lines) as `program: text`
 * lines, without the time stamp, host and pid. A last line still being
 * written (no newline yet) is left out.
 */
export function mailLogLines(text: string): string[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (\S+?)\[\d+\]: /, '$1: '));
}

export interface PostfixSender {
  readonly peer: PostfixPeer;
  readonly configDir: string;
  /** Submit one message over SMTP to the sender's smtpd; resolves with the queue ID. */
  submit(from: string, to: readonly string[], body: string): Promise<string>;
  /** Mail log lines as `program: text` (e.g. `postfix/smtp: Untrusted TLS connection ...`). */
  lines(re?: RegExp): string[];
  waitLog(re: RegExp, count?: number, ms?: number): Promise<string[]>;
  /** `postqueue -p` of the sender's queue. */
  mailq(): string;
  /** `postqueue -i ID`: deliver this deferred message now. */
  flush(id: string): void;
  stop(): Promise<void>;
}

/** The chroot files Postfix's smtp(8) reads at run time (as Debian's configure-instance.sh copies them). */
function chrootFiles(dns: string): Record<string, string> {
  const copy = (p: string, dflt: string): string => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return dflt;
    }
  };
  return {
    // trust-ad: glibc ≥ 2.31 clears the AD bit otherwise (smtp_dns_support_level = dnssec needs it).
    'etc/resolv.conf': `nameserver ${dns}\noptions trust-ad timeout:3 attempts:3\n`,
    'etc/nsswitch.conf': 'hosts: files dns\nservices: files\n',
    'etc/hosts': '127.0.0.1 localhost\n',
    'etc/services': copy('/etc/services', 'smtp 25/tcp mail\n'),
  };
}

export async function startPostfixSender(opts: { readonly dnsPort: number; readonly mainCf: readonly string[] }): Promise<PostfixSender> {
  const relay = await startDnsRelay(opts.dnsPort);
  const port = await freePort();
  let peer: PostfixPeer;
  try {
    peer = await startPostfixPeer(
      '127.0.0.1',
      port,
      [
        'myhostname = postfix.sender.test',
        'mynetworks = 127.0.0.0/8',
        'smtp_host_lookup = dns',
        // The lab DNS answers "." with NXDOMAIN: no DNSSEC probe warnings.
        'dnssec_probe =',
        // No NIS lookups (Debian's default alias_maps): nothing is delivered locally.
        'alias_maps =',
        'alias_database =',
        ...opts.mainCf,
      ],
      {
        chroot: { services: ['smtp', 'relay'], files: chrootFiles(relay.address) },
        // One delivery per smtp(8) process: what a process remembers (its TLS policy
        // cache and the warnings logged once per process) never depends on which
        // earlier delivery the process happened to make.
        serviceOptions: { smtp: ['max_use=1'] },
        prefix: 'sealpost-postfix-sender-',
      },
    );
  } catch (err) {
    await relay.close();
    throw err;
  }
  const lines = (re?: RegExp): string[] => mailLogLines(peer.log()).filter((l) => !re || re.test(l));
  const configDir = join(peer.dir, 'conf');
  return {
    peer,
    configDir,
    submit: async (from, to, body) => {
      const { client } = await SmtpClient.connect(port);
      try {
        const reply = await client.send(from, to, body);
        const m = /queued as ([0-9A-Za-z]+)/.exec(reply);
        if (!m) throw new Error(`Postfix sender did not queue the message: ${reply}`);
        return m[1]!;
      } finally {
        client.close();
      }
    },
    lines,
    waitLog: async (re, count = 1, ms = 15_000) => {
      const end = Date.now() + ms;
      for (;;) {
        const got = lines(re);
        if (got.length >= count) return got;
        if (Date.now() > end) throw new Error(`timeout waiting for ${count} x ${re} in the Postfix sender's log:\n${peer.log()}`);
        await sleep(50);
      }
    },
    mailq: () => execFileSync('/usr/sbin/postqueue', ['-c', configDir, '-p'], { encoding: 'utf8' }),
    flush: (id) => {
      execFileSync('/usr/sbin/postqueue', ['-c', configDir, '-i', id], { stdio: 'pipe' });
    },
    stop: async () => {
      peer.stop();
      await relay.close();
    },
  };
}
