/**
 * local-cleanup.ts — one maildrop file through pickup(8) and cleanup(8) into incoming/,
 * streamed: the content is read from the maildrop file and written to the new queue file
 * piece by piece (never the whole message in memory), with pickup's `Received: by HOST
 * (sealpost, from userid N)` in front and cleanup's missing headers, stray CR/LF
 * replacement, hop count and SMTPUTF8 autodetection (smtputf8_autodetect_classes
 * `sendmail`) applied as for SMTP (cleanup.ts).
 *
 * Contract:
 * - `pickUpMaildrop()` returns what happened; it writes the log lines of pickup and
 *   cleanup. The maildrop file is left in place: the caller removes it only after this
 *   resolves (nothing lost), and records the attempt for crash recovery.
 * - The maildrop content is checked against its CRC while it streams; a mismatch, or a
 *   file that does not parse, is a QueueFileFormatError (the caller quarantines it) and
 *   leaves no incoming file.
 * - Too many hops (hopcount_limit, cleanup_message.c): mail from sendmail is not refused
 *   but bounced (cleanup_bounce.c): the incoming file is dropped, each recipient is logged
 *   `ID: to=<...>, relay=none, delay=.., delays=../0/0/0, dsn=5.4.0, status=bounced (too
 *   many hops)` under `cleanup`, and a non-delivery notice (with the postmaster copy that
 *   notify_classes asks for) is queued: `bounce: ID: sender non-delivery notification: NEW`.
 *   The notice returns the message with pickup's Received: header (at most
 *   bounce_size_limit of it, else the header only, as bounce(8) does).
 * - A QueueWriteError propagates: the maildrop file stays for the next scan.
 * - Each committed queue file (the message, or a notice) is published as a `received`
 *   event (origin `pickup` or `bounce`) through `ctx.publish`, before `onQueued`.
 *
 * Not here: watching maildrop/, crash recovery, the decision to remove the maildrop file
 * (daemon/pickup.ts); the SMTP path (smtpd/data.ts).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { Config } from '../config/types.ts';
import { encodeFields } from '../message/headers.ts';
import { mailDate } from '../message/received.ts';
import { contentCrcOf, HEADER_LENGTH, QueueFileFormatError } from '../queue/queue-file.ts';
import type { EnvelopeInput, QueueEnvelope } from '../queue/queue-file.ts';
import type { Spool } from '../queue/spool.ts';
import { buildBounce, postmasterCopy } from '../reports/bounce.ts';
import type { BounceMessage, BounceParams } from '../reports/bounce.ts';
import { formatDeliveryLine } from '../reports/delivery-log.ts';
import type { MailLog } from '../reports/maillog.ts';
import { receivedEvent, type Publish } from '../reports/received-event.ts';
import { autodetectClasses } from './smtpd/settings.ts';
import { CleanupStream } from './cleanup.ts';
import type { CleanupSettings } from './cleanup.ts';

/** What cleanup needs from the configuration for local mail. */
export function localCleanupSettings(config: Config): CleanupSettings {
  return {
    myorigin: config.get('myorigin').toLowerCase(),
    myhostname: config.get('myhostname'),
    mailName: config.get('mail_name') || 'sealpost',
    tlsRequiredEnable: config.getBool('tls_required_enable'),
    requireTlsEsmtpHeader: config.getBool('requiretls_enable') && config.getBool('requiretls_esmtp_header'),
    // cleanup(8): missing headers are always added for mail that arrives through pickup.
    addMissingHeaders: true,
    hopcountLimit: config.getInt('hopcount_limit'),
    replaceStrayCrLf: config.getBool('cleanup_replace_stray_cr_lf'),
    autodetectSmtputf8: config.getBool('smtputf8_enable') && autodetectClasses(config).includes('sendmail'),
    detect8BitEncodingHeader: config.getBool('detect_8bit_encoding_header'),
  };
}

/** The envelope of a picked-up message: the maildrop envelope, all recipients pending. */
export function pickupEnvelope(e: QueueEnvelope): EnvelopeInput {
  return {
    arrivalTime: e.arrivalTime,
    sender: e.sender,
    recipients: e.recipients.map((r) => ({
      address: r.address,
      origAddress: r.origAddress,
      ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
      ...(r.notify !== undefined ? { notify: r.notify } : {}),
    })),
    ...(e.envid !== undefined ? { envid: e.envid } : {}),
    ...(e.ret !== undefined ? { ret: e.ret } : {}),
    smtputf8: e.smtputf8,
    eightBitMime: e.eightBitMime,
    requireTls: e.requireTls,
    tlsRequiredNo: e.tlsRequiredNo,
  };
}

/** pickup(8)/cleanup(8): `Received: by HOST (Postfix, from userid N)\n\tid ID; DATE`. */
export function pickupReceived(s: CleanupSettings, uid: number, queueId: string, arrival: Date): string {
  return `Received: by ${s.myhostname} (${s.mailName}, from userid ${uid})\n\tid ${queueId}; ${mailDate(arrival)}`;
}

export type PickupResult =
  | { readonly kind: 'queued'; readonly queueId: string }
  | { readonly kind: 'bounced'; readonly queueId: string; readonly notices: readonly string[] };

export interface PickupContext {
  readonly spool: Spool;
  readonly config: Config;
  readonly log: MailLog;
  readonly now?: () => number;
  /** Called with each new incoming queue ID (notices included). */
  readonly onQueued?: ((queueId: string) => void) | undefined;
  /** The daemon's event bus: a `received` event per queued message, notices included (reports/received-event.ts). */
  readonly publish?: Publish | undefined;
}

/** The maildrop file's content, as it streams, checked against the CRC in its header. */
async function* maildropContent(path: string, env: QueueEnvelope): AsyncGenerator<Buffer> {
  const head = Buffer.alloc(HEADER_LENGTH);
  const fh = await open(path, 'r');
  try {
    await fh.read(head, 0, HEADER_LENGTH, 0);
  } finally {
    await fh.close();
  }
  const expected = contentCrcOf(head);
  let crc = 0;
  if (env.contentLength > 0) {
    const stream = createReadStream(path, { start: env.contentOffset, end: env.contentOffset + env.contentLength - 1, highWaterMark: 256 * 1024 });
    for await (const chunk of stream) {
      crc = crc32(chunk as Buffer, crc);
      yield chunk as Buffer;
    }
  }
  if (crc >>> 0 !== expected) throw new QueueFileFormatError('content checksum mismatch');
}

/** Move one maildrop file into incoming/ through cleanup; see the header. */
export async function pickUpMaildrop(
  ctx: PickupContext, maildropId: string, uid: number, adjust: (e: QueueEnvelope) => QueueEnvelope = (e) => e,
): Promise<PickupResult> {
  const path = ctx.spool.path('maildrop', maildropId);
  const maildrop = adjust(await ctx.spool.readEnvelopeAsync('maildrop', maildropId));
  const s = localCleanupSettings(ctx.config);
  const base = pickupEnvelope(maildrop);
  const arrival = new Date(base.arrivalTime);
  let received = '';
  const stream = await CleanupStream.open(ctx.spool, base, s, (id) => [(received = pickupReceived(s, uid, id, arrival))]);
  let committed = false;
  try {
    ctx.log.write('pickup', `${stream.queueId}: uid=${uid} from=<${maildrop.sender}>`);
    for await (const chunk of maildropContent(path, maildrop)) await stream.write(chunk);
    const { facts, envelope } = await stream.end();
    if (facts.tooManyHops) {
      ctx.log.write('cleanup', `warning: ${stream.queueId}: message rejected: hopcount exceeded`);
      ctx.log.write('cleanup', `${stream.queueId}: message-id=${facts.messageId}`);
      const notices = await bounceTooManyHops(ctx, stream.queueId, maildrop, path, received);
      return { kind: 'bounced', queueId: stream.queueId, notices };
    }
    const queueId = await stream.commit();
    committed = true;
    ctx.log.write('cleanup', `${queueId}: message-id=${facts.messageId}`);
    ctx.publish?.(receivedEvent({ queueId, origin: 'pickup', sender: envelope.sender, size: stream.written, nrcpt: envelope.recipients.length, messageId: facts.messageId }));
    ctx.onQueued?.(queueId);
    return { kind: 'queued', queueId };
  } finally {
    if (!committed) await stream.abort().catch(() => undefined);
  }
}

/** The first bytes of the maildrop content: enough for bounce(8)'s bounce_size_limit. */
async function contentPrefix(path: string, env: QueueEnvelope, limit: number): Promise<Buffer> {
  const want = Math.min(env.contentLength, Math.max(2 * limit, 1024 * 1024));
  const buf = Buffer.alloc(want);
  const fh = await open(path, 'r');
  try {
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, env.contentOffset + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** cleanup_bounce(): every recipient bounced with `5.4.0 too many hops`, the notices queued. */
async function bounceTooManyHops(ctx: PickupContext, queueId: string, maildrop: QueueEnvelope, path: string, received: string): Promise<string[]> {
  const now = ctx.now?.() ?? Date.now();
  const resolutionLimit = ctx.config.getInt('delay_logging_resolution_limit');
  const recipients = maildrop.recipients.map((r) => ({ index: r.index, address: r.address, origAddress: r.origAddress, ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}), ...(r.notify !== undefined ? { notify: r.notify } : {}), status: '5.4.0', action: 'failed' as const, reason: 'too many hops' }));
  for (const r of recipients) {
    const timing = { started: now, connected: now, finished: now };
    ctx.log.write('cleanup', formatDeliveryLine({ queueId, address: r.address, origAddress: r.origAddress, relay: 'none', arrivalTime: maildrop.arrivalTime, activeTime: now, timing, dsn: r.status, status: 'bounced', reason: r.reason, resolutionLimit }));
  }
  const prefix = await contentPrefix(path, maildrop, ctx.config.getInt('bounce_size_limit'));
  const content = Buffer.concat([encodeFields([received]), prefix]);
  const p: BounceParams = { kind: 'failure', queueId, envelope: maildrop, content, recipients, config: ctx.config, now };
  const out: string[] = [];
  const notice = buildBounce(p);
  if (notice) {
    const id = await queueNotice(ctx, notice, now);
    ctx.log.write('bounce', `${queueId}: sender non-delivery notification: ${id}`);
    out.push(id);
  }
  const copy = postmasterCopy(p);
  if (copy) {
    const id = await queueNotice(ctx, copy, now);
    ctx.log.write('bounce', `${queueId}: postmaster non-delivery notification: ${id}`);
    out.push(id);
  }
  return out;
}

async function queueNotice(ctx: PickupContext, n: BounceMessage, now: number): Promise<string> {
  const envelope: EnvelopeInput = {
    arrivalTime: now,
    sender: n.sender,
    recipients: [{ address: n.recipient, origAddress: n.recipient }],
    smtputf8: n.smtputf8,
    eightBitMime: n.eightBitMime,
    requireTls: n.requireTls,
  };
  const id = await ctx.spool.writeMessage(envelope, n.content, 'incoming');
  ctx.publish?.(receivedEvent({ queueId: id, origin: 'bounce', sender: n.sender, size: n.content.length, nrcpt: 1, time: now }));
  ctx.onQueued?.(id);
  return id;
}
