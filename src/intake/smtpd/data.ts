/**
 * data.ts — the DATA command: 354, read the content with smuggling-safe
 * end-of-data detection, enforce message_size_limit and
 * smtpd_forbid_bare_newline, hand the message to cleanup, and answer
 * `250 2.0.0 Ok: queued as ID` only after the queue file is durable.
 *
 * Contract:
 * - Only `<CR><LF>.<CR><LF>` ends DATA (dot-stuff.ts DataReader, RFC 5321
 *   §4.1.1.4); bare LF is stored as CRLF (`normalize`), or the message is
 *   rejected with `550 5.5.2 $myhostname Error: bare <LF> received` and the
 *   session ends (`reject`; clients in smtpd_forbid_bare_newline_exclusions
 *   are exempt).
 * - message_size_limit counts content bytes with CRLF as one byte (as
 *   Postfix); over the limit the rest is read and dropped, then `552 5.3.4
 *   Message size exceeds fixed limit`, nothing queued.
 * - A QueueWriteError gives `452 4.3.1 Insufficient system storage`,
 *   nothing queued.
 * - Log lines: `ID: client=unknown[addr]` (with `, sasl_method=..,
 *   sasl_username=..` after AUTH) and cleanup's `ID: message-id=<...>`.
 *
 * Not here: BDAT/CHUNKING (not offered), header_checks, content filters.
 */
import { networkInterfaces } from 'node:os';
import { DataReader } from '../../smtp/dot-stuff.ts';
import { QueueWriteError } from '../../queue/spool.ts';
import { queueMessage } from '../cleanup.ts';
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

/** Read the content; the result says how it ended and what we kept. */
async function readContent(s: Session, mode: 'no' | 'normalize' | 'reject') {
  const dr = new DataReader({ mode, myhostname: s.s.myhostname, rejectCode: s.s.bareNewlineRejectCode, commandEndedWithBareLf: s.lastLineBareLf });
  const chunks: Buffer[] = [];
  let size = 0;
  let bytes = 0;
  const limit = s.s.messageSizeLimit;
  const end = await s.conn.readData(dr, (data) => {
    bytes += data.length;
    let lf = 0;
    for (let i = data.indexOf(0x0a); i >= 0; i = data.indexOf(0x0a, i + 1)) lf++;
    size += data.length - lf; // Postfix counts CRLF as one byte
    if (limit === 0 || size <= limit) chunks.push(data);
  });
  s.dataBytes = bytes;
  return { end, dr, content: Buffer.concat(chunks), tooBig: limit > 0 && size > limit };
}

export async function dataCommand(s: Session, args: string): Promise<Outcome> {
  if (args.trim() !== '') return fail(s, '501 5.5.4 Syntax: DATA');
  if (!s.tx) return fail(s, '503 5.5.1 Error: need RCPT command');
  if (s.tx.recipients.length === 0) return fail(s, '554 5.5.1 Error: no valid recipients');
  await s.reply('354 End data with <CR><LF>.<CR><LF>');
  const mode = s.s.bareNewline === 'reject' && (await bareLfExempt(s)) ? 'normalize' : s.s.bareNewline;
  const r = await readContent(s, mode);
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
  return queue(s, r.content);
}

async function queue(s: Session, content: Buffer): Promise<Outcome> {
  const t = transaction(s);
  const settings: CleanupSettings = {
    myorigin: s.s.myorigin,
    myhostname: s.s.myhostname,
    mailName: s.s.mailName,
    tlsRequiredEnable: s.s.tlsRequiredEnable,
    addMissingHeaders: await mayAddHeaders(s),
  };
  const received = {
    helo: s.helo,
    clientName: s.clientName,
    clientAddress: s.env.clientAddress,
    myhostname: s.s.myhostname,
    mailName: s.s.mailName,
    protocol: s.protocol,
    ...(s.tls && s.s.tls.receivedHeader ? { tls: s.tls } : {}),
    ...(s.saslUser !== undefined && s.s.saslAuthenticatedHeader ? { authenticatedSender: s.saslUser } : {}),
  };
  s.resetTransaction();
  let queued;
  try {
    queued = await queueMessage(s.env.spool, t, content, { received }, settings);
  } catch (e) {
    if (!(e instanceof QueueWriteError)) throw e;
    s.warn(`${s.namaddr}: ${e.message}`);
    return fail(s, '452 4.3.1 Insufficient system storage');
  }
  const sasl = s.saslUser !== undefined ? `, sasl_method=${s.saslMethod}, sasl_username=${s.saslUser}` : '';
  s.log(`${queued.queueId}: client=${s.namaddr}${sasl}`);
  s.env.log.write(s.program.replace(/smtpd$/, 'cleanup'), `${queued.queueId}: message-id=${queued.messageId}`);
  await s.reply(`250 2.0.0 Ok: queued as ${queued.queueId}`);
  s.env.onQueued?.(queued.queueId);
  return 'ok';
}

async function fail(s: Session, reply: string): Promise<Outcome> {
  await s.reply(reply);
  return 'error';
}
