/**
 * stsdane-lab.ts (scenario helper for dane-*.test.ts and sts-*.test.ts) —
 * the real daemon (qmgr-lab.ts: runMaster in-process, one delivery worker
 * thread) against a DANE / MTA-STS lab on loopback:
 *   - a test PKI made fresh (a root CA, certificates minted per test);
 *   - SMTP receivers on 127.0.0.x sharing one port (`smtp_tcp_port`), so the
 *     TLSA owner names are `_PORT._tcp.MXHOST`;
 *   - the lab DNS server (dns-server.ts) as the daemon's validating resolver
 *     (`sealpost_dns_resolvers`), the AD bit set for the names the test calls
 *     secure;
 *   - optionally the HTTPS policy host (sts-server.ts) on port 443 of its own
 *     127.83.x.y address; `mta-sts.<domain>` names point at it.
 * The zone is built after the receivers and the policy host are up (it needs
 * their port and address).
 *
 * Helpers: `send()` submits one message by SMTP and waits for its `status=`
 * line; `reasonInMailq()` reads the reason `mailq` prints for a queue ID.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import type { Zone } from '../harness/dns-server.ts';
import { makeCa, type CertAuthority } from '../harness/pki.ts';
import { startReceivers, type Receiver, type ReceiverOptions } from '../harness/smtp-receiver.ts';
import { startStsServer, type StsLab, type StsSite } from '../harness/sts-server.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';

export interface LabPki {
  readonly dir: string;
  readonly root: CertAuthority;
  cleanup(): void;
}

/** A fresh root CA in a temp dir. */
export function labPki(): LabPki {
  const t = tempDir('sealpost-stsdane-pki-');
  mkdirSync(join(t.dir, 'pki'));
  const dir = join(t.dir, 'pki');
  return { dir, root: makeCa(dir, 'root'), cleanup: t.cleanup };
}

export interface StsDaneLab {
  readonly lab: QmgrLab;
  readonly rx: readonly Receiver[];
  readonly port: number;
  readonly sts?: StsLab;
  /** Submit one message and wait for its status= line for `to`. */
  send(to: string, body?: string): Promise<{ readonly id: string; readonly line: string }>;
  /** The reason `mailq` prints for a queue ID (the parenthesised line). */
  reasonInMailq(id: string): Promise<string>;
  close(): Promise<void>;
}

export interface StsDaneLabOptions {
  readonly receivers: readonly ReceiverOptions[];
  /** The zone, given the receivers' port and the policy host's address. */
  readonly zone: (port: number, stsAddress: string) => Zone;
  readonly stsSites?: Record<string, StsSite>;
  readonly mainCf?: readonly string[];
  /** Start the daemon at once (default true). */
  readonly start?: boolean;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export async function stsDaneLab(opts: StsDaneLabOptions): Promise<StsDaneLab> {
  const rx = await startReceivers(opts.receivers);
  const port = rx[0]!.port;
  const sts = opts.stsSites ? await startStsServer({ sites: opts.stsSites }) : undefined;
  const lab = await qmgrLab({
    zone: opts.zone(port, sts?.address ?? '127.0.0.1'),
    receiverPort: port,
    mainCf: ['smtp_tls_loglevel = 1', 'smtp_dns_support_level = dnssec', ...(opts.mainCf ?? [])],
  });
  if (opts.start ?? true) await lab.start();
  return {
    lab, rx, port, ...(sts ? { sts } : {}),
    async send(to, body = 'Subject: lab\r\n\r\nhello\r\n') {
      const id = await lab.submit('alice@sender.test', [to], body);
      const [line] = await lab.waitLog(new RegExp(`: ${id}: to=<${esc(to)}>, .*status=`), 1, 20_000);
      return { id, line: line! };
    },
    async reasonInMailq(id) {
      for (let i = 0; i < 200; i++) {
        const q = await lab.cli(['mailq']);
        const lines = q.stdout.split('\n');
        const at = lines.findIndex((l) => l.startsWith(id));
        const m = at >= 0 ? /^\s*\((.*)\)$/.exec(lines[at + 1] ?? '') : null;
        if (m) return m[1]!;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${id} is not in mailq`);
    },
    async close() {
      await lab.cleanup();
      await Promise.all(rx.map((r) => r.close()));
      await sts?.close();
    },
  };
}

/** An RFC 8461 policy file. */
export function stsPolicy(mode: 'enforce' | 'testing' | 'none', mx: readonly string[], maxAge = 86400): string {
  return ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\n');
}
