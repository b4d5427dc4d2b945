/**
 * showq-service.ts — the queue listing for users who cannot read the queue,
 * as Postfix's showq(8) on `public/showq`: a UNIX-domain stream socket that
 * answers one request with the same bytes `postqueue -p` (or `-j`) prints
 * when it reads the spool itself.
 *
 * Protocol: the client sends one line, `compat` (mailq layout) or `json`
 * (postqueue -j), within 10 s; the service writes the listing and closes.
 * Anything else gets `error: unknown request` and a close.
 *
 * Contract:
 * - The socket lives in `queue_directory/public/` (mode 2710, mail_owner and
 *   setgid_group: queue-layout.ts); the socket itself is mode 0666 so that
 *   whoever may enter public/ — mail_owner, root and the setgid `postqueue`
 *   helper — may connect. Unprivileged users get in only through that helper.
 * - A stale socket left by a crash is replaced; `close()` removes it.
 * - At most 8 listings run at once; more connections are closed at once.
 * - The listing uses the same code and options as the CLI (queue/listing.ts
 *   with enable_long_queue_ids and empty_address_recipient of the running
 *   configuration), so the output is byte-identical to root's direct listing.
 *
 * Not here: the client (cli/postqueue.ts and native/postqueue.c).
 */
import { availableParallelism } from 'node:os';
import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../config/types.ts';
import { listQueue } from '../queue/listing.ts';
import { asctime } from '../queue/showq.ts';
import type { Spool } from '../queue/spool.ts';
import type { MailLog } from '../reports/maillog.ts';

const MAX_SESSIONS = 8;
const REQUEST_TIMEOUT_MS = 10_000;

export function showqSocketPath(queueDir: string): string {
  return join(queueDir, 'public', 'showq');
}

/** Read one request line (at most 64 bytes). */
function readRequest(socket: Socket): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    const done = (v: string | undefined): void => {
      clearTimeout(timer);
      socket.removeAllListeners('data');
      resolve(v);
    };
    const timer = setTimeout(() => done(undefined), REQUEST_TIMEOUT_MS);
    socket.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(buf.slice(0, nl).trim());
      else if (buf.length > 64) done(undefined);
    });
    socket.once('end', () => done(buf.trim()));
    socket.once('error', () => done(undefined));
  });
}

function write(socket: Socket, chunk: string): Promise<void> {
  return new Promise((resolve, reject) => socket.write(chunk, (err) => (err ? reject(err) : resolve())));
}

export class ShowqService {
  private server: Server | undefined;
  private sessions = 0;
  private readonly open = new Set<Socket>();

  constructor(
    private readonly spool: Spool,
    private config: Config,
    private readonly log: MailLog,
  ) {}

  get path(): string {
    return showqSocketPath(this.spool.dir);
  }

  /** New settings (reload). */
  update(config: Config): void {
    this.config = config;
  }

  async start(): Promise<void> {
    try {
      unlinkSync(this.path);
    } catch {
      // No stale socket.
    }
    const server = createServer((socket) => void this.serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => resolve());
    });
    server.on('error', (err) => this.log.warn('showq', `${this.path}: ${err.message}`));
    chmodSync(this.path, 0o666);
    this.server = server;
  }

  private async serve(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    this.open.add(socket);
    socket.once('close', () => this.open.delete(socket));
    if (this.sessions >= MAX_SESSIONS) {
      socket.destroy();
      return;
    }
    this.sessions++;
    try {
      const request = await readRequest(socket);
      if (request !== 'compat' && request !== 'json' && request !== '') {
        await write(socket, 'error: unknown request\n').catch(() => undefined);
        return;
      }
      const config = this.config;
      await listQueue(this.spool, {
        format: request === 'json' ? 'json' : 'compat',
        longQueueIds: config.getBool('enable_long_queue_ids'),
        asctime: (s) => asctime(s),
        emptyAddress: config.get('empty_address_recipient') || 'MAILER-DAEMON',
        write: (chunk) => write(socket, chunk),
        onWarning: (m) => this.log.warn('showq', m),
        // A big queue is read by listing threads (queue/listing.ts): the daemon's event loop
        // keeps serving mail while a user lists 100k messages.
        threads: Math.min(2, availableParallelism()),
      });
    } catch (err) {
      this.log.warn('showq', `listing failed: ${(err as Error).message}`);
    } finally {
      this.sessions--;
      socket.end();
    }
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    // A stop does not wait for a listing reader.
    for (const socket of this.open) socket.destroy();
    await closed;
    try {
      unlinkSync(this.path);
    } catch {
      // Gone already.
    }
  }
}
