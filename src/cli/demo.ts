/**
 * demo.ts — `sealpost demo [-k]`: the postmaster's story of MISSION.md played
 * on loopback with no setup, printed as a narrated transcript.
 *
 * What it does: a temp dir; a demo CA and two server certificates made with
 * the openssl CLI (EC P-256, milliseconds); a DNS server for the demo zone
 * (demo-dns.ts); three receivers on 127.0.0.2-4 sharing one port
 * (demo-receiver.ts): plain.demo (no STARTTLS), selfsigned.demo (self-signed
 * certificate), partner.demo (certificate from the demo CA); main.cf with
 * `smtp_tls_security_level = may` and a texthash: policy table (plain.demo
 * and selfsigned.demo `encrypt`, partner.demo `secure`); the real daemon
 * in-process (daemon/main.ts runMaster with an injected signal source); one
 * message per destination through `sealpost sendmail`; then the relevant log
 * lines, `mailq` with the waiting message and its reason, and `sealpost tls
 * explain bob@plain.demo`, and the verdicts of `sealpost tls-finger
 * selfsigned.demo`.
 *
 * Contract: finishes in a few seconds (each wait is bounded: WAIT_MS);
 * everything it started is stopped and the temp dir removed in every case
 * (unless -k, which keeps the dir and prints its path). Exit 0 when the story
 * went as told (two sent, one deferred), 1 otherwise (the transcript says
 * which step did not happen). openssl missing is a one-line UserError.
 *
 * Not here: a reload step or relayhost trap (MISSION.md steps 2 and 5 are
 * told, not played), network beyond 127.0.0.0/8.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { EX, UserError } from '../lib/errors.ts';
import type { CommandContext, CommandMain } from './context.ts';
import { getopt } from './getopt.ts';
import { startDemoDns, type DemoDns, type DemoZone } from './demo-dns.ts';
import { startDemoReceivers, type DemoReceivers } from './demo-receiver.ts';
import { isNotFound } from '../lib/fs-errors.ts';

const USAGE = 'usage: sealpost demo [-k]';

/** Upper bound for each wait (a delivery, the stop). */
const WAIT_MS = 15_000;

interface Destination {
  readonly domain: string;
  readonly host: string;
  readonly address: string;
  readonly recipient: string;
  readonly posture: string;
  readonly policy: string;
  /** The outcome the story expects. */
  readonly expect: 'sent' | 'deferred';
}

const DESTINATIONS: readonly Destination[] = [
  { domain: 'partner.demo', host: 'mx.partner.demo', address: '127.0.0.4', recipient: 'dave@partner.demo', posture: 'STARTTLS, certificate from the demo CA', policy: 'secure', expect: 'sent' },
  { domain: 'selfsigned.demo', host: 'mx.selfsigned.demo', address: '127.0.0.3', recipient: 'carol@selfsigned.demo', posture: 'STARTTLS, self-signed certificate', policy: 'encrypt', expect: 'sent' },
  { domain: 'plain.demo', host: 'mx.plain.demo', address: '127.0.0.2', recipient: 'bob@plain.demo', posture: 'no STARTTLS', policy: 'encrypt', expect: 'deferred' },
];

const SENDER = 'alice@sealpost.demo';

/** master.cf: no listener (mail comes in through sendmail/pickup), the delivery services. */
const MASTER_CF = [
  '# sealpost demo: mail enters through "sealpost sendmail"; no SMTP listener.',
  'smtp      unix  -       -       n       -       -       smtp',
  'relay     unix  -       -       n       -       -       smtp',
  'error     unix  -       -       n       -       -       error',
  'retry     unix  -       -       n       -       -       error',
  'discard   unix  -       -       n       -       -       discard',
  '',
].join('\n');

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, _out, stderr) => {
      if (!err) return resolve();
      if (isNotFound(err)) reject(new UserError('the demo needs the openssl command to make its certificates: install openssl'));
      else reject(new UserError(`openssl ${args[0]} failed: ${String(stderr).trim().split('\n')[0] ?? err.message}`));
    });
  });
}

interface DemoPki {
  readonly caCert: string;
  readonly partner: { key: string; cert: string };
  readonly selfSigned: { key: string; cert: string };
}

/** A demo CA, a CA-signed certificate for the partner MX, a self-signed one for selfsigned's MX. */
async function makeDemoPki(dir: string): Promise<DemoPki> {
  mkdirSync(dir);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const caCert = join(dir, 'ca.crt');
  const ext = join(dir, 'partner.ext');
  writeFileSync(ext, 'subjectAltName=DNS:mx.partner.demo\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n');
  await Promise.all([
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-subj', '/CN=sealpost demo CA', '-days', '2', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt'], dir),
    openssl(['req', '-new', ...ec, '-keyout', 'partner.key', '-subj', '/CN=mx.partner.demo', '-out', 'partner.csr'], dir),
    openssl(['req', '-x509', ...ec, '-keyout', 'selfsigned.key', '-subj', '/CN=mx.selfsigned.demo', '-days', '2', '-addext', 'subjectAltName=DNS:mx.selfsigned.demo', '-out', 'selfsigned.crt'], dir),
  ]);
  await openssl(['x509', '-req', '-in', 'partner.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', 'partner.crt'], dir);
  const pem = (f: string) => readFileSync(join(dir, f), 'utf8');
  return {
    caCert,
    partner: { key: pem('partner.key'), cert: pem('partner.crt') },
    selfSigned: { key: pem('selfsigned.key'), cert: pem('selfsigned.crt') },
  };
}

function demoZone(): DemoZone {
  const zone: Record<string, { MX?: Array<[number, string]>; A?: string[] }> = {};
  for (const d of DESTINATIONS) {
    zone[d.domain] = { MX: [[10, d.host]] };
    zone[d.host] = { A: [d.address] };
  }
  return zone;
}

function mainCf(dir: string, etc: string, dnsPort: number, smtpPort: number, caCert: string): string {
  return [
    '# sealpost demo: opportunistic TLS by default, stricter per destination.',
    'smtp_tls_security_level = may',
    `smtp_tls_policy_maps = texthash:${join(etc, 'tls_policy')}`,
    `smtp_tls_CAfile = ${caCert}`,
    'smtp_tls_loglevel = 1',
    '# The lab: a loopback DNS server and receivers on 127.0.0.2-4, one port.',
    `sealpost_dns_resolvers = 127.0.0.1:${dnsPort}`,
    `smtp_tcp_port = ${smtpPort}`,
    `queue_directory = ${join(dir, 'queue')}`,
    `data_directory = ${join(dir, 'data')}`,
    `maillog_file = ${join(dir, 'maillog')}`,
    'myhostname = mx.sealpost.demo',
    'mydomain = sealpost.demo',
    'myorigin = $mydomain',
    'inet_interfaces = loopback-only',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
    'queue_run_delay = 1s',
    '# One process: the SMTP client runs in the daemon\'s thread (no worker threads to start).',
    'sealpost_delivery_workers = 0',
    '',
  ].join('\n');
}

const POLICY_TABLE = ['# next hop        level', ...DESTINATIONS.map((d) => `${d.domain.padEnd(18)}${d.policy}`), ''].join('\n');

/** Run another sealpost command in-process and capture its output. */
async function runCommand(load: () => Promise<{ main: CommandMain }>, prog: string, argv: readonly string[], configDir: string, stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const o: Buffer[] = [];
  const e: Buffer[] = [];
  out.on('data', (c: Buffer) => o.push(c));
  err.on('data', (c: Buffer) => e.push(c));
  const ctx: CommandContext = {
    prog: `sealpost/${prog}`,
    argv,
    env: { PATH: process.env.PATH, MAIL_CONFIG: configDir, LOGNAME: 'alice', USER: 'alice' },
    stdin: Readable.from([Buffer.from(stdin)]),
    stdout: out,
    stderr: err,
  };
  let code: number;
  try {
    code = await (await load()).main(ctx);
  } catch (x) {
    err.write(`${ctx.prog}: fatal: ${(x as Error).message}\n`);
    code = (x as { exitCode?: number }).exitCode ?? 1;
  }
  await new Promise((r) => setImmediate(r));
  return { code, out: Buffer.concat(o).toString('utf8'), err: Buffer.concat(e).toString('utf8') };
}

/** Log lines without the `Mon dd hh:mm:ss host ` prefix. */
function logLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.replace(/^\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ /, ''));
}

async function waitFor(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!test()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

const indent = (text: string, by = '    '): string =>
  text
    .replace(/\n$/, '')
    .split('\n')
    .map((l) => (l === '' ? '' : by + l))
    .join('\n');

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'k', USAGE);
  if (opts.rest.length > 0) throw new UserError(`unexpected argument "${opts.rest[0]}"\n${USAGE}`, EX.USAGE);
  const keep = opts.has('k');
  const say = (text = ''): void => {
    ctx.stdout.write(`${text}\n`);
  };
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-demo-'));
  let dns: DemoDns | undefined;
  let receivers: DemoReceivers | undefined;
  let signals: EventEmitter | undefined;
  let running: Promise<number> | undefined;
  let ok = true;
  try {
    say("sealpost demo — the postmaster's story (MISSION.md), played on loopback");
    say();
    // 1. The lab.
    const pki = await makeDemoPki(join(dir, 'pki'));
    dns = await startDemoDns(demoZone());
    const tlsOf = (d: Destination) =>
      d.domain === 'partner.demo' ? pki.partner : d.domain === 'selfsigned.demo' ? pki.selfSigned : undefined;
    receivers = await startDemoReceivers(DESTINATIONS.map((d) => ({ host: d.address, name: d.host, ...(tlsOf(d) ? { tls: tlsOf(d)! } : {}) })));
    say('1. The lab');
    say(`   a demo CA, a DNS server on 127.0.0.1:${dns.port}, and three receiving MX hosts on port ${receivers.port}:`);
    for (const d of DESTINATIONS) say(`     ${d.domain.padEnd(16)} MX ${`${d.host}[${d.address}]`.padEnd(30)} ${d.posture}`);
    say();

    // 2. The configuration.
    const etc = join(dir, 'etc');
    mkdirSync(etc);
    const maillog = join(dir, 'maillog');
    const cf = mainCf(dir, etc, dns.port, receivers.port, pki.caCert);
    writeFileSync(join(etc, 'main.cf'), cf);
    writeFileSync(join(etc, 'master.cf'), MASTER_CF);
    writeFileSync(join(etc, 'tls_policy'), POLICY_TABLE);
    say('2. The configuration: TLS when offered, mandatory for the partners');
    say(`   ${join(etc, 'main.cf')} (TLS part):`);
    say(indent(cf.split('\n').filter((l) => l.startsWith('smtp_tls_')).join('\n'), '     '));
    say(`   ${join(etc, 'tls_policy')} (keyed by next hop):`);
    say(indent(POLICY_TABLE.split('\n').filter((l) => l !== '' && !l.startsWith('#')).join('\n'), '     '));
    say();

    // 3. The daemon and the mail.
    signals = new EventEmitter();
    let ready!: () => void;
    let failed!: (e: unknown) => void;
    const up = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    const { runMaster } = await import('../daemon/main.ts');
    running = runMaster({ configDir: etc, defaultLogFile: maillog, signals, gracefulTimeoutMs: 1000, pickupIntervalMs: 200, onReady: () => ready() });
    running.catch(failed);
    await up;
    say('3. The daemon runs; one message per destination goes in with sendmail');
    for (const d of DESTINATIONS) {
      const message = `From: Alice <${SENDER}>\nTo: <${d.recipient}>\nSubject: quarterly report for ${d.domain}\n\nHello from the sealpost demo.\n`;
      const r = await runCommand(() => import('./sendmail.ts'), 'sendmail', ['-C', etc, '-f', SENDER, d.recipient], etc, message);
      say(`   $ sealpost sendmail -f ${SENDER} ${d.recipient}   → exit ${r.code}${r.err ? `: ${r.err.trim()}` : ''}`);
      if (r.code !== 0) ok = false;
    }
    say();

    // 4. The log.
    const outcome = (d: Destination) => new RegExp(`to=<${d.recipient.replace(/\./g, '\\.')}>.* status=${d.expect}`);
    const arrived = await waitFor(() => {
      const lines = logLines(maillog);
      return DESTINATIONS.every((d) => lines.some((l) => outcome(d).test(l)));
    }, WAIT_MS);
    say('4. The mail log (TLS connections and deliveries)');
    const shown = logLines(maillog).filter((l) => /TLS connection established|TLS is required|certificate verification failed| to=</.test(l));
    say(indent(shown.join('\n') || '(nothing logged)', '   '));
    if (!arrived) {
      ok = false;
      for (const d of DESTINATIONS) {
        if (!logLines(maillog).some((l) => outcome(d).test(l))) say(`   !! expected ${d.recipient} to be ${d.expect} within ${WAIT_MS / 1000}s; it was not`);
      }
    }
    say();

    // 5. mailq.
    const q = await runCommand(() => import('./postqueue.ts'), 'postqueue', ['-c', etc, '-p'], etc);
    say('5. $ sealpost mailq — the plain.demo message waits; it is never sent in the clear');
    say(indent(q.out + q.err, '   '));
    if (!/TLS is required, but was not offered by host mx\.plain\.demo/.test(q.out)) ok = false;
    say();

    // 6. tls explain.
    const x = await runCommand(() => import('./tls-explain.ts'), 'tls', ['explain', '-c', etc, 'bob@plain.demo'], etc);
    say('6. $ sealpost tls explain bob@plain.demo — why');
    say(indent(x.out + x.err, '   '));
    say();

    // 7. tls-finger: what each level would do at the self-signed server.
    const f = await runCommand(() => import('./tls-finger.ts'), 'tls-finger', ['-t', '5', 'selfsigned.demo'], etc);
    say('7. $ sealpost tls-finger selfsigned.demo — what each level would do there (excerpt)');
    const fl = f.out.split('\n');
    const from = fl.findIndex((l) => l.startsWith('verdicts'));
    const excerpt = [...fl.filter((l) => /^(TLS: |chain trust: |\s+sha256 certificate fingerprint: )/.test(l)).map((l) => l.trim()), ...(from >= 0 ? fl.slice(from) : [])];
    say(indent((excerpt.join('\n').trim() || f.out + f.err), '   '));
    say();

    say('8. What the receivers got');
    for (const [i, d] of DESTINATIONS.entries()) {
      const got = receivers.receivers[i]!.messages;
      const tls = got.filter((m) => m.tls).length;
      say(`   ${d.host.padEnd(20)} ${got.length} message${got.length === 1 ? '' : 's'}${got.length > 0 ? ` (${tls} over TLS)` : ''}`);
      if (d.expect === 'deferred' && got.length > 0) ok = false;
    }
    say();
  } finally {
    if (signals && running) {
      signals.emit('SIGTERM');
      const stopped = await Promise.race([running.then(() => true, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), WAIT_MS).unref())]);
      if (!stopped) {
        signals.emit('SIGTERM'); // a second stop signal: stop at once
        ok = false;
      }
    }
    await receivers?.close();
    await dns?.close();
    if (keep) say(`kept ${dir} (main.cf in ${join(dir, 'etc')}, the log in ${join(dir, 'maillog')})`);
    else {
      rmSync(dir, { recursive: true, force: true });
      say(`stopped the daemon, the receivers and the DNS server; removed ${dir} (-k keeps it)`);
    }
  }
  say(ok ? 'The story went as told: partner.demo Verified, selfsigned.demo encrypted but Untrusted, plain.demo waits.' : 'The story did not go as told: see the !! lines above.');
  return ok ? EX.OK : 1;
}
