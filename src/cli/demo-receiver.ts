/**
 * demo-receiver.ts — a small SMTP receiver for `sealpost demo`: one loopback
 * address, ESMTP with optional STARTTLS (RFC 3207), accepts every message and
 * remembers whether it came over TLS.
 *
 * Contract:
 * - `startDemoReceivers(specs)` binds every receiver on its own 127.0.0.x
 *   address and ONE shared ephemeral port (sealpost is then told
 *   `smtp_tcp_port = port`), retrying with a new port when another process
 *   holds it on one of the addresses.
 * - STARTTLS is offered only when the spec has a certificate; after the
 *   handshake the session starts over (RFC 3207 §4.2: forget the EHLO state)
 *   and pre-TLS bytes are discarded (§6).
 * - `close()` ends open sessions and releases the port.
 *
 * Not here: AUTH, size limits, dot-unstuffing exactness (the demo only
 * counts messages), anything the real smtpd does (src/intake/smtpd/).
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createSecureContext, TLSSocket } from 'node:tls';

export interface DemoReceiverSpec {
  readonly host: string;
  /** Name in the greeting and EHLO reply. */
  readonly name: string;
  /** PEM key and certificate: STARTTLS is offered. */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export interface DemoMessage {
  readonly from: string;
  readonly to: readonly string[];
  readonly tls: boolean;
}

export interface DemoReceiver {
  readonly host: string;
  readonly name: string;
  readonly messages: DemoMessage[];
}

export interface DemoReceivers {
  readonly port: number;
  readonly receivers: readonly DemoReceiver[];
  close(): Promise<void>;
}

const MAX_LINE = 4096;

/** One SMTP session; the line reader follows the socket across STARTTLS. */
function session(raw: Socket, spec: DemoReceiverSpec, rx: DemoReceiver, sockets: Set<Socket>): void {
  let socket: Socket = raw;
  let buf = '';
  let tls = false;
  let inData = false;
  let from = '';
  let to: string[] = [];
  const send = (text: string): void => {
    if (!socket.destroyed) socket.write(`${text}\r\n`);
  };
  const ehloLines = (): string[] => [
    `250-${spec.name}`,
    '250-PIPELINING',
    '250-SIZE 10240000',
    ...(spec.tls && !tls ? ['250-STARTTLS'] : []),
    '250-ENHANCEDSTATUSCODES',
    '250 8BITMIME',
  ];
  const onData = (chunk: Buffer): void => {
    buf += chunk.toString('latin1');
    for (;;) {
      if (inData) {
        const end = buf.indexOf('\r\n.\r\n');
        const atStart = buf.startsWith('.\r\n');
        if (end < 0 && !atStart) {
          if (buf.length > MAX_LINE) buf = buf.slice(-MAX_LINE);
          return;
        }
        buf = atStart ? buf.slice(3) : buf.slice(end + 5);
        inData = false;
        rx.messages.push({ from, to, tls });
        send(`250 2.0.0 Ok: queued as DEMO${rx.messages.length}`);
        from = '';
        to = [];
        continue;
      }
      const nl = buf.indexOf('\r\n');
      if (nl < 0) {
        if (buf.length > MAX_LINE) socket.destroy();
        return;
      }
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 2);
      if (command(line) === 'starttls') return;
    }
  };
  const command = (line: string): 'starttls' | undefined => {
    const verb = line.split(' ', 1)[0]!.toUpperCase();
    const arg = line.slice(verb.length).trim();
    switch (verb) {
      case 'EHLO':
        for (const l of ehloLines()) send(l);
        return undefined;
      case 'HELO':
        send(`250 ${spec.name}`);
        return undefined;
      case 'STARTTLS':
        if (!spec.tls || tls) {
          send('502 5.5.1 Error: command not implemented');
          return undefined;
        }
        send('220 2.0.0 Ready to start TLS');
        upgrade(spec.tls);
        return 'starttls';
      case 'MAIL':
        from = /<([^>]*)>/.exec(arg)?.[1] ?? '';
        send('250 2.1.0 Ok');
        return undefined;
      case 'RCPT':
        to.push(/<([^>]*)>/.exec(arg)?.[1] ?? '');
        send('250 2.1.5 Ok');
        return undefined;
      case 'DATA':
        inData = true;
        send('354 End data with <CR><LF>.<CR><LF>');
        return undefined;
      case 'RSET':
        from = '';
        to = [];
        send('250 2.0.0 Ok');
        return undefined;
      case 'NOOP':
        send('250 2.0.0 Ok');
        return undefined;
      case 'QUIT':
        send('221 2.0.0 Bye');
        socket.end();
        return undefined;
      default:
        send('502 5.5.2 Error: command not recognized');
        return undefined;
    }
  };
  const upgrade = (cred: { key: string; cert: string }): void => {
    socket.off('data', onData);
    // RFC 3207 §6: nothing received before the handshake is acted on after it.
    buf = '';
    const ts = new TLSSocket(socket, { isServer: true, secureContext: createSecureContext({ key: cred.key, cert: cred.cert }) });
    sockets.add(ts);
    ts.on('error', () => ts.destroy());
    ts.on('close', () => sockets.delete(ts));
    ts.once('secure', () => {
      tls = true;
      socket = ts;
      from = '';
      to = [];
      ts.on('data', onData);
    });
  };
  raw.on('data', onData);
  raw.on('error', () => raw.destroy());
  send(`220 ${spec.name} ESMTP sealpost demo receiver`);
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });
}

/** Bind every receiver on one shared port (see the header). */
export async function startDemoReceivers(specs: readonly DemoReceiverSpec[]): Promise<DemoReceivers> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const sockets = new Set<Socket>();
    const receivers: DemoReceiver[] = specs.map((s) => ({ host: s.host, name: s.name, messages: [] }));
    const servers = specs.map((spec, i) =>
      createServer((sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        session(sock, spec, receivers[i]!, sockets);
      }),
    );
    let port = 0;
    try {
      for (let i = 0; i < servers.length; i++) port = await listen(servers[i]!, specs[i]!.host, port);
    } catch (err) {
      await Promise.all(servers.map(closeServer));
      if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw err;
    }
    return {
      port,
      receivers,
      close: async () => {
        for (const s of sockets) s.destroy();
        await Promise.all(servers.map(closeServer));
      },
    };
  }
  throw new Error('cannot find a free port shared by the demo receivers');
}
