/**
 * qmgr-lab.ts (scenario helper for qmgr-*.test.ts) — a real sealpost daemon
 * run in-process with runMaster(): a temp config dir (master.cf with the
 * smtpd listener on 127.0.0.1:PORT and the delivery services), the loopback
 * test DNS server (sealpost_dns_resolvers), receivers on 127.0.0.2, .3 ...
 * sharing one port (smtp_tcp_port), the mail log in a file, and helpers to
 * submit by SMTP, run the CLI (mailq, postqueue -f) and wait for log lines.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMaster } from '../../src/daemon/main.ts';
import { MESSAGE_QUEUES, openSpool, type Spool } from '../../src/queue/spool.ts';
import { sealpost, tempDir, type RunResult } from '../harness/cli.ts';
import { startDnsServer, type DnsLab, type Zone } from '../harness/dns-server.ts';
import { freePort, SmtpClient } from '../unit/daemon/fixtures/instance.ts';

export const DELIVERY_SERVICES = [
  'smtp      unix  -       -       n       -       -       smtp',
  'relay     unix  -       -       n       -       -       smtp',
  '  -o syslog_name=sealpost/$service_name',
  'error     unix  -       -       n       -       -       error',
  'retry     unix  -       -       n       -       -       error',
  'discard   unix  -       -       n       -       -       discard',
].join('\n');

export interface QmgrLab {
  readonly dir: string;
  readonly configDir: string;
  readonly spool: Spool;
  readonly dns: DnsLab;
  /** The smtpd listener's port on 127.0.0.1. */
  readonly port: number;
  /** Submit one message by SMTP; returns the queue ID from the 250 reply. */
  submit(from: string, to: readonly string[], body?: string): Promise<string>;
  cli(args: readonly string[]): Promise<RunResult>;
  log(): string;
  /** Lines of the mail log without the syslog prefix up to `program[pid]: `, as `program: text`. */
  lines(re?: RegExp): string[];
  waitLog(re: RegExp, count?: number, ms?: number): Promise<string[]>;
  queued(): number;
  start(): Promise<void>;
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function qmgrLab(opts: { zone: Zone; receiverPort: number; mainCf?: readonly string[] }): Promise<QmgrLab> {
  const t = tempDir('sealpost-qmgr-scn-');
  const configDir = join(t.dir, 'etc');
  mkdirSync(configDir);
  const dns = await startDnsServer(opts.zone);
  const port = await freePort();
  const logFile = join(t.dir, 'maillog');
  writeFileSync(
    join(configDir, 'main.cf'),
    [
      `queue_directory = ${join(t.dir, 'queue')}`,
      `data_directory = ${join(t.dir, 'data')}`,
      'myhostname = mx.sealpost.test',
      'mydomain = sealpost.test',
      'inet_interfaces = 127.0.0.1',
      'mynetworks = 127.0.0.0/8',
      `maillog_file = ${logFile}`,
      `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
      `smtp_tcp_port = ${opts.receiverPort}`,
      'smtp_tls_security_level = none',
      'minimal_backoff_time = 1s',
      'maximal_backoff_time = 2s',
      'queue_run_delay = 1s',
    ]
      // A parameter the test sets replaces the lab default (no "overriding earlier entry" warnings).
      .filter((line) => !(opts.mainCf ?? []).some((m) => m.split('=')[0]!.trim() === line.split('=')[0]!.trim()))
      .concat(opts.mainCf ?? [], '')
      .join('\n'),
  );
  writeFileSync(join(configDir, 'master.cf'), `127.0.0.1:${port} inet n - n - - smtpd\n${DELIVERY_SERVICES}\n`);
  let signals: EventEmitter | undefined;
  let running: Promise<number> | undefined;
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  const lines = (re?: RegExp): string[] =>
    log()
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.replace(/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ (\S+?)\[\d+\]: /, '$1: '))
      .filter((l) => !re || re.test(l));
  const lab: QmgrLab = {
    dir: t.dir,
    configDir,
    get spool() {
      return openSpool(join(t.dir, 'queue'));
    },
    dns,
    port,
    submit: async (from, to, body = 'Subject: test\r\n\r\nhello\r\n') => {
      const { client } = await SmtpClient.connect(port);
      try {
        const reply = await client.send(from, to, body);
        const m = /queued as ([0-9A-Za-z]+)/.exec(reply);
        if (!m) throw new Error(`not queued: ${reply}`);
        return m[1]!;
      } finally {
        client.close();
      }
    },
    cli: (args) => {
      const [cmd, ...rest] = args;
      return sealpost([cmd!, '-c', configDir, ...rest], { env: { PATH: process.env.PATH, MAIL_CONFIG: configDir } });
    },
    log,
    lines,
    waitLog: async (re, count = 1, ms = 15_000) => {
      const end = Date.now() + ms;
      for (;;) {
        const got = lines(re);
        if (got.length >= count) return got;
        if (Date.now() > end) throw new Error(`timeout waiting for ${count} x ${re}:\n${log()}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    queued: () => {
      const spool = openSpool(join(t.dir, 'queue'));
      return MESSAGE_QUEUES.reduce((n, q) => n + spool.list(q).length, 0);
    },
    start: async () => {
      signals = new EventEmitter();
      let ready!: () => void;
      let failed!: (e: unknown) => void;
      const up = new Promise<void>((resolve, reject) => {
        ready = resolve;
        failed = reject;
      });
      running = runMaster({ configDir, defaultLogFile: logFile, signals, gracefulTimeoutMs: 2000, onReady: () => ready() });
      running.catch(failed);
      await up;
    },
    stop: async () => {
      if (!signals || !running) return;
      signals.emit('SIGTERM');
      await running;
      signals = undefined;
      running = undefined;
    },
    cleanup: async () => {
      await lab.stop();
      await dns.close();
      t.cleanup();
    },
  };
  return lab;
}
