/**
 * transaction.ts — one mail transaction on a ready session (Postfix
 * smtp_loop()): MAIL FROM with the ESMTP parameters the server offers, RCPT
 * TO per recipient, DATA with the dot-stuffed content, per-recipient results.
 *
 * Contract:
 * - `buildCommands()` is pure: the MAIL FROM and RCPT TO lines for a request
 *   and a server's capabilities (SIZE=, BODY=8BITMIME, SMTPUTF8, REQUIRETLS,
 *   RET=, ENVID=; NOTIFY=, ORCPT= only when DSN is offered).
 * - `runTransaction()` never rejects for network or protocol trouble: it
 *   returns a result per recipient (`sent` with the end-of-data reply, or a
 *   Trouble) plus `sessionTrouble` when the connection broke (recipients not
 *   yet decided then share it) and `reusable` (the server is in a clean state
 *   for another transaction).
 * - RFC 2920: with PIPELINING, MAIL, every RCPT and DATA go out in one write
 *   and the replies are matched in order; without it, one command per reply.
 * - Pre-checks of smtp_proto.c: message size against the server's SIZE
 *   limit (5.3.4), SMTPUTF8 required but not offered (5.6.7).
 * - The content is read from the queue file only after the 354 reply, piece
 *   by piece through content.ts dataStream() (MIME downgrade when the server
 *   is not 8BITMIME-capable and disable_mime_output_conversion = no — then
 *   MAIL FROM carries no SIZE=, smtp_proto.c; bare CR/LF to CRLF;
 *   smtp_line_length_limit; dot-stuffing), each piece written only when the
 *   socket took the previous one (chat.write waits for `drain`). A queue file
 *   that cannot be read ends the connection without the final dot.
 *
 * Not here: connection setup (session.ts), what the results mean (trouble.ts).
 */
import type { DeliveryRecipient, DeliveryRequest } from '../types.ts';
import type { EhloCapabilities } from '../../smtp/ehlo.ts';
import { envelopeNeedsSmtpUtf8, formatMailFrom, formatRcptTo, xtextDecode } from '../../smtp/esmtp-params.ts';
import type { SmtpReply } from '../../smtp/reply.ts';
import { ChatFailure } from './chat.ts';
import { dataStream, eightBitCapable, mimeDowngradeWanted, unreadableContent, type ContentSettings, type MessageSource } from './content.ts';
import type { Session, Timeouts } from './session.ts';
import { hostSaid, sizeExceeded, smtputf8NotOffered, streamFailure } from './trouble.ts';
import type { Trouble, Where } from './trouble.ts';

export type RecipientResult =
  | { readonly kind: 'sent'; readonly reply: SmtpReply }
  | { readonly kind: 'trouble'; readonly trouble: Trouble };

export interface TransactionResult {
  /** Results by recipient index; recipients missing here were not decided (see sessionTrouble / messageTrouble). */
  readonly results: ReadonlyMap<number, RecipientResult>;
  /** The connection failed: every undecided recipient shares this. */
  readonly sessionTrouble?: Trouble;
  /** The connection failed before the server answered MAIL FROM (nothing was decided: a stale cached session). */
  readonly brokeBeforeMail?: boolean;
  readonly reusable: boolean;
  /** When MAIL FROM was sent (the start of delays=d). */
  readonly mailStarted: number;
}

export interface MessageContent {
  /** The queue file's content, read again for every DATA (content.ts). */
  readonly source: MessageSource;
  /** The header section is not pure ASCII (for the SMTPUTF8 check). */
  readonly headersNeedUtf8: boolean;
  readonly settings: ContentSettings;
  /** Called the first time a line is broken at smtp_line_length_limit (Postfix logs it once). */
  readonly onLineBroken?: () => void;
}

/** ORCPT as stored (`rfc822;xtext`): type and decoded address. */
function orcptOf(r: DeliveryRecipient): { type: string; address: string } | undefined {
  if (r.orcpt) {
    const semi = r.orcpt.indexOf(';');
    if (semi > 0) {
      const raw = r.orcpt.slice(semi + 1);
      return { type: r.orcpt.slice(0, semi), address: xtextDecode(raw) ?? raw };
    }
  }
  // smtp_proto.c: without an ORCPT from the client, send the original recipient as rfc822.
  if (r.origAddress) return { type: 'rfc822', address: r.origAddress };
  return undefined;
}

/**
 * `requireTls`: what the session decided for an active REQUIRETLS request
 * (session.ts; absent when REQUIRETLS does not apply to this message here).
 */
export function buildCommands(
  request: DeliveryRequest, recipients: readonly DeliveryRecipient[], caps: EhloCapabilities, tlsUsed: boolean, requireTls?: { readonly send: boolean },
): { mail: string; rcpts: string[] } {
  const useUtf8 = request.smtputf8 && caps.smtpUtf8;
  const mail = formatMailFrom(request.sender, {
    // RFC 1870 §6: SIZE= with the message size when SIZE is offered.
    size: caps.size ? request.messageSize : undefined,
    // RFC 6152 §2: BODY=8BITMIME only to a server that offers 8BITMIME.
    body: request.eightBitMime && caps.eightBitMime ? '8BITMIME' : undefined,
    smtputf8: useUtf8,
    // RFC 8689 §4.1: REQUIRETLS only inside TLS to a server that offers it (requiretls.ts afterTlsEhlo).
    requireTls: requireTls?.send === true && tlsUsed && caps.requireTls,
    // RFC 3461 §4.3, §4.4: RET and ENVID only when DSN is offered. smtp_proto.c (20250825): a
    // REQUIRETLS message that goes on without REQUIRETLS asks for headers only in a bounce.
    ret: caps.dsn ? (requireTls && !requireTls.send ? 'HDRS' : request.ret) : undefined,
    envid: caps.dsn ? request.envid : undefined,
  });
  const rcpts = recipients.map((r) => formatRcptTo(r.address, caps.dsn
    ? { notify: r.notify, orcpt: orcptOf(r) }
    : {}));
  return { mail, rcpts };
}

/** smtp_proto.c pre-checks after EHLO. */
export function precheck(session: Session, request: DeliveryRequest, content: MessageContent): Trouble | undefined {
  const limit = session.caps.sizeLimit;
  if (session.caps.size && limit !== undefined && limit > 0 && request.messageSize > limit) {
    return sizeExceeded(session.server, request.messageSize, limit);
  }
  if (request.smtputf8 && !session.caps.smtpUtf8
    && (content.headersNeedUtf8 || envelopeNeedsSmtpUtf8(request.sender, request.recipients.map((r) => r.address)))) {
    return smtputf8NotOffered(session.server);
  }
  return undefined;
}

class Broken extends Error {
  constructor(readonly trouble: Trouble) {
    super(trouble.reason);
  }
}

async function read(session: Session, timeoutMs: number, where: Where): Promise<SmtpReply> {
  try {
    return await session.chat.reply(timeoutMs);
  } catch (err) {
    if (err instanceof ChatFailure) throw new Broken(streamFailure(err.kind, session.server, where, err.kind === 'protocol' ? err.message : ''));
    throw err;
  }
}

async function send(session: Session, data: string | Buffer, timeoutMs: number, where: Where): Promise<void> {
  try {
    await session.chat.write(data, timeoutMs);
  } catch (err) {
    if (err instanceof ChatFailure) throw new Broken(streamFailure(err.kind, session.server, where, err.kind === 'protocol' ? err.message : ''));
    throw err;
  }
}

export async function runTransaction(
  session: Session, request: DeliveryRequest, recipients: readonly DeliveryRecipient[], content: MessageContent, t: Timeouts, now: () => number,
): Promise<TransactionResult> {
  const results = new Map<number, RecipientResult>();
  const mailStarted = now();
  const downgrade = mimeDowngradeWanted(content.settings, session.caps);
  // smtp_proto.c: SMTPUTF8 without 8BITMIME counts as 8BITMIME; "Don't announce SIZE if
  // we're going to MIME downgrade."
  const caps = { ...session.caps, eightBitMime: eightBitCapable(session.caps), size: session.caps.size && !downgrade };
  const { mail, rcpts } = buildCommands(request, recipients, caps, session.tlsUsed, session.requireTls);
  const pipelining = session.caps.pipelining;
  let clean = true;
  let mailAnswered = false;
  try {
    // RFC 2920 §3.1: MAIL, RCPTs and DATA may be sent as one group; replies come back in order.
    if (pipelining) await send(session, `${mail}\r\n${rcpts.join('\r\n')}\r\nDATA\r\n`, t.mail, 'sending MAIL FROM');
    else await send(session, `${mail}\r\n`, t.mail, 'sending MAIL FROM');
    const mailReply = await read(session, t.mail, 'sending MAIL FROM');
    mailAnswered = true;
    const mailOk = mailReply.code >= 200 && mailReply.code < 300;
    if (!mailOk) {
      const tr = hostSaid(session.server, mailReply, 'MAIL FROM command', 'message');
      for (const r of recipients) results.set(r.index, { kind: 'trouble', trouble: tr });
      clean = false;
      if (pipelining) {
        // Drain the pipelined RCPT and DATA replies so the session stays in step.
        for (let i = 0; i < rcpts.length; i++) await read(session, t.rcpt, 'sending RCPT TO');
        const d = await read(session, t.dataInit, 'sending DATA command');
        if (d.code === 354) await finishEmptyData(session, t);
      }
      return { results, reusable: await rset(session, t), mailStarted };
    }
    const accepted: DeliveryRecipient[] = [];
    for (let i = 0; i < recipients.length; i++) {
      const r = recipients[i]!;
      if (!pipelining) await send(session, `${rcpts[i]}\r\n`, t.rcpt, 'sending RCPT TO');
      const reply = await read(session, t.rcpt, 'sending RCPT TO');
      if (reply.code >= 200 && reply.code < 300) accepted.push(r);
      else results.set(r.index, { kind: 'trouble', trouble: hostSaid(session.server, reply, 'RCPT TO command', 'recipient') });
    }
    if (!pipelining) {
      if (accepted.length === 0) return { results, reusable: await rset(session, t), mailStarted };
      await send(session, 'DATA\r\n', t.dataInit, 'sending DATA command');
    }
    const dataReply = await read(session, t.dataInit, 'sending DATA command');
    if (accepted.length === 0) {
      // RFC 2920 §3.1: DATA accepted although no recipient was: send an empty message end.
      if (dataReply.code === 354) await finishEmptyData(session, t);
      return { results, reusable: await rset(session, t), mailStarted };
    }
    if (dataReply.code !== 354) {
      const tr = hostSaid(session.server, dataReply, 'DATA command', 'message');
      for (const r of accepted) results.set(r.index, { kind: 'trouble', trouble: tr });
      return { results, reusable: await rset(session, t), mailStarted };
    }
    const unreadable = await sendData(session, content, downgrade, t);
    if (unreadable) {
      // smtp_proto.c: "abort stream with prejudice" — no final dot, the session is not reused.
      session.chat.destroy();
      for (const r of accepted) results.set(r.index, { kind: 'trouble', trouble: unreadable });
      return { results, reusable: false, mailStarted };
    }
    const end = await read(session, t.dataDone, 'sending end of data -- message may be sent more than once');
    for (const r of accepted) {
      results.set(r.index, end.code >= 200 && end.code < 300
        ? { kind: 'sent', reply: end }
        : { kind: 'trouble', trouble: hostSaid(session.server, end, 'end of DATA command', 'message') });
    }
    return { results, reusable: clean, mailStarted };
  } catch (err) {
    if (err instanceof Broken) {
      session.chat.destroy();
      return { results, sessionTrouble: err.trouble, reusable: false, mailStarted, ...(mailAnswered ? {} : { brokeBeforeMail: true }) };
    }
    throw err;
  }
}

const NOTHING = Buffer.alloc(0);

/**
 * Wait until the socket holds none of what was written (dataStream may reuse the buffer of
 * the piece just sent for the next one). An empty write's callback runs once every earlier
 * write is done — `drain` alone would not come when the last write stayed under the high
 * water mark (TLS sockets do that on every write). A connection that fails meanwhile is left
 * to the next write to report.
 */
function flushed(session: Session, timeoutMs: number, where: Where): Promise<void> {
  const socket = session.chat.current;
  if (socket.writableLength === 0 || socket.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Broken(streamFailure('timeout', session.server, where, '')));
    }, timeoutMs);
    socket.write(NOTHING, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Send the content after 354, one piece at a time (backpressure: each write waits for the
 * socket to drain, and the next piece is read only once the socket holds none of this one).
 * A socket failure throws Broken; a queue file that cannot be read returns its Trouble
 * (nothing after the last piece, in particular no final dot, was sent).
 */
async function sendData(session: Session, content: MessageContent, downgrade: boolean, t: Timeouts): Promise<Trouble | undefined> {
  const stream = dataStream(content.source, {
    settings: content.settings, downgrade, ...(content.onLineBroken ? { onLineBroken: content.onLineBroken } : {}),
  });
  try {
    for (;;) {
      let next: IteratorResult<Buffer>;
      try {
        next = await stream.next();
      } catch (err) {
        return unreadableContent(session.relay, err);
      }
      if (next.done) return undefined;
      await send(session, next.value, t.dataXfer, 'sending message body');
      await flushed(session, t.dataXfer, 'sending message body');
    }
  } finally {
    // Closes the queue file when the socket failed mid-stream.
    await stream.return(undefined);
  }
}

async function finishEmptyData(session: Session, t: Timeouts): Promise<void> {
  await send(session, '.\r\n', t.dataXfer, 'sending message body');
  await read(session, t.dataDone, 'sending end of data -- message may be sent more than once');
}

/** RSET after an aborted transaction; true when the session is usable again. */
async function rset(session: Session, t: Timeouts): Promise<boolean> {
  try {
    await session.chat.write('RSET\r\n', t.rset);
    const r = await session.chat.reply(t.rset);
    return r.code >= 200 && r.code < 300;
  } catch {
    return false;
  }
}
