/**
 * service.ts — TLS-RPT in the daemon: the store subscribed to the event
 * stream, the daily close, discovery and report delivery on a timer, and
 * `sealpost tlsrpt send --now` requests. The same class runs in the CLI when
 * no daemon owns the store.
 *
 * Contract:
 * - `start()` takes the store lock (lock.ts), recovers the store and, when
 *   `sealpost_tlsrpt = yes`, subscribes it to the bus. With `daemon: true` it
 *   also runs `tick()` every `tickMs` and serves request files in
 *   `$data_directory/tlsrpt/requests/` (`NAME.req` in, `NAME.done` out).
 *   `stop()` undoes all of it (pending counts are written first).
 * - `tick()`: close the day when midnight has passed; for each closed period
 *   whose `notBefore` has come, and each policy domain in it not yet handled:
 *   look up `_smtp._tls.<domain>` — no record: nothing is sent, the domain is
 *   handled; a record: one report (report.ts) per rua URI goes to the outbox;
 *   a DNS tempfail: tried again at the next tick, for at most
 *   `sealpost_tlsrpt_retry_lifetime` after the period closed. A period whose
 *   domains are all handled is removed. Then the outbox delivers what is due.
 * - `sendNow()` closes the open period at once and does the same without
 *   waiting for the randomized delay; it returns the log lines it produced.
 * - Lines go to the mail log as `sealpost/tlsrpt[pid]: ...`.
 *
 * Not here: counting (aggregate.ts, store.ts), formats (report.ts), delivery
 * mechanics (send.ts, https.ts), the CLI (cli/tlsrpt.ts).
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config/types.ts';
import type { EnvelopeInput } from '../../queue/queue-file.ts';
import type { EventBus } from '../events.ts';
import type { MailLog } from '../maillog.ts';
import { discoverRua, type TxtLookup } from './discover.ts';
import { createHttpsPoster, trustRoots, type HttpsPoster } from './https.ts';
import type { PeriodOnDisk } from './journal.ts';
import { acquireStoreLock } from './lock.ts';
import { buildReport, gzipReport, reportFileName, reportId, type ReportMeta } from './report.ts';
import { Outbox } from './send.ts';
import { TlsRptStore } from './store.ts';
import { createTxtLookup } from './txt.ts';

export interface TlsRptServiceOptions {
  readonly config: Config;
  readonly log: MailLog;
  /** Queue a message through maildrop (intake/maildrop.ts writeMaildrop on the daemon's spool). */
  readonly queueMail: (envelope: EnvelopeInput, content: Buffer) => Promise<string>;
  readonly bus?: EventBus;
  readonly txt?: TxtLookup;
  readonly https?: HttpsPoster;
  readonly clock?: () => number;
  readonly random?: () => number;
  /** Run the timer and serve send-now requests (the daemon). */
  readonly daemon?: boolean;
  readonly tickMs?: number;
}

/** `$data_directory/tlsrpt`. */
export function tlsRptDir(config: Config): string {
  return join(config.get('data_directory'), 'tlsrpt');
}

export class StoreBusyError extends Error {
  constructor(readonly owner: number) {
    super(`the TLS-RPT store is in use by process ${owner}`);
  }
}

export class TlsRptService {
  private config: Config;
  private store: TlsRptStore | undefined;
  private outbox: Outbox | undefined;
  private unsubscribe: (() => void) | undefined;
  private release: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watcher: FSWatcher | undefined;
  private busy: Promise<void> = Promise.resolve();
  private readonly clock: () => number;
  private lines: string[] | undefined;

  constructor(private readonly opts: TlsRptServiceOptions) {
    this.config = opts.config;
    this.clock = opts.clock ?? Date.now;
  }

  get dir(): string {
    return tlsRptDir(this.config);
  }

  get enabled(): boolean {
    return this.config.getBool('sealpost_tlsrpt');
  }

  private info(text: string): void {
    this.lines?.push(text);
    this.opts.log.write('tlsrpt', text);
  }

  private warn(text: string): void {
    this.lines?.push(`warning: ${text}`);
    this.opts.log.warn('tlsrpt', text);
  }

  async start(): Promise<void> {
    const lock = acquireStoreLock(this.dir);
    if ('owner' in lock) throw new StoreBusyError(lock.owner);
    this.release = lock.release;
    try {
      this.store = await TlsRptStore.open({
        dir: this.dir,
        clock: this.clock,
        ...(this.opts.random ? { random: this.opts.random } : {}),
        maxDelayMs: this.config.getTime('sealpost_tlsrpt_max_delay') * 1000,
        onWarning: (w) => this.warn(w),
      });
    } catch (err) {
      this.release();
      throw err;
    }
    this.outbox = this.makeOutbox();
    if (this.enabled && this.opts.bus) this.unsubscribe = this.opts.bus.subscribe(this.store.subscriber());
    if (this.opts.daemon) this.startTimers();
  }

  private makeOutbox(): Outbox {
    return new Outbox({
      dir: this.dir,
      clock: this.clock,
      https: this.opts.https ?? this.poster(),
      queueMail: this.opts.queueMail,
      sender: this.config.get('sealpost_tlsrpt_sender'),
      submitter: this.config.get('sealpost_tlsrpt_submitter'),
      myhostname: this.config.get('myhostname'),
      retryBackoffMs: this.config.getTime('sealpost_tlsrpt_retry_backoff') * 1000,
      retryLifetimeMs: this.config.getTime('sealpost_tlsrpt_retry_lifetime') * 1000,
      log: (t) => this.info(t),
      warn: (t) => this.warn(t),
    });
  }

  /** The HTTPS poster; unreadable trust roots fail every upload (retried), never fall back to other roots. */
  private poster(): HttpsPoster {
    try {
      return createHttpsPoster(trustRoots(this.config));
    } catch (err) {
      const error = `cannot read the trust roots (smtp_tls_CAfile, smtp_tls_CApath): ${(err as Error).message}`;
      this.warn(error);
      return { post: async () => ({ ok: false, error }) };
    }
  }

  /** New configuration (SIGHUP): parameters and trust roots are read again. */
  reload(config: Config): void {
    this.config = config;
    this.outbox = this.makeOutbox();
    if (!this.enabled && this.unsubscribe) {
      this.unsubscribe();
      this.unsubscribe = undefined;
    } else if (this.enabled && !this.unsubscribe && this.opts.bus && this.store) {
      this.unsubscribe = this.opts.bus.subscribe(this.store.subscriber());
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await this.busy;
    await this.store?.close();
    this.store = undefined;
    this.release?.();
    this.release = undefined;
  }

  /** The store (tests publish into it; `flush()` waits for durability). */
  get recorder(): TlsRptStore | undefined {
    return this.store;
  }

  private serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.busy.then(op);
    this.busy = run.then(() => undefined, () => undefined);
    return run;
  }

  /** See the header. */
  tick(): Promise<void> {
    return this.serial(async () => {
      if (!this.store) return;
      await this.store.rotateIfDue();
      await this.reportDue(false);
      await this.outbox!.deliverDue();
    });
  }

  /** Close the open period now and send what is due at once; returns the lines logged. */
  sendNow(): Promise<string[]> {
    return this.serial(async () => {
      if (!this.store) throw new Error('the TLS-RPT service is not started');
      this.lines = [];
      try {
        await this.store.closePeriod();
        await this.reportDue(true);
        await this.outbox!.deliverDue(true);
        return this.lines;
      } finally {
        this.lines = undefined;
      }
    });
  }

  private meta(p: PeriodOnDisk): ReportMeta {
    return {
      organization: this.config.get('sealpost_tlsrpt_organization'),
      contact: this.config.get('sealpost_tlsrpt_contact'),
      submitter: this.config.get('sealpost_tlsrpt_submitter'),
      start: p.closed!.start,
      end: p.closed!.end,
    };
  }

  private async reportDue(force: boolean): Promise<void> {
    const now = this.clock();
    for (const p of await this.store!.periods()) {
      if (!p.closed || (!force && p.closed.notBefore > now)) continue;
      let pending = 0;
      for (const domain of p.total.domains()) {
        if (p.handled.has(domain)) continue;
        if (!(await this.reportDomain(p, domain, now))) pending++;
      }
      if (pending === 0) await this.store!.removePeriod(p);
    }
  }

  /** One domain of a closed period; false when it must be tried again later. */
  private async reportDomain(p: PeriodOnDisk, domain: string, now: number): Promise<boolean> {
    const found = await discoverRua(domain, this.opts.txt ?? createTxtLookup(this.config));
    if (found.kind === 'tempfail') {
      if (now - p.closed!.end < this.config.getTime('sealpost_tlsrpt_retry_lifetime') * 1000) {
        this.info(`${domain}: TLSRPT policy lookup deferred: ${found.why}`);
        return false;
      }
      this.warn(`${domain}: no report for ${new Date(p.closed!.start).toISOString()}: TLSRPT policy lookup failed until the retry lifetime ended: ${found.why}`);
    } else if (found.kind === 'none') {
      this.info(`${domain}: no TLSRPT policy (${found.why}); no report`);
    } else {
      const meta = this.meta(p);
      const report = buildReport(meta, domain, p.total.forDomain(domain));
      const gz = gzipReport(report);
      for (const rua of found.rua) {
        await this.outbox!.add({ domain, reportId: reportId(meta, domain), fileName: reportFileName(meta, domain), rua, start: meta.start, end: meta.end }, gz);
      }
    }
    await this.store!.markHandled(p, domain);
    return true;
  }

  // ------------------------------------------------------- timers, requests

  private startTimers(): void {
    const every = this.opts.tickMs ?? 60_000;
    this.timer = setInterval(() => {
      void this.tick().catch((err: unknown) => this.warn(`${(err as Error).message}`));
      void this.serveRequests();
    }, every);
    this.timer.unref();
    const reqDir = join(this.dir, 'requests');
    void mkdir(reqDir, { recursive: true, mode: 0o700 }).then(() => {
      if (!this.timer) return;
      try {
        this.watcher = watch(reqDir, () => void this.serveRequests());
        this.watcher.on('error', () => undefined);
      } catch {
        // Polling by the timer still serves requests.
      }
      void this.serveRequests();
    });
  }

  private async serveRequests(): Promise<void> {
    const reqDir = join(this.dir, 'requests');
    let names: string[];
    try {
      names = (await readdir(reqDir)).filter((n) => n.endsWith('.req')).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const base = n.slice(0, -'.req'.length);
      try {
        await unlink(join(reqDir, n));
      } catch {
        continue; // another call took it
      }
      let result: { lines: string[]; error?: string };
      try {
        result = { lines: await this.sendNow() };
      } catch (err) {
        result = { lines: [], error: (err as Error).message };
      }
      const tmp = join(reqDir, `${base}.tmp`);
      await writeFile(tmp, JSON.stringify(result));
      await rename(tmp, join(reqDir, `${base}.done`));
    }
  }
}
