/**
 * send.ts — the TLS-RPT outbox: reports waiting to be delivered, one item per
 * (report, rua URI), kept under `$data_directory/tlsrpt/outbox/` so that a
 * restart loses none, and their delivery (RFC 8460 §5).
 *
 * Contract:
 * - `add()` writes the gzip'd report and then the item (each durably), so an
 *   item never points at a missing body. The item id is derived from the
 *   report id and the URI: adding the same report again (after a crash)
 *   replaces the item instead of duplicating it.
 * - `mailto:` items are handed to sealpost's own queue through `queueMail`
 *   (the maildrop path `sendmail` uses: it survives crashes and works while the
 *   daemon is down) as the report mail of report.ts, enveloped from
 *   `sealpost_tlsrpt_sender`; the item is removed once the queue file is
 *   written. sealpost never opens an SMTP connection here.
 * - `https:` items are POSTed (https.ts); a 2xx removes the item; any other
 *   outcome is retried with exponential backoff (retryBackoff, doubling, at
 *   most 32 times that) until `retryLifetime` after the item was made, then
 *   dropped with a warning.
 * - Every outcome is one log line under the `tlsrpt` service:
 *   `tlsrpt: DOMAIN: report ID queued for ADDR as QUEUEID`,
 *   `... posted to URL: status 200`, `... deferred: ERROR`, `... dropped after N attempts: ERROR`.
 *
 * Not here: building reports (report.ts), deciding what to report (service.ts).
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { EnvelopeInput } from '../../queue/queue-file.ts';
import { mailDate } from '../../message/received.ts';
import type { HttpsPoster } from './https.ts';
import { writeDurable } from './journal.ts';
import { reportMail } from './report.ts';
import type { Rua } from './discover.ts';

export interface OutboxItem {
  readonly id: string;
  readonly domain: string;
  readonly reportId: string;
  readonly fileName: string;
  readonly rua: Rua;
  readonly start: number;
  readonly end: number;
  readonly created: number;
  readonly attempts: number;
  readonly nextAt: number;
}

export interface OutboxDeps {
  readonly dir: string;
  readonly clock: () => number;
  readonly https: HttpsPoster;
  /** Queue a message through maildrop; resolves with its queue ID. */
  readonly queueMail: (envelope: EnvelopeInput, content: Buffer) => Promise<string>;
  readonly sender: string;
  readonly submitter: string;
  readonly myhostname: string;
  readonly retryBackoffMs: number;
  readonly retryLifetimeMs: number;
  readonly log: (text: string) => void;
  readonly warn: (text: string) => void;
}

export class Outbox {
  constructor(private readonly d: OutboxDeps) {}

  private get dir(): string {
    return join(this.d.dir, 'outbox');
  }

  async add(item: Omit<OutboxItem, 'id' | 'created' | 'attempts' | 'nextAt'>, gzipped: Buffer): Promise<OutboxItem> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const id = createHash('sha256').update(`${item.reportId}\n${item.rua.uri}`).digest('hex').slice(0, 24);
    const now = this.d.clock();
    const full: OutboxItem = { ...item, id, created: now, attempts: 0, nextAt: now };
    await writeDurable(join(this.dir, `${id}.gz`), this.dir, gzipped);
    await writeDurable(join(this.dir, `${id}.json`), this.dir, JSON.stringify(full));
    return full;
  }

  async list(): Promise<OutboxItem[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const items: OutboxItem[] = [];
    for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
      try {
        items.push(JSON.parse(await readFile(join(this.dir, n), 'utf8')) as OutboxItem);
      } catch (err) {
        this.d.warn(`${join(this.dir, n)}: unreadable outbox item ignored: ${(err as Error).message}`);
      }
    }
    return items;
  }

  /** Deliver every item that is due (all of them with `force`). */
  async deliverDue(force = false): Promise<void> {
    const now = this.d.clock();
    for (const item of await this.list()) {
      if (!force && item.nextAt > now) continue;
      let body: Buffer;
      try {
        body = await readFile(join(this.dir, `${item.id}.gz`));
      } catch (err) {
        this.d.warn(`${item.domain}: report ${item.reportId}: body missing (${(err as Error).message}); item dropped`);
        await this.remove(item);
        continue;
      }
      if (item.rua.scheme === 'mailto') await this.mail(item, body);
      else await this.post(item, body);
    }
  }

  private async remove(item: OutboxItem): Promise<void> {
    await unlink(join(this.dir, `${item.id}.json`)).catch(() => undefined);
    await unlink(join(this.dir, `${item.id}.gz`)).catch(() => undefined);
  }

  private async mail(item: OutboxItem, gzipped: Buffer): Promise<void> {
    if (item.rua.scheme !== 'mailto') return;
    const now = this.d.clock();
    const content = reportMail({
      from: this.d.sender,
      to: item.rua.addresses,
      domain: item.domain,
      submitter: this.d.submitter,
      reportId: item.reportId,
      fileName: item.fileName,
      gzipped,
      date: mailDate(new Date(now)),
      messageId: `<${item.id}.${now}@${this.d.myhostname}>`,
      start: item.start,
      end: item.end,
    });
    const envelope: EnvelopeInput = {
      arrivalTime: now,
      sender: this.d.sender,
      recipients: item.rua.addresses.map((a) => ({ address: a })),
      // RFC 8689 §5 (and the header in the content): never held back by TLS policy.
      tlsRequiredNo: true,
    };
    try {
      const queueId = await this.d.queueMail(envelope, content);
      await this.remove(item);
      this.d.log(`${item.domain}: report ${item.reportId} queued for ${item.rua.addresses.join(',')} as ${queueId}`);
    } catch (err) {
      await this.retry(item, `queue file write error: ${(err as Error).message}`);
    }
  }

  private async post(item: OutboxItem, body: Buffer): Promise<void> {
    const r = await this.d.https.post(item.rua.uri, body);
    if (r.ok) {
      await this.remove(item);
      this.d.log(`${item.domain}: report ${item.reportId} posted to ${item.rua.uri}: status ${r.status}`);
      return;
    }
    await this.retry(item, r.error);
  }

  private async retry(item: OutboxItem, error: string): Promise<void> {
    const now = this.d.clock();
    const attempts = item.attempts + 1;
    const where = item.rua.uri;
    if (now - item.created >= this.d.retryLifetimeMs) {
      await this.remove(item);
      this.d.warn(`${item.domain}: report ${item.reportId} to ${where} dropped after ${attempts} attempts: ${error}`);
      return;
    }
    const delay = this.d.retryBackoffMs * 2 ** Math.min(attempts - 1, 5);
    this.d.log(`${item.domain}: report ${item.reportId} to ${where} deferred: ${error}`);
    await writeDurable(join(this.dir, `${item.id}.json`), this.dir, JSON.stringify({ ...item, attempts, nextAt: now + delay }));
  }
}
