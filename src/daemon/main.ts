/**
 * main.ts — the master process (`sealpost start-fg`): what Postfix's master(8)
 * does, in one Node process: refuse a broken configuration, prepare the spool,
 * own the pid file, run the SMTP listeners that master.cf declares, the pickup
 * service, the queue manager (scheduler/qmgr.ts) and the flush-request
 * watcher, re-read everything on SIGHUP and stop gracefully on SIGTERM/SIGINT.
 *
 * Contract:
 * - `runMaster()` resolves with exit status 0 after a stop; it throws a
 *   UserError (one line) when it cannot start: a configuration error (with
 *   file and line), `the sealpost mail system is already running` (the master
 *   lock, lock.ts, is held), an address that cannot be bound (`bind 0.0.0.0
 *   port 25: Address already in use`), a missing mail_owner account.
 *   Nothing is left behind on failure (lock released, listeners closed).
 * - Privileges (`dropPrivileges`, what `start-fg` asks for when run as root):
 *   as root the master resolves mail_owner/setgid_group (privileges.ts),
 *   creates or repairs the queue and data directories (queue-layout.ts),
 *   takes the lock, writes master.pid, opens the log, binds every listener
 *   and reads the smtpd keys; then it starts the root helper that re-reads
 *   private files on reload (secrets.ts) and becomes mail_owner for good,
 *   before pickup, the queue manager, the delivery threads and showq start.
 *   Without `dropPrivileges` (tests, a non-root user) it runs as it is.
 * - Log lines (maillog_file, or `defaultLogFile` when it is empty; `syslog`
 *   = the system logger, with `syslogFallback` when there is none):
 *   `daemon started -- version X, configuration DIR`, `reload -- version X,
 *   configuration DIR`, `terminating on signal 15` — master(8)'s words.
 * - Reload is validate-then-swap: the new main.cf, master.cf, tables and
 *   per-service settings are all checked first (check.ts); on any error the
 *   daemon logs `warning: ...` and changes nothing. Otherwise listeners that
 *   stay get the new settings (open sessions keep theirs), removed or rebound
 *   ones are closed gracefully, new ones started. queue_directory changes need
 *   a restart (warned).
 * - Stop: no new connections; open sessions get `gracefulTimeoutMs` to finish;
 *   pickup finishes its current file; then the pid file is removed.
 *
 * - The queue manager starts after the spool is ready and the listeners are
 *   up; every new queue ID (listeners, pickup) goes to qmgr.onQueued, every
 *   postqueue -f/-i/-s request to qmgr.flush; a reload hands it the new
 *   configuration (new tables and agents); a stop lets in-flight deliveries
 *   finish for `gracefulTimeoutMs` (what is left stays in active/ and is
 *   delivered after the next start).
 *
 * - TLS-RPT (reports/tlsrpt/service.ts): started after the privilege drop and
 *   before the queue manager, so its store sees every delivery's sessions;
 *   a store it cannot open is a warning and a retry, never a failed start;
 *   reloaded with the configuration; stopped after the queue manager.
 *
 * Hooks: `onFlush` and `onQueued` also receive each flush request and each
 * new queue ID (tests observe them).
 *
 * - Observability (reports/observe.ts): started first in start() (a bad
 *   sealpost_http_* setting refuses the start before any SMTP listener binds);
 *   its HTTP listener binds as root with the others, its stores (under
 *   data_directory) open after the privilege drop, as mail_owner. Intake
 *   (smtpd, pickup) publishes `received` events on the bus; the metrics'
 *   hooks go out once as a HookRelay (observe-hooks.ts) to the smtpd
 *   listeners and the delivery agents (DNS lookups; worker threads forward
 *   theirs); `this.hooks.mtaSts` and `this.hooks.tlsRpt` are for the MTA-STS
 *   and TLS-RPT services (their `hooks` options). A reload that changes
 *   an observability setting restarts it (a failure is a warning: the mail
 *   system runs on without it); a stop closes it after the queue manager.
 *
 * Not here: the control commands (control.ts), validation (check.ts),
 * listener bookkeeping (services.ts), pickup (pickup.ts), the queue listing
 * service (showq-service.ts).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { writeMaildrop } from '../intake/maildrop.ts';
import { startSmtpd } from '../intake/smtpd/server.ts';
import type { SmtpdContext } from '../intake/smtpd/server.ts';
import { UserError } from '../lib/errors.ts';
import { createSpool, type Spool } from '../queue/spool.ts';
import { defaultSmtpAgent } from '../delivery/hosting/service-agent.ts';
import { DaemonSts } from '../delivery/mta-sts/daemon.ts';
import { spoolStore } from '../queue/store.ts';
import { closeQueueJournal, openQueueJournal } from '../queue/journal-store.ts';
import { QueueManager } from '../scheduler/qmgr.ts';
import { createRuntimeFactory } from '../scheduler/wiring.ts';
import { EventBus } from '../reports/events.ts';
import { openMailLog, type MailLog } from '../reports/maillog.ts';
import { findSyslogSocket, openSyslogLog } from '../reports/syslog.ts';
import { mailLogSubscriber } from '../reports/maillog-subscriber.ts';
import { startObservability, observabilityKey, type Observability } from '../reports/observe.ts';
import { HookRelay, NO_HOOKS } from '../reports/observe-hooks.ts';
import type { DeliveryEvent } from '../reports/events.ts';
import { resolutionLimitOf } from '../reports/delivery-log.ts';
import { programLog } from '../reports/program-log.ts';
import { TlsRptService } from '../reports/tlsrpt/service.ts';
import { checkConfiguration, firstError, type CheckReport } from './check.ts';
import { FlushWatcher, type FlushRequest } from './flush.ts';
import { acquireMasterLock, AlreadyRunningError, type MasterLock } from './lock.ts';
import { removePidFile, writePidFile } from './pidfile.ts';
import { Pickup } from './pickup.ts';
import { ownerAccessProblems } from './owner-access.ts';
import { dropPrivileges, privilegePlan, type PrivilegePlan } from './privileges.ts';
import { applyLayout, queueLayout } from './queue-layout.ts';
import { startSecretsHelper, type SecretsHelper } from './secrets.ts';
import { ShowqService } from './showq-service.ts';
import { ListenerSet, type DesiredListener, type StartListener } from './services.ts';
import { installSignals, signalNumber, type SignalSource, type StopSignal } from './signals.ts';

export interface MasterOptions {
  readonly configDir: string;
  /** Where the log goes when maillog_file is empty: a file, or SYSLOG (start-fg). */
  readonly defaultLogFile: string;
  /** With SYSLOG and no system logger: standard error (a foreground daemon) or $data_directory/maillog. */
  readonly syslogFallback?: 'stderr' | 'file';
  /** Run as mail_owner after binding (see the header); start-fg sets it when run as root. */
  readonly dropPrivileges?: boolean;
  /** Called once every listener is up and the start was logged. */
  readonly onReady?: (info: { readonly pid: number; readonly listeners: readonly string[] }) => void;
  readonly startListener?: StartListener;
  /** How long open SMTP sessions may run on after a stop or a reload that removes their listener. */
  readonly gracefulTimeoutMs?: number;
  readonly signals?: SignalSource;
  readonly onFlush?: (request: FlushRequest, log: MailLog) => void | Promise<void>;
  readonly onQueued?: (queueId: string) => void;
  readonly pickupIntervalMs?: number;
}

/** Temporary files younger than this may belong to a running `sendmail`: recover() leaves them. */
const TEMP_FILE_GRACE_MS = 10_000;
export const DEFAULT_GRACEFUL_TIMEOUT_MS = 10_000;

/** `defaultLogFile` value: the system logger (syslog.ts). */
export const SYSLOG = 'syslog';

/** The log settings that decide which file is open. */
function logKey(config: LoadedConfig, fallback: string): string {
  const names = ['syslog_name', 'sealpost_maillog_format', 'syslog_facility', 'sealpost_syslog_socket'];
  return JSON.stringify([config.get('maillog_file') || fallback, ...names.map((n) => config.get(n))]);
}

function openFileLog(config: LoadedConfig, file: string): MailLog {
  const format = config.get('sealpost_maillog_format') === 'json' ? 'json' : 'postfix';
  try {
    return openMailLog({ file, syslogName: config.get('syslog_name') || 'sealpost', format, buffered: true });
  } catch (err) {
    throw new UserError(`cannot open maillog_file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: fix the path or its permissions`);
  }
}

/** Where the log goes when there is no system logger. */
export function syslogFallbackFile(config: LoadedConfig, how: MasterOptions['syslogFallback']): string {
  return how === 'stderr' ? '/dev/stderr' : join(config.get('data_directory'), 'maillog');
}

/** maillog_file, or the default: a file, or the system logger with its fallback (never discarded). */
function openLog(config: LoadedConfig, opts: MasterOptions, plan?: PrivilegePlan): MailLog {
  const file = config.get('maillog_file') || opts.defaultLogFile;
  if (file !== SYSLOG) return openFileLog(config, file);
  const fallbackFile = syslogFallbackFile(config, opts.syslogFallback);
  let fallback: MailLog | undefined;
  const getFallback = (): MailLog => (fallback ??= openFileLog(config, fallbackFile));
  const socket = findSyslogSocket(config.get('sealpost_syslog_socket'));
  if (socket === undefined) {
    const log = getFallback();
    const tried = config.get('sealpost_syslog_socket') || '/dev/log, /run/systemd/journal/dev-log';
    log.warn('master', `no system logger socket (${tried}): logging to ${fallbackFile}; set maillog_file in ${config.mainCfPath} to choose a file`);
    return log;
  }
  return openSyslogLog({
    socket,
    facility: config.get('syslog_facility'),
    syslogName: config.get('syslog_name') || 'sealpost',
    ...(plan ? { spawnAs: plan.owner } : {}),
    fallback: getFallback,
  });
}

/** A MailLog whose target can be swapped on reload (listeners keep their reference). */
class SwitchableLog implements MailLog {
  constructor(public current: MailLog) {}
  write(service: string, text: string): void {
    this.current.write(service, text);
  }
  warn(service: string, text: string): void {
    this.current.warn(service, text);
  }
  flush(): void {
    this.current.flush?.();
  }
  close(): void {
    this.current.close();
  }
}

class Master {
  private config: LoadedConfig;
  private readonly listeners: ListenerSet;
  private readonly log: SwitchableLog;
  private logKeyNow: string;
  /** Metrics, status page, TLS posture and proof stores (reports/observe.ts). */
  private observe: Observability | undefined;
  /** The metrics' hooks as every component gets them once (reports/observe-hooks.ts). */
  private readonly hooks = new HookRelay();
  /** Intake's way onto the bus (`received` events). */
  private readonly publish = (e: DeliveryEvent): void => this.events.publish(e);
  private pickup: Pickup | undefined;
  private flush: FlushWatcher | undefined;
  private showq: ShowqService | undefined;
  private secrets: SecretsHelper | undefined;
  /** TLS-RPT (RFC 8460): records the delivery events' TLS sessions, sends the daily reports. */
  private tlsrpt: TlsRptService | undefined;
  private finished!: (code: number) => void;
  readonly done: Promise<number>;
  private readonly graceMs: number;
  private readonly qmgr: QueueManager;
  /** The delivery event stream (reports/events.ts); the mail log is its first subscriber. */
  readonly events: EventBus;
  private readonly onQueued: (queueId: string) => void;
  /** The one MTA-STS policy service of every delivery agent and worker thread (issue 11). */
  private readonly sts: DaemonSts;

  constructor(
    private readonly opts: MasterOptions,
    report: CheckReport,
    private readonly spool: Spool,
    log: MailLog,
    private readonly lock: MasterLock,
    private readonly plan: PrivilegePlan | undefined,
  ) {
    this.config = report.config!;
    this.listeners = new ListenerSet(opts.startListener ?? startSmtpd);
    this.log = new SwitchableLog(log);
    this.logKeyNow = logKey(this.config, opts.defaultLogFile);
    this.graceMs = opts.gracefulTimeoutMs ?? DEFAULT_GRACEFUL_TIMEOUT_MS;
    this.events = new EventBus((err) => this.log.warn('master', `event subscriber failed: ${err instanceof Error ? err.message : String(err)}`));
    // The mail log first: a delivery's TLS lines, then its status= lines (maillog-subscriber.ts).
    this.events.subscribe(mailLogSubscriber({ log: this.log, resolutionLimit: () => resolutionLimitOf(this.config) }));
    this.sts = new DaemonSts(this.config, this.log, { hooks: { mtaSts: this.hooks.mtaSts, dns: this.hooks.dns } });
    const smtpAgent = (ctx: Parameters<typeof defaultSmtpAgent>[0]) => defaultSmtpAgent({ ...ctx, sts: this.sts });
    this.qmgr = new QueueManager({ store: spoolStore(spool), events: this.events, log: this.log, config: this.config, runtime: createRuntimeFactory(this.log, smtpAgent, this.hooks) });
    this.onQueued = (id) => {
      this.qmgr.onQueued(id);
      this.opts.onQueued?.(id);
    };
    this.done = new Promise((resolve) => {
      this.finished = resolve;
    });
  }

  private version(): string {
    return `version ${this.config.get('mail_version')}, configuration ${this.opts.configDir}`;
  }

  private desired(report: CheckReport): DesiredListener[] {
    return report.endpoints.map((endpoint) => {
      const plan = report.services.find((p) => p.service === endpoint.service);
      const config = plan?.config ?? report.config!;
      const ctx: SmtpdContext = {
        config,
        spool: this.spool,
        log: programLog(this.log, config.get('syslog_name') || 'sealpost'),
        serviceName: endpoint.service.name,
        onQueued: this.onQueued,
        publish: this.publish,
        hooks: this.hooks.smtpd,
      };
      return { endpoint, ctx };
    });
  }

  /** Start (or restart, on reload) the observability pieces; their hooks go to the relay. */
  private async startObserve(config: LoadedConfig): Promise<void> {
    this.observe = await startObservability({ config, bus: this.events, spool: this.spool, warn: (m) => this.log.warn('master', m), deferStores: true });
    this.hooks.target = this.observe.hooks;
  }

  async start(report: CheckReport): Promise<void> {
    // First: a refused observability setting stops the start before any listener binds.
    await this.startObserve(this.config);
    try {
      await this.startServices(report);
    } catch (err) {
      await this.observe?.stop();
      throw err;
    }
  }

  private async startServices(report: CheckReport): Promise<void> {
    for (const w of report.warnings) this.log.warn('master', w);
    const result = await this.listeners.apply(this.desired(report), { graceful: false, timeoutMs: 0 });
    if (result.failed.length > 0) {
      await this.listeners.closeAll({ graceful: false, timeoutMs: 0 });
      throw new UserError(result.failed[0]!.error);
    }
    // Listeners bound and smtpd keys read as root: from here on, mail_owner for good,
    // with a root helper that re-reads the private files on reload (secrets.ts).
    if (this.plan) {
      this.secrets = startSecretsHelper(this.opts.configDir);
      dropPrivileges(this.plan.owner);
    }
    // The stores' files under data_directory belong to mail_owner.
    await this.observe?.openStores();
    this.pickup = new Pickup({
      spool: this.spool,
      config: this.config,
      log: this.log,
      onQueued: this.onQueued,
      publish: this.publish,
      ...(this.opts.pickupIntervalMs !== undefined ? { intervalMs: this.opts.pickupIntervalMs } : {}),
    });
    await this.pickup.start();
    await this.sts.start();
    this.flush = new FlushWatcher({
      dir: join(this.spool.dir, 'public', 'flush'),
      onFlush: async (req) => {
        await this.qmgr.flush(req);
        await this.opts.onFlush?.(req, this.log);
      },
      onWarning: (m) => this.log.warn('master', m),
    });
    this.flush.start();
    this.showq = new ShowqService(this.spool, this.config, this.log);
    await this.showq.start();
    // TLS-RPT subscribes before the first delivery; its report mail goes in through maildrop (as mail_owner).
    this.tlsrpt = new TlsRptService({ config: this.config, log: this.log, bus: this.events, daemon: true, hooks: this.hooks.tlsRpt, queueMail: (env, content) => writeMaildrop(this.spool, env, content) });
    await this.tlsrpt.startInDaemon();
    await this.qmgr.start();
    this.log.write('master', `daemon started -- ${this.version()}`);
    // `sealpost start` returns on onReady: the start line is in the log by then.
    this.log.flush();
    this.opts.onReady?.({ pid: process.pid, listeners: this.listeners.keys() });
  }

  async reload(): Promise<void> {
    try {
      await this.secrets?.refresh();
    } catch (e) {
      this.log.warn('master', `cannot re-read the private key files: ${(e as Error).message}`);
    }
    const report = await checkConfiguration(this.opts.configDir);
    const err = firstError(report);
    if (err) {
      this.log.warn('master', `${err.message} -- reload refused; the running configuration stays in effect`);
      return;
    }
    const next = report.config!;
    if (next.get('queue_directory') !== this.config.get('queue_directory')) {
      this.log.warn('master', `queue_directory changed to ${next.get('queue_directory')}: this takes effect after "sealpost stop" and "sealpost start"`);
    }
    const key = logKey(next, this.opts.defaultLogFile);
    if (key !== this.logKeyNow) {
      try {
        const fresh = openLog(next, this.opts, this.plan);
        const old = this.log.current;
        this.log.current = fresh;
        old.close();
        this.logKeyNow = key;
      } catch (e) {
        this.log.warn('master', `${(e as Error).message}; logging stays where it was`);
      }
    }
    for (const w of report.warnings) this.log.warn('master', w);
    const previous = this.config;
    this.config = next;
    const result = await this.listeners.apply(this.desired(report), { graceful: true, timeoutMs: this.graceMs });
    for (const f of result.failed) this.log.warn('master', `${f.error}: service not started`);
    this.pickup?.update(next);
    this.showq?.update(next);
    this.tlsrpt?.reload(next);
    this.sts.update(next);
    try {
      await this.qmgr.reload(next);
    } catch (e) {
      this.log.warn('master', `queue manager: ${(e as Error).message}; delivery keeps the previous tables and agents`);
    }
    await this.reloadObserve(next, previous);
    this.log.write('master', `reload -- ${this.version()}`);
  }

  /**
   * A changed observability setting restarts metrics, stores and listener. When the listener
   * cannot start (as mail_owner: a port below 1024, a root-only key), the stores run on
   * without it — the TLS evidence is never dropped for a metrics problem — with a warning.
   */
  private async reloadObserve(next: LoadedConfig, previous: LoadedConfig): Promise<void> {
    if (observabilityKey(next) === observabilityKey(previous)) return;
    await this.observe?.stop();
    this.observe = undefined;
    this.hooks.target = NO_HOOKS;
    try {
      await this.startObserve(next);
      await this.observe!.openStores();
      return;
    } catch (e) {
      this.log.warn('master', `${(e as Error).message}; metrics and the status page stay off until this is fixed (a port below 1024 or a root-only file needs "sealpost stop" and "sealpost start")`);
    }
    try {
      this.observe = await startObservability({ config: next, bus: this.events, spool: this.spool, warn: (m) => this.log.warn('master', m), storesOnly: true });
    } catch (e) {
      this.log.warn('master', `TLS report and proof stores: ${(e as Error).message}`);
    }
  }

  async stop(signal: StopSignal): Promise<void> {
    this.log.write('master', `terminating on signal ${signalNumber(signal)}`);
    await this.listeners.closeAll({ graceful: true, timeoutMs: this.graceMs });
    await this.shutdown();
  }

  forceStop(): void {
    void this.listeners.closeAll({ graceful: false, timeoutMs: 0 });
  }

  private async shutdown(): Promise<void> {
    await this.pickup?.stop();
    await this.flush?.stop();
    await this.showq?.close();
    await this.qmgr.stop(this.graceMs);
    await this.tlsrpt?.stop();
    await this.sts.stop();
    await closeQueueJournal(this.spool);
    this.secrets?.stop();
    // After the queue manager: its last outcomes are counted and stored.
    await this.observe?.stop();
    removePidFile(this.spool.dir);
    this.log.close();
    await this.lock.release();
    this.finished(0);
  }
}

async function prepareSpool(config: LoadedConfig, plan: PrivilegePlan | undefined): Promise<{ spool: Spool; fixes: string[] }> {
  const queueDir = config.get('queue_directory');
  // As root: every directory with Postfix's owner and mode before anything is written (queue-layout.ts).
  const layout = plan ? applyLayout(queueLayout(queueDir, config.get('data_directory')), plan, { everyFile: false }) : undefined;
  try {
    const spool = await createSpool(queueDir, { longQueueIds: config.getBool('enable_long_queue_ids') });
    await mkdir(config.get('data_directory'), { recursive: true, mode: 0o700 });
    return { spool, fixes: layout?.fixed ?? [] };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UserError(`cannot create ${e.path ?? queueDir}: ${e.code ?? e.message}: check queue_directory and data_directory in ${config.mainCfPath} and their permissions`);
  }
}

async function takeLock(queueDir: string): Promise<MasterLock> {
  try {
    const lock = await acquireMasterLock(queueDir);
    writePidFile(queueDir);
    return lock;
  } catch (err) {
    if (err instanceof AlreadyRunningError || err instanceof UserError) throw new UserError(err.message);
    throw new UserError(`cannot lock ${queueDir}/pid: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: check queue_directory and its permissions`);
  }
}

/** Run the mail system until a stop signal; see the header. */
export async function runMaster(opts: MasterOptions): Promise<number> {
  const report = await checkConfiguration(opts.configDir);
  const error = firstError(report);
  if (error) throw error;
  const config = report.config!;
  const plan = opts.dropPrivileges ? privilegePlan(config) : undefined;
  // What mail_owner must read after the drop (tables, client keys): refuse now, not at the first delivery.
  const access = plan ? await ownerAccessProblems(plan.owner, config.get('mail_owner'), report) : [];
  if (access.length > 0) throw new UserError(access[0]!);
  const { spool, fixes } = await prepareSpool(config, plan);
  const lock = await takeLock(spool.dir);
  let log: MailLog | undefined;
  let uninstall: (() => void) | undefined;
  try {
    log = openLog(config, opts, plan);
    for (const fix of fixes) log.warn('master', `fixed ${fix} (sealpost set-permissions repairs every file)`);
    await spool.recover(TEMP_FILE_GRACE_MS);
    // Group commit (queue/journal.ts): recover what a crash left, then write through the journal.
    if (config.getBool('sealpost_queue_journal')) {
      const r = await openQueueJournal(spool);
      if (r.vouched > 0) log.write('master', `queue journal: ${r.vouched} accepted messages checked after a crash, ${r.restored} written from the journal`);
    }
    const master = new Master(opts, report, spool, log, lock, plan);
    uninstall = installSignals(
      {
        reload: () => master.reload(),
        stop: (signal) => master.stop(signal),
        forceStop: () => master.forceStop(),
      },
      opts.signals,
    );
    await master.start(report);
    const code = await master.done;
    uninstall();
    return code;
  } catch (err) {
    uninstall?.();
    if (log) {
      log.write('master', `fatal: ${(err as Error).message}`);
      log.close();
    }
    await closeQueueJournal(spool).catch(() => undefined);
    removePidFile(spool.dir);
    await lock.release();
    throw err;
  }
}
