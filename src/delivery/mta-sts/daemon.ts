/**
 * daemon.ts — the MTA-STS policy service as the daemon runs it: one
 * StsService in the master's thread for every delivery agent (agents in
 * this thread ask it directly, worker threads through rpc.ts channels), and
 * the cache command's requests (control.ts) served from
 * `$data_directory/mta-sts/requests/`.
 *
 * Contract:
 * - `DaemonSts` is an StsPolicySource: `lookup()` goes to the current
 *   service. `update(config)` (reload) makes a new service only when a
 *   setting it uses changed (data_directory, smtp_tls_CAfile/CApath,
 *   sealpost_dns_resolvers, inet_protocols, the fetch limits); lookups
 *   already running finish on the old one. The cache on disk is the same
 *   either way, so a new service starts warm.
 * - `start()` creates the request directory (mode 0700, as the daemon's
 *   user) and serves requests on fs.watch and every `pollMs`; each request
 *   file is removed before it is answered (never answered twice), the answer
 *   is written to `NAME.tmp` and renamed to `NAME.done`. A request that does
 *   not parse is answered with its error. `stop()` ends the serving.
 * - Log lines: `sealpost/mta-sts[pid]: MTA-STS policy of D fetched: id ...`
 *   and warnings (a failed fetch, a malformed TXT record, a cache file that
 *   cannot be written).
 *
 * Not here: the policy logic (service.ts), the CLI (cli/tls-sts.ts).
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../../config/types.ts';
import type { MailLog } from '../../reports/maillog.ts';
import { createResolver } from '../dns/resolver.ts';
import { cachingTxt } from '../dns/answer-cache.ts';
import { answerRequest, parseRequest, requestDir, type StsAnswer } from './control.ts';
import type { DnsHooks, MtaStsHooks } from '../../reports/observe-hooks.ts';
import { createStsService, stsCacheDir, type StsLookup, type StsPolicySource, type StsService } from './service.ts';

const SETTINGS = ['data_directory', 'smtp_tls_CAfile', 'smtp_tls_CApath', 'sealpost_dns_resolvers', 'inet_protocols', 'sealpost_mta_sts_fetch_timeout', 'sealpost_mta_sts_max_policy_size'];

function settingsKey(config: Config): string {
  return JSON.stringify(SETTINGS.map((n) => config.get(n)));
}

export interface DaemonStsOptions {
  /** How often the request directory is polled besides fs.watch (default 1 s). */
  readonly pollMs?: number;
  /** Injected service factory (tests). */
  readonly make?: (config: Config) => StsService;
  /** Metrics: cache lookups, fetches and the cache size, and the policy lookups' DNS (reports/observe-hooks.ts). */
  readonly hooks?: { readonly mtaSts?: MtaStsHooks; readonly dns?: DnsHooks };
}

export class DaemonSts implements StsPolicySource {
  private service: StsService | undefined;
  /** Why no service could be made (an unreadable CA file): lookups answer `error`, deliveries defer. */
  private broken: string | undefined;
  private key: string;
  private dir: string;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private serving: Promise<void> | undefined;
  private again = false;

  constructor(config: Config, private readonly log: MailLog, private readonly opts: DaemonStsOptions = {}) {
    try {
      this.service = this.make(config);
    } catch (err) {
      this.broken = (err as Error).message;
      this.log.warn('mta-sts', `${this.broken}: MTA-STS destinations are deferred until this is fixed`);
    }
    this.key = settingsKey(config);
    this.dir = requestDir(stsCacheDir(config));
  }

  private make(config: Config): StsService {
    if (this.opts.make) return this.opts.make(config);
    // The `_mta-sts` TXT answers are kept for their TTL (at most 101 s; dns/answer-cache.ts).
    return createStsService(config, cachingTxt(createResolver(config, undefined, this.opts.hooks?.dns)), {
      warn: (t) => this.log.warn('mta-sts', t),
      info: (t) => this.log.write('mta-sts', t),
    }, undefined, undefined, this.opts.hooks?.mtaSts);
  }

  /** The service answering now (tests, tools in this process). */
  get current(): StsService | undefined {
    return this.service;
  }

  lookup(domain: string): Promise<StsLookup> {
    if (!this.service) return Promise.resolve({ kind: 'error', detail: this.broken ?? 'no MTA-STS service' });
    return this.service.lookup(domain);
  }

  /** A reload: a new service only when its settings changed (see the header). */
  update(config: Config): void {
    const key = settingsKey(config);
    if (key === this.key) return;
    try {
      this.service = this.make(config);
      this.broken = undefined;
      this.key = key;
    } catch (err) {
      this.log.warn('mta-sts', `${(err as Error).message}; MTA-STS keeps its previous settings`);
      return;
    }
    const dir = requestDir(stsCacheDir(config));
    if (dir !== this.dir && this.timer) {
      this.stopServing();
      this.dir = dir;
      void this.start();
    }
  }

  async start(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      this.log.warn('mta-sts', `cannot create ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; "sealpost tls sts" cannot reach the daemon`);
      return;
    }
    try {
      this.watcher = watch(this.dir, () => this.kick());
      this.watcher.on('error', () => undefined);
    } catch {
      // Polling still serves requests.
    }
    this.timer = setInterval(() => this.kick(), this.opts.pollMs ?? 1000);
    this.timer.unref();
    this.kick();
  }

  private stopServing(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  async stop(): Promise<void> {
    this.stopServing();
    await this.serving;
  }

  private kick(): void {
    if (this.serving) {
      this.again = true;
      return;
    }
    this.serving = this.serve().finally(() => {
      this.serving = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  private async serve(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.dir)).filter((n) => n.endsWith('.req')).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const base = n.slice(0, -'.req'.length);
      let text: string;
      try {
        text = await readFile(join(this.dir, n), 'utf8');
        await unlink(join(this.dir, n));
      } catch {
        continue; // taken by another pass
      }
      const req = parseRequest(text);
      const answer: StsAnswer = 'error' in req ? { ok: false, error: req.error }
        : this.service ? await answerRequest(this.service, req) : { ok: false, error: this.broken ?? 'no MTA-STS service' };
      try {
        await writeFile(join(this.dir, `${base}.tmp`), JSON.stringify(answer), { mode: 0o644 });
        await rename(join(this.dir, `${base}.tmp`), join(this.dir, `${base}.done`));
      } catch (err) {
        this.log.warn('mta-sts', `cannot answer ${n}: ${(err as Error).message}`);
      }
    }
  }
}
