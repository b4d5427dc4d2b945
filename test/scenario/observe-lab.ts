/**
 * observe-lab.ts (scenario helper for the observability scenarios) — a real
 * sealpost daemon (qmgr-lab.ts: runMaster in this process, the loopback DNS
 * server, receivers sharing one port) with metrics and the status page on a
 * loopback port, and three kinds of destination:
 *
 *   secure.test   mx.secure.test  127.0.0.2  STARTTLS with a certificate of the
 *                                            test CA; a policy-table entry `secure`
 *                                            (smtp_tls_CAfile = that CA): Verified
 *   plain.test    mx.plain.test   127.0.0.3  no STARTTLS; the main.cf default `may`
 *                                            sends in plaintext
 *   defer.test    mx.defer.test   127.0.0.4  `451 4.3.0` to every RCPT: deferred (and
 *                                            `421` to RSET: a new connection each time)
 *
 * A scenario adds its own destinations: receivers on 127.0.0.5 and up, zone
 * entries and policy-table entries; for MTA-STS, `stsSites` starts the lab
 * policy host (test/harness/sts-server.ts, port 443 of its own loopback
 * address, as stsdane-lab.ts does) and `extraZone` as a function is given
 * its address for the `mta-sts.DOMAIN` A records.
 *
 * Retries are far away (backoff 300 s), so every deferred message is deferred
 * exactly once during a test. `relayRun()` submits messages by SMTP and
 * waits until each has its status line in the mail log.
 *
 * Not here: the assertions (each scenario file checks its own output).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir, type RunResult } from '../harness/cli.ts';
import type { Zone } from '../harness/dns-server.ts';
import { makePki, type TestPki } from '../harness/pki.ts';
import { startReceivers, type Receiver, type ReceiverOptions } from '../harness/smtp-receiver.ts';
import { startStsServer, type StsLab, type StsSite } from '../harness/sts-server.ts';
import { freePort } from '../unit/daemon/fixtures/instance.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';

export const DEFER_REPLY = '451 4.3.0 mailbox temporarily unavailable';

export interface ObserveLab {
  readonly lab: QmgrLab;
  readonly pki: TestPki;
  readonly secure: Receiver;
  readonly plain: Receiver;
  readonly defer: Receiver;
  /** The MTA-STS policy host, when `stsSites` was given. */
  readonly sts?: StsLab;
  /** The listener: http://127.0.0.1:PORT */
  readonly url: string;
  /** SHA-256 fingerprint of mx.secure.test's certificate (`AA:BB:...`). */
  readonly secureFingerprint: string;
  /** Text of /metrics. */
  metrics(): Promise<string>;
  /** `sealpost tls SUB -c CONFIG_DIR ARGS...` (report, proof). */
  tls(sub: string, args: readonly string[]): Promise<RunResult>;
  cleanup(): Promise<void>;
}

export interface ObserveLabOptions {
  readonly mainCf?: readonly string[];
  /** More receivers (127.0.0.5 and up), on the same port; given the lab's PKI for their certificates. */
  readonly extraReceivers?: (pki: TestPki) => readonly ReceiverOptions[];
  /** More zone entries; a function is given the MTA-STS policy host's address (127.0.0.1 without `stsSites`). */
  readonly extraZone?: Zone | ((stsAddress: string) => Zone);
  /** MTA-STS policy sites (`mta-sts.DOMAIN` → certificate and policy), served by one lab policy host; given the lab's PKI. */
  readonly stsSites?: (pki: TestPki) => Record<string, StsSite>;
  /** More policy-table entries (`{partner.test = secure}`) besides `{secure.test = secure}`; a function is called after the receivers started. */
  readonly policyEntries?: readonly string[] | (() => readonly string[]);
}

export function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}

export async function observeLab(opts: ObserveLabOptions = {}): Promise<ObserveLab & { readonly extra: Receiver[] }> {
  const certs = tempDir('sealpost-observe-pki-');
  const pki = makePki(certs.dir, ['mx.secure.test']);
  const receivers = await startReceivers([
    { host: '127.0.0.2', name: 'mx.secure.test', tls: { key: pki.server.key, cert: pki.server.cert } },
    { host: '127.0.0.3', name: 'mx.plain.test' },
    // Its RSET is refused, so its connections are never cached: every deferral here is made on a
    // fresh connection (the counts of these tests rely on it). Deferrals on a reused connection:
    // delivery-smtp-reuse-deferred.test.ts.
    { host: '127.0.0.4', name: 'mx.defer.test', replies: { rcpt: () => DEFER_REPLY, rset: () => '421 4.3.2 closing' } },
    ...(opts.extraReceivers?.(pki) ?? []),
  ]);
  const [secure, plain, defer, ...extra] = receivers as [Receiver, Receiver, Receiver, ...Receiver[]];
  const sts = opts.stsSites ? await startStsServer({ sites: opts.stsSites(pki) }) : undefined;
  const httpPort = await freePort();
  const zone: Zone = {
    'secure.test': { MX: [[10, 'mx.secure.test']] as Array<[number, string]> },
    'mx.secure.test': { A: ['127.0.0.2'] },
    'plain.test': { MX: [[10, 'mx.plain.test']] as Array<[number, string]> },
    'mx.plain.test': { A: ['127.0.0.3'] },
    'defer.test': { MX: [[10, 'mx.defer.test']] as Array<[number, string]> },
    'mx.defer.test': { A: ['127.0.0.4'] },
    ...(typeof opts.extraZone === 'function' ? opts.extraZone(sts?.address ?? '127.0.0.1') : opts.extraZone ?? {}),
  };
  const lab = await qmgrLab({
    zone,
    receiverPort: secure.port,
    mainCf: [
      'smtp_tls_security_level = may',
      `smtp_tls_CAfile = ${pki.caCert}`,
      `smtp_tls_policy_maps = inline:{ ${['{secure.test = secure}', ...(typeof opts.policyEntries === 'function' ? opts.policyEntries() : opts.policyEntries ?? [])].join(', ')} }`,
      `sealpost_http_listen = 127.0.0.1:${httpPort}`,
      'minimal_backoff_time = 300s',
      'maximal_backoff_time = 600s',
      'queue_run_delay = 300s',
      ...(opts.mainCf ?? []),
    ],
  });
  const url = `http://127.0.0.1:${httpPort}`;
  return {
    lab,
    pki,
    secure,
    plain,
    defer,
    extra,
    ...(sts ? { sts } : {}),
    url,
    secureFingerprint: fingerprintOf(pki.server.cert),
    metrics: async () => {
      const res = await fetch(`${url}/metrics`);
      if (res.status !== 200) throw new Error(`/metrics: HTTP ${res.status}`);
      return res.text();
    },
    tls: (sub, args) => sealpost(['tls', sub, '-c', lab.configDir, ...args], { env: { PATH: process.env.PATH, MAIL_CONFIG: lab.configDir } }),
    cleanup: async () => {
      await lab.cleanup();
      await Promise.all(receivers.map((r) => r.close()));
      await sts?.close();
      certs.cleanup();
    },
  };
}

export interface RunPlan {
  readonly secure: number;
  readonly plain: number;
  readonly defer: number;
}

/** The recipient domains of a plan, interleaved (secure, plain, defer, secure, ...). */
export function planRecipients(plan: RunPlan): string[] {
  const left = { ...plan };
  const out: string[] = [];
  for (let i = 0; out.length < plan.secure + plan.plain + plan.defer; i++) {
    for (const d of ['secure', 'plain', 'defer'] as const) {
      if (left[d] > 0) {
        out.push(`u${i}@${d}.test`);
        left[d]--;
      }
    }
  }
  return out;
}

/** Submit one message per recipient of `plan` (returns the queue IDs); `onEach` runs after each submission. */
export async function submitPlan(lab: QmgrLab, plan: RunPlan, onEach?: (n: number) => Promise<void>): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  let n = 0;
  for (const rcpt of planRecipients(plan)) {
    const messageId = `<run-${rcpt.replace('@', '.')}@origin.test>`;
    ids.set(await lab.submit('sender@origin.test', [rcpt], `Message-ID: ${messageId}\r\nSubject: run ${rcpt}\r\n\r\nhello\r\n`), rcpt);
    await onEach?.(++n);
  }
  return ids;
}

/** Wait until the log has a status line for every recipient of the plan. */
export async function waitOutcomes(lab: QmgrLab, plan: RunPlan): Promise<void> {
  await lab.waitLog(/: to=<u\d+@secure\.test>, .*status=sent/, plan.secure, 60_000);
  await lab.waitLog(/: to=<u\d+@plain\.test>, .*status=sent/, plan.plain, 60_000);
  await lab.waitLog(/: to=<u\d+@defer\.test>, .*status=deferred/, plan.defer, 60_000);
}

export function labDataDir(lab: QmgrLab): string {
  return join(lab.dir, 'data');
}
