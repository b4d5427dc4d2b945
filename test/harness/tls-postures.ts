/**
 * tls-postures.ts (test harness) — SMTP receivers that each hold one TLS
 * posture, for scenarios that compare two senders (sealpost and Postfix) on
 * the same server behaviour:
 *
 *   nostarttls   EHLO without STARTTLS (plaintext only)
 *   refuse       STARTTLS advertised, answered `454 4.7.0 TLS not available due to local problem`
 *   selfsigned   a self-signed certificate
 *   valid        a certificate from the test CA naming the MX host
 *   wrongname    a CA-signed certificate for another name
 *   expired      a CA-signed certificate for the MX host that has expired
 *   domainonly   a CA-signed certificate naming only the recipient domain
 *   wild         a CA-signed `*.<domain>` certificate
 *   anon         anonymous (aNULL) cipher suites only, TLS ≤ 1.2
 *   reset        `220 2.0.0 Ready to start TLS`, then a TCP reset when the ClientHello arrives
 *                (a reset before the client sent it is a race: Node reports it as a close,
 *                docs/differences-from-postfix.md)
 *   garbage      `220 ...`, then `garbage\r\n` in answer to the ClientHello (not TLS)
 *   inject       `220 ...\r\ngarbage\r\n` in one write, then a real handshake (RFC 3207 §6:
 *                what came before the handshake must be discarded)
 *   closemid     `220 ...`, reads the ClientHello, sends half a TLS record header, closes
 *   stall        `220 ...`, then silence (the client's starttls timeout)
 *   tls13only    TLS 1.3 only
 *   tls12only    TLS ≤ 1.2 only
 *   nocipher     TLS ≤ 1.2 with eNULL cipher suites only (no client offers them)
 *
 * Contract: `startPostureReceivers(specs, certs)` binds one receiver per spec
 * (an id and a kind) on its own address 127.<rand>.1.2, .1.3, ... sharing ONE
 * free port (the lab convention: `smtp_tcp_port = P` on both senders),
 * retrying with other addresses when a port is taken. Each receiver accepts any envelope and records every
 * accepted message: recipients, the client's EHLO name (which sender it was)
 * and whether it came over TLS. `makePostureCerts(dir, names)` makes the
 * certificates (pki.ts: one CA for the right-name, expired, self-signed and
 * wrong-name certificates, one per wildcard and domain-only set) and the CA
 * bundle both senders trust.
 *
 * Not here: the DNS zone, the senders, the comparison (the scenario tests).
 * The SMTP side is deliberately minimal (EHLO/HELO, STARTTLS, MAIL, RCPT,
 * DATA, RSET, NOOP, QUIT); scripted replies live in smtp-receiver.ts.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext, type SecureContextOptions } from 'node:tls';
import { join } from 'node:path';
import { makePki, type ServerCert, type TestPki } from './pki.ts';

export const RECEIVER_KINDS = [
  'nostarttls', 'refuse', 'selfsigned', 'valid', 'wrongname', 'expired', 'domainonly', 'wild', 'anon',
  'reset', 'garbage', 'inject', 'closemid', 'stall', 'tls13only', 'tls12only', 'nocipher',
] as const;
export type ReceiverKind = (typeof RECEIVER_KINDS)[number];

type AfterReady = 'handshake' | 'inject' | 'reset' | 'garbage' | 'closemid' | 'stall';

interface KindSpec {
  readonly starttls: 'none' | 'refuse' | 'offer';
  readonly after: AfterReady;
  readonly cert: 'server' | 'selfSigned' | 'expired' | 'wrongName' | 'wild' | 'domain';
  readonly tls?: Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers'>;
}

const SPECS: Readonly<Record<ReceiverKind, KindSpec>> = {
  nostarttls: { starttls: 'none', after: 'handshake', cert: 'server' },
  refuse: { starttls: 'refuse', after: 'handshake', cert: 'server' },
  selfsigned: { starttls: 'offer', after: 'handshake', cert: 'selfSigned' },
  valid: { starttls: 'offer', after: 'handshake', cert: 'server' },
  wrongname: { starttls: 'offer', after: 'handshake', cert: 'wrongName' },
  expired: { starttls: 'offer', after: 'handshake', cert: 'expired' },
  domainonly: { starttls: 'offer', after: 'handshake', cert: 'domain' },
  wild: { starttls: 'offer', after: 'handshake', cert: 'wild' },
  anon: { starttls: 'offer', after: 'handshake', cert: 'server', tls: { maxVersion: 'TLSv1.2', ciphers: 'aNULL:@SECLEVEL=0' } },
  reset: { starttls: 'offer', after: 'reset', cert: 'server' },
  garbage: { starttls: 'offer', after: 'garbage', cert: 'server' },
  inject: { starttls: 'offer', after: 'inject', cert: 'server' },
  closemid: { starttls: 'offer', after: 'closemid', cert: 'server' },
  stall: { starttls: 'offer', after: 'stall', cert: 'server' },
  tls13only: { starttls: 'offer', after: 'handshake', cert: 'server', tls: { minVersion: 'TLSv1.3' } },
  tls12only: { starttls: 'offer', after: 'handshake', cert: 'server', tls: { maxVersion: 'TLSv1.2' } },
  nocipher: { starttls: 'offer', after: 'handshake', cert: 'server', tls: { maxVersion: 'TLSv1.2', ciphers: 'eNULL:!aNULL:@SECLEVEL=0' } },
};

export interface PostureCerts {
  readonly pki: TestPki;
  readonly wild: ServerCert;
  readonly domain: ServerCert;
  /** Every test CA, concatenated: smtp_tls_CAfile for both senders. */
  readonly caBundle: string;
  /** The certificate file a receiver kind presents. */
  certOf(kind: ReceiverKind): ServerCert;
}

/**
 * Certificates under `dir`: `right` = names of the `server`/`expired`
 * certificates (first = CN and the self-signed one's name), `wild` and
 * `domain` the names of the wildcard and domain-only certificates.
 */
export function makePostureCerts(dir: string, names: { right: readonly string[]; wild: readonly string[]; domain: readonly string[] }): PostureCerts {
  const pki = makePki(dir, names.right);
  mkdirSync(join(dir, 'wild'));
  const wild = makePki(join(dir, 'wild'), names.wild);
  mkdirSync(join(dir, 'domain'));
  const domain = makePki(join(dir, 'domain'), names.domain);
  const caBundle = join(dir, 'ca-bundle.pem');
  writeFileSync(caBundle, [pki.caCert, wild.caCert, domain.caCert].map((f) => readFileSync(f, 'utf8')).join(''));
  const files: Record<KindSpec['cert'], ServerCert> = {
    server: pki.server, selfSigned: pki.selfSigned, expired: pki.expired, wrongName: pki.wrongName, wild: wild.server, domain: domain.server,
  };
  return { pki, wild: wild.server, domain: domain.server, caBundle, certOf: (k) => files[SPECS[k].cert] };
}

export interface PostureMessage {
  readonly rcpt: readonly string[];
  /** The client's EHLO name: which sender delivered it. */
  readonly helo: string;
  readonly tls: boolean;
}

export interface PostureReceiver {
  readonly kind: ReceiverKind;
  readonly host: string;
  readonly port: number;
  readonly messages: readonly PostureMessage[];
  close(): Promise<void>;
}

/** Line reader over the plaintext socket, then the TLS socket. */
class Lines {
  private buf = '';
  private waiting: (() => void) | undefined;
  closed = false;
  private sock: Socket | undefined;
  private readonly onData = (c: Buffer): void => {
    this.buf += c.toString('latin1');
    this.wake();
  };
  private readonly onEnd = (): void => {
    this.closed = true;
    this.wake();
  };

  attach(s: Socket): void {
    this.sock = s;
    s.on('data', this.onData);
    s.on('end', this.onEnd);
    s.on('close', this.onEnd);
    s.on('error', this.onEnd);
  }

  /** Stop reading this socket; drop what it sent before TLS (RFC 3207 §6). */
  detach(): void {
    this.sock?.off('data', this.onData);
    this.sock?.off('end', this.onEnd);
    this.sock?.off('close', this.onEnd);
    this.buf = '';
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async line(): Promise<string | undefined> {
    for (;;) {
      const i = this.buf.indexOf('\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        return l;
      }
      if (this.closed) return undefined;
      await new Promise<void>((r) => (this.waiting = r));
    }
  }

  /** Message data up to the lone dot (content is not kept). */
  async data(): Promise<boolean> {
    for (;;) {
      const l = await this.line();
      if (l === undefined) return false;
      if (l === '.') return true;
    }
  }
}

/**
 * A broken handshake: `220 Ready to start TLS`, then what the posture does
 * instead of TLS. Listeners are in place before the 220 leaves, so the
 * client's ClientHello cannot arrive unseen. Resolves when the socket closes.
 */
function breakHandshake(raw: Socket, after: Exclude<AfterReady, 'handshake' | 'inject'>): Promise<void> {
  const closed = new Promise<void>((r) => raw.once('close', () => r()));
  if (after === 'closemid') {
    // A TLS handshake record header announcing 64 bytes, two of them, then FIN.
    raw.once('data', () => raw.end(Buffer.from([0x16, 0x03, 0x03, 0x00, 0x40, 0x02, 0x00])));
  } else if (after === 'garbage') {
    raw.once('data', () => raw.write('garbage\r\n'));
  } else if (after === 'reset') {
    raw.once('data', () => raw.resetAndDestroy());
  }
  raw.on('data', () => undefined); // stall and the rest: read and drop
  // stall: say nothing after the 220; the client gives up (smtp_starttls_timeout) and closes.
  raw.write('220 2.0.0 Ready to start TLS\r\n');
  return closed;
}

async function serve(raw: Socket, kind: ReceiverKind, ctx: SecureContext, messages: PostureMessage[], gate: Promise<void>): Promise<void> {
  const spec = SPECS[kind];
  const name = `${kind}.receiver.test`;
  const lines = new Lines();
  lines.attach(raw);
  let sock: Socket = raw;
  let tls = false;
  let helo = '';
  let rcpt: string[] = [];
  const send = (t: string): void => {
    if (!sock.destroyed) sock.write(`${t}\r\n`);
  };
  await gate;
  send(`220 ${name} ESMTP posture ${kind}`);
  for (;;) {
    const line = await lines.line();
    if (line === undefined) return;
    const verb = line.split(' ')[0]!.toUpperCase();
    if (verb === 'EHLO') {
      helo = line.slice(5).trim();
      const ext = ['PIPELINING', 'SIZE 10240000', ...(spec.starttls !== 'none' && !tls ? ['STARTTLS'] : []), 'ENHANCEDSTATUSCODES', '8BITMIME'];
      send([name, ...ext].map((l, i, a) => `250${i < a.length - 1 ? '-' : ' '}${l}`).join('\r\n'));
    } else if (verb === 'HELO') {
      helo = line.slice(5).trim();
      send(`250 ${name}`);
    } else if (verb === 'STARTTLS' && spec.starttls === 'refuse') {
      send('454 4.7.0 TLS not available due to local problem');
    } else if (verb === 'STARTTLS' && spec.starttls === 'offer' && !tls) {
      lines.detach();
      if (spec.after !== 'handshake' && spec.after !== 'inject') return breakHandshake(raw, spec.after);
      // inject: non-SMTP bytes right behind the 220, in the same write.
      send(spec.after === 'inject' ? '220 2.0.0 Ready to start TLS\r\ngarbage' : '220 2.0.0 Ready to start TLS');
      const ts = new TLSSocket(raw, { isServer: true, secureContext: ctx });
      const ok = await new Promise<boolean>((res) => {
        ts.once('secure', () => res(true));
        ts.once('error', () => res(false));
        ts.once('close', () => res(false));
      });
      if (!ok) {
        raw.destroy();
        return;
      }
      sock = ts;
      tls = true;
      helo = '';
      lines.attach(ts);
    } else if (verb === 'MAIL') {
      rcpt = [];
      send('250 2.1.0 Ok');
    } else if (verb === 'RCPT') {
      rcpt.push(/<([^>]*)>/.exec(line)?.[1] ?? '');
      send('250 2.1.5 Ok');
    } else if (verb === 'DATA') {
      send('354 End data with <CR><LF>.<CR><LF>');
      if (!(await lines.data())) return;
      messages.push({ rcpt, helo, tls });
      send(`250 2.0.0 Ok: queued as ${kind.toUpperCase()}${messages.length}`);
      rcpt = [];
    } else if (verb === 'RSET' || verb === 'NOOP') {
      send('250 2.0.0 Ok');
    } else if (verb === 'QUIT') {
      send('221 2.0.0 Bye');
      sock.end();
      return;
    } else {
      send('502 5.5.2 Error: command not recognized');
    }
  }
}

async function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** A TLS context per kind, made once: many receivers may share a kind. */
function contextOf(kind: ReceiverKind, certs: PostureCerts): SecureContext {
  const cert = certs.certOf(kind);
  return createSecureContext({ key: readFileSync(cert.key), cert: readFileSync(cert.cert), ...(SPECS[kind].tls ?? {}) });
}

function startOne(kind: ReceiverKind, ctx: SecureContext, gate: Promise<void>): { server: Server; messages: PostureMessage[]; sockets: Set<Socket> } {
  const messages: PostureMessage[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    serve(s, kind, ctx, messages, gate).catch(() => s.destroy());
  });
  return { server, messages, sockets };
}

export interface ReceiverSpec {
  /** The caller's name for this receiver (e.g. one per test case). */
  readonly id: string;
  readonly kind: ReceiverKind;
}

/** The i-th loopback address of a 127.R.x.y block (x.y from .1.2 on, 250 per x). */
const addressOf = (net: number, i: number): string => `127.${net}.${1 + Math.floor(i / 250)}.${2 + (i % 250)}`;

/**
 * One receiver per spec, each on its own loopback address (127.R.1.2, .1.3,
 * ...), all on ONE free port; another block is tried when an address/port
 * pair is taken. Own addresses keep what a sender remembers per server (TLS
 * sessions, dead destinations) apart between receivers of the same kind.
 * `gate`: every greeting waits for it (connections are accepted and held), so
 * a test can queue all its mail first and let the deliveries begin together.
 */
export async function startPostureReceivers(
  specs: readonly ReceiverSpec[],
  certs: PostureCerts,
  opts: { readonly gate?: Promise<void> } = {},
): Promise<Map<string, PostureReceiver>> {
  const contexts = new Map<ReceiverKind, SecureContext>();
  for (const { kind } of specs) if (!contexts.has(kind)) contexts.set(kind, contextOf(kind, certs));
  for (let attempt = 0; attempt < 20; attempt++) {
    const net = 10 + Math.floor(Math.random() * 200);
    const started: Array<ReturnType<typeof startOne> & ReceiverSpec & { host: string }> = [];
    let port = 0;
    try {
      for (const [i, spec] of specs.entries()) {
        const one = { ...startOne(spec.kind, contexts.get(spec.kind)!, opts.gate ?? Promise.resolve()), ...spec, host: addressOf(net, i) };
        started.push(one);
        port = await listen(one.server, one.host, port);
      }
    } catch (err) {
      await Promise.all(started.map((s) => new Promise<void>((r) => (s.server.listening ? s.server.close(() => r()) : r()))));
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      continue;
    }
    return new Map(
      started.map((s) => [
        s.id,
        {
          kind: s.kind,
          host: s.host,
          port,
          messages: s.messages,
          close: () =>
            new Promise<void>((r) => {
              for (const x of s.sockets) x.destroy();
              s.server.close(() => r());
            }),
        },
      ]),
    );
  }
  throw new Error('startPostureReceivers: no free port shared by all addresses');
}
