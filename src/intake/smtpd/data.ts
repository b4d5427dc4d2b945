/**
 * data.ts — the DATA command: 354, stream the content from the socket through cleanup
 * into the queue file with smuggling-safe end-of-data detection, enforce
 * message_size_limit, smtpd_forbid_bare_newline and hopcount_limit, and answer
 * `250 2.0.0 Ok: queued as ID` only after the queue file and its directory are fsynced.
 *
 * Contract:
 * - Only `<CR><LF>.<CR><LF>` ends DATA (dot-stuff.ts DataReader, RFC 5321 §4.1.1.4);
 *   bare LF is stored as CRLF (`normalize`), or the message is rejected with `550 5.5.2
 *   $myhostname Error: bare <LF> received` and the session ends (`reject`; clients in
 *   smtpd_forbid_bare_newline_exclusions are exempt). Stray CR/LF left in the content
 *   become spaces (cleanup_replace_stray_cr_lf, cleanup.ts).
 * - Streaming with backpressure: the content goes to the queue file as it arrives; the
 *   socket is paused while more than HIGH_WATER bytes wait for the disk, so a message of
 *   any size costs about one write buffer of memory.
 * - message_size_limit counts content bytes with CRLF as one byte (as Postfix); over the
 *   limit the file is dropped at once, the rest is read and discarded, then `552 5.3.4
 *   Message size exceeds fixed limit`, nothing queued.
 * - hopcount_limit: as many Received: headers as the limit or more (ours included) →
 *   `554 5.4.0 Error: too many hops` after the content (smtpd.c, cleanup's
 *   CLEANUP_STAT_HOPS), nothing queued, cleanup's warning logged.
 * - A QueueWriteError gives `452 4.3.1 Insufficient system storage`, nothing queued.
 * - Log lines: `ID: client=unknown[addr]` (with `, sasl_method=.., sasl_username=..` after
 *   AUTH) and cleanup's `ID: message-id=<...>`; then, still before the 250, a `received`
 *   event (origin smtpd or submission) on the daemon's bus when it gave a `publish`.
 *
 * Not here: BDAT/CHUNKING (not offered), header_checks, content filters.
 */
import { networkInterfaces } from 'node:os';
import { DataReader } from '../../smtp/dot-stuff.ts';
import { QueueWriteError } from '../../queue/spool.ts';
import { formatReceived } from '../../message/received.ts';
import type { ReceivedInfo } from '../../message/received.ts';
import { baseEnvelope, CleanupStream } from '../cleanup.ts';
import { receivedEvent, smtpdOrigin } from '../../reports/received-event.ts';
import type { CleanupSettings, Transaction } from '../cleanup.ts';
import type { Outcome, Session } from './session.ts';
import { bareLfExempt } from './session.ts';

/** The host's interface addresses, re-read at most once a minute (networkInterfaces() is a system call per use). */
let interfaces: { readonly at: number; readonly set: Set<string> } | undefined;
function interfaceAddresses(): Set<string> {
  const now = Date.now();
  if (interfaces && now - interfaces.at < 60_000) return interfaces.set;
  const set = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) set.add(a.address.split('%')[0]!);
  interfaces = { at: now, set };
  return set;
}

/** local_header_rewrite_clients (postconf(5)): may this client get missing headers added? */
async function mayAddHeaders(s: Session): Promise<boolean> {
  if (s.s.alwaysAddMissingHeaders) return true;
  for (const item of s.s.localHeaderRewriteClients) {
    const v = item.toLowerCase();
    if (v === 'static:all') return true;
    if (v === 'permit_sasl_authenticated' && s.saslUser !== undefined) return true;
    if (v === 'permit_mynetworks' && (await s.s.relay.mynetworks.match(s.env.clientAddress)).kind === 'match') return true;
    if (v === 'permit_inet_interfaces') {
      const all = s.s.inetInterfaces.map((i) => i.toLowerCase());
      const ours = all.includes('all') ? interfaceAddresses() : new Set(all);
      if (ours.has(s.env.clientAddress) || (all.includes('loopback-only') && /^127\.|^::1$/.test(s.env.clientAddress))) return true;
    }
  }
  return false;
}

function transaction(s: Session): Transaction {
  const tx = s.tx!;
  const p = tx.mail.params;
  return {
    sender: tx.mail.address.address,
    recipients: tx.recipients,
    envid: p.envid,
    ret: p.ret,
    smtputf8: p.smtputf8,
    eightBitMime: p.body === '8BITMIME',
    requireTls: p.requireTls,
    arrival: new Date(),
    client: {
      name: s.clientName,
      address: s.env.clientAddress,
      port: s.env.clientPort,
      ...(s.helo !== undefined ? { helo: s.helo } : {}),
      protocol: s.protocol,
      ...(s.saslUser !== undefined ? { saslUser: s.saslUser } : {}),
    },
  };
}

/** Bytes waiting for the disk above which the socket is paused, and below which it resumes. */
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

/** The content's way to the queue file: sequential writes, the socket paused while the disk lags. */
class Intake {
  private chain: Promise<void> = Promise.resolve();
  private waiting = 0;
  private paused = false;
  error: unknown;
  dropped = false;

  constructor(
    private readonly s: Session,
    readonly stream: CleanupStream | undefined,
  ) {}

  push(data: Buffer): void {
    const stream = this.stream;
    if (!stream || this.dropped || this.error !== undefined) return;
    this.waiting += data.length;
    this.chain = this.chain.then(
      () => (this.error === undefined && !this.dropped ? stream.write(data) : undefined),
    ).then(
      () => this.drained(data.length),
      (e: unknown) => {
        this.error ??= e;
        this.drained(data.length);
      },
    );
    if (this.waiting > HIGH_WATER && !this.paused) {
      this.paused = true;
      this.s.conn.socket.pause();
    }
  }

  private drained(n: number): void {
    this.waiting -= n;
    if (this.paused && this.waiting < LOW_WATER) {
      this.paused = false;
      this.s.conn.socket.resume();
    }
  }

  /** Over the size limit: stop writing, remove the file. */
  drop(): void {
    this.dropped = true;
  }

  settled(): Promise<void> {
    return this.chain;
  }

  async discard(): Promise<void> {
    await this.chain;
    if (this.paused) this.s.conn.socket.resume();
    this.paused = false;
    await this.stream?.abort().catch(() => undefined);
  }
}

/** Read the content into the intake; the result says how it ended. */
async function readContent(s: Session, mode: 'no' | 'normalize' | 'reject', intake: Intake) {
  const dr = new DataReader({ mode, myhostname: s.s.myhostname, rejectCode: s.s.bareNewlineRejectCode, commandEndedWithBareLf: s.lastLineBareLf });
  let size = 0;
  let bytes = 0;
  const limit = s.s.messageSizeLimit;
  const end = await s.conn.readData(dr, (data) => {
    bytes += data.length;
    let lf = 0;
    for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) lf++;
    size += data.length - lf; // Postfix counts CRLF as one byte
    if (limit > 0 && size > limit) intake.drop();
    else intake.push(data);
  });
  s.dataBytes = bytes;
  await intake.settled();
  return { end, dr, tooBig: limit > 0 && size > limit };
}

function receivedInfo(s: Session, t: Transaction): Omit<ReceivedInfo, 'queueId' | 'recipients' | 'date'> {
  return {
    helo: s.helo,
    clientName: s.clientName,
    clientAddress: s.env.clientAddress,
    myhostname: s.s.myhostname,
    mailName: s.s.mailName,
    protocol: s.protocol,
    smtputf8: t.smtputf8,
    ...(s.tls && s.s.tls.receivedHeader ? { tls: s.tls } : {}),
    ...(s.saslUser !== undefined && s.s.saslAuthenticatedHeader ? { authenticatedSender: s.saslUser } : {}),
  };
}

async function cleanupSettings(s: Session): Promise<CleanupSettings> {
  return {
    myorigin: s.s.myorigin,
    myhostname: s.s.myhostname,
    mailName: s.s.mailName,
    tlsRequiredEnable: s.s.tlsRequiredEnable,
    requireTlsEsmtpHeader: s.s.requireTlsEsmtpHeader,
    addMissingHeaders: await mayAddHeaders(s),
    hopcountLimit: s.s.hopcountLimit,
    replaceStrayCrLf: s.s.replaceStrayCrLf,
    autodetectSmtputf8: s.s.smtputf8 && s.s.smtputf8Autodetect,
    detect8BitEncodingHeader: s.s.detect8BitEncodingHeader,
  };
}

/** Open the queue file before the content arrives (its ID goes into Received:). */
async function openIntake(s: Session, t: Transaction, settings: CleanupSettings): Promise<Intake> {
  const base = baseEnvelope(t, settings);
  const info = receivedInfo(s, t);
  try {
    const stream = await CleanupStream.open(s.env.spool, base, settings, (queueId) => [
      formatReceived({ ...info, queueId, recipients: base.recipients.map((r) => r.address), date: t.arrival }),
    ]);
    return new Intake(s, stream);
  } catch (e) {
    if (!(e instanceof QueueWriteError)) throw e;
    const intake = new Intake(s, undefined);
    intake.error = e;
    return intake;
  }
}

export async function dataCommand(s: Session, args: string): Promise<Outcome> {
  if (args.trim() !== '') return fail(s, '501 5.5.4 Syntax: DATA');
  if (!s.tx) return fail(s, '503 5.5.1 Error: need RCPT command');
  if (s.tx.recipients.length === 0) return fail(s, '554 5.5.1 Error: no valid recipients');
  const t = transaction(s);
  const intake = await openIntake(s, t, await cleanupSettings(s));
  await s.reply('354 End data with <CR><LF>.<CR><LF>');
  try {
    return await receive(s, intake);
  } finally {
    // Whatever did not commit leaves no file (a lost client, a refusal, an exception).
    await intake.discard();
  }
}

async function receive(s: Session, intake: Intake): Promise<Outcome> {
  const mode = s.s.bareNewline === 'reject' && (await bareLfExempt(s)) ? 'normalize' : s.s.bareNewline;
  const r = await readContent(s, mode, intake);
  if (r.end === 'eof') {
    s.log(`lost connection after DATA (${s.dataBytes} bytes) from ${s.namaddr}`);
    return 'close';
  }
  if (r.end === 'timeout') {
    s.log(`timeout after DATA (${s.dataBytes} bytes) from ${s.namaddr}`);
    await s.reply(`421 4.4.2 ${s.s.myhostname} Error: timeout exceeded`);
    return 'close';
  }
  s.where = 'END-OF-MESSAGE';
  const verdict = r.dr.verdict();
  if (verdict.action === 'reject') {
    s.logReject('END-OF-MESSAGE', verdict.reply!);
    s.resetTransaction();
    await s.reply(verdict.reply!);
    return 'close';
  }
  if (r.tooBig) {
    const reply = '552 5.3.4 Message size exceeds fixed limit';
    s.logReject('END-OF-MESSAGE', reply);
    s.resetTransaction();
    return fail(s, reply);
  }
  return finish(s, intake);
}

function storageFailure(s: Session, e: unknown): Promise<Outcome> {
  if (!(e instanceof QueueWriteError)) throw e;
  s.warn(`${s.namaddr}: ${e.message}`);
  return fail(s, '452 4.3.1 Insufficient system storage');
}

async function finish(s: Session, intake: Intake): Promise<Outcome> {
  s.resetTransaction();
  const stream = intake.stream;
  if (intake.error !== undefined || !stream) return storageFailure(s, intake.error);
  const cleanupLog = s.program.replace(/smtpd$/, 'cleanup');
  let queueId: string;
  let messageId: string;
  let envelope: { readonly sender: string; readonly recipients: readonly unknown[] };
  try {
    const { facts, envelope: final } = await stream.end();
    envelope = final;
    if (facts.tooManyHops) {
      // cleanup_message.c: "message rejected: hopcount exceeded"; smtpd.c: 554 5.4.0.
      s.env.log.write(cleanupLog, `warning: ${stream.queueId}: message rejected: hopcount exceeded`);
      return fail(s, '554 5.4.0 Error: too many hops');
    }
    messageId = facts.messageId;
    queueId = await stream.commit();
  } catch (e) {
    return storageFailure(s, e);
  }
  const sasl = s.saslUser !== undefined ? `, sasl_method=${s.saslMethod}, sasl_username=${s.saslUser}` : '';
  s.log(`${queueId}: client=${s.namaddr}${sasl}`);
  s.env.log.write(cleanupLog, `${queueId}: message-id=${messageId}`);
  // Durable now (commit fsynced the file and its directory): the event stream learns of it.
  s.env.publish?.(receivedEvent({ queueId, origin: smtpdOrigin(s.env.serviceName), sender: envelope.sender, size: stream.written, nrcpt: envelope.recipients.length, messageId }));
  await s.reply(`250 2.0.0 Ok: queued as ${queueId}`);
  s.env.onQueued?.(queueId);
  return 'ok';
}

async function fail(s: Session, reply: string): Promise<Outcome> {
  await s.reply(reply);
  return 'error';
}
