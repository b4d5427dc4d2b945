/**
 * sendmail.ts — `sealpost sendmail` and the binary invoked as `sendmail`: the
 * Sendmail-compatible submission interface of Postfix's sendmail(1).
 *
 * Contract:
 * - Reads the message from standard input and writes it to maildrop/ through
 *   the spool (intake/maildrop.ts MaildropStream: the header is held, the body
 *   streams to the file); exit 0 only once the file is fsynced. The
 *   daemon need not run: pickup takes the file when it starts.
 *   A user who may not write maildrop/ (mode 1730) goes through the setgid
 *   `$daemon_directory/postdrop` helper (intake/postdrop.ts), which accepts a
 *   non-default configuration directory only when the default main.cf lists
 *   it in alternate_config_directories, as Postfix's postdrop does.
 * - Options as sendmail(1): recipients as arguments (each an address list);
 *   `-t` adds the To/Cc/Bcc (or Resent-*) addresses and removes Bcc:;
 *   `-i`/`-oi` (a lone `.` does not end input); `-f`/`-r sender` (`<>` is the
 *   null sender); `-F full_name` (else $NAME) for a From: header added when
 *   the message has none; `-N` (`never` or `success,delay,failure`), `-R
 *   full|hdrs`, `-V envid` recorded in the envelope (bad -N/-R values are
 *   warned about and ignored, as Postfix does); `-B 8BITMIME`; `-bm`
 *   (default), `-bp` (= mailq), `-bs` (SMTP on stdin/stdout), `-bi`
 *   (newaliases: nothing to do), `-q` (flush); `-C dir`; other `-o x`, `-v`,
 *   `-U`, `-n`, ... are ignored as Postfix ignores them.
 * - Bare local parts get `@$myorigin` (append_at_myorigin). The default sender
 *   is the login name.
 * - Errors are `sendmail: fatal: USER(UID): text` with sysexits codes:
 *   EX_USAGE for bad options or no recipients on the command line,
 *   EX_DATAERR for `-t` without recipients in the header, EX_TEMPFAIL when the
 *   queue cannot be written.
 *
 * Not here: the maildrop format and header parsing (intake/maildrop.ts), the
 * header additions (daemon/pickup.ts), the SMTP session for -bs (intake/smtpd).
 */
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { EX, UserError, describeError } from '../lib/errors.ts';
import { fromWithFullName, hasFrom, headerRecipients, MaildropStream, parseAddressList, removeBcc } from '../intake/maildrop.ts';
import { mayWriteDirectly, submitThroughPostdrop } from '../intake/postdrop.ts';
import { withHeaders } from '../message/headers.ts';
import { encodeQueueFile, type DsnNotify, type EnvelopeInput } from '../queue/queue-file.ts';
import { createSpool, QueueWriteError } from '../queue/spool.ts';
import type { CommandContext } from './context.ts';
import { parseSendmailArgs, prescanConfigDir, SendmailFatal, senderAddress, type SendmailOptions, type SendmailSettings } from './sendmail-options.ts';

interface Submission {
  readonly configDir: string;
  extract: boolean;
  ignoreDots: boolean;
  sender: string | undefined;
  fullName: string | undefined;
  notify: DsnNotify[] | undefined;
  ret: 'FULL' | 'HDRS' | undefined;
  envid: string | undefined;
  eightBit: boolean;
  requireTls: boolean | undefined;
  smtputf8: boolean | undefined;
  recipients: string[];
}

function who(): { user: string; uid: number } {
  try {
    const u = userInfo();
    return { user: u.username, uid: u.uid };
  } catch {
    return { user: 'unknown', uid: process.getuid?.() ?? -1 };
  }
}

/** A sendmail fatal (exit 75, as every Postfix sendmail fatal: see sendmail-options.ts). */
class SendmailError extends UserError {}

function settingsOf(config: LoadedConfig): SendmailSettings {
  return {
    requiretlsEnable: config.getBool('requiretls_enable'),
    smtputf8Enable: config.getBool('smtputf8_enable'),
    verpFilter: config.get('verp_delimiter_filter'),
    verpDefault: config.get('default_verp_delimiters'),
  };
}

/** What the enqueue mode needs from the parsed options. */
function submission(configDir: string, o: SendmailOptions, env: CommandContext['env']): Submission {
  const recipients: string[] = [];
  for (const r of o.operands) recipients.push(...parseAddressList(r));
  return {
    configDir,
    extract: o.extract,
    ignoreDots: o.ignoreDots,
    sender: o.sender,
    // sendmail(1) -F overrides the NAME environment variable.
    fullName: o.fullName ?? env.NAME,
    notify: o.notify,
    ret: o.ret,
    envid: o.envid,
    eightBit: o.encoding === '8BITMIME',
    requireTls: o.requireTls,
    smtputf8: o.smtputf8,
    recipients,
  };
}

/** `<addr>` → `addr`; `<>` → ''. */
function stripAngles(a: string): string {
  const t = a.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

function qualify(address: string, config: LoadedConfig): string {
  if (address === '' || address.includes('@') || !config.getBool('append_at_myorigin')) return address;
  return `${address}@${config.get('myorigin').toLowerCase()}`;
}

/**
 * Read standard input into the maildrop file without holding the message (MaildropStream):
 * the header first (-t recipients, Bcc: removal and the -F From: need it), then the body as
 * it comes, checked against message_size_limit on the way.
 */
async function submit(ctx: CommandContext, sub: Submission, config: LoadedConfig): Promise<number> {
  const { user, uid } = who();
  const fatal = (text: string, code: number): never => {
    throw new SendmailError(`${user}(${uid}): ${text}`, code);
  };
  const drop = new MaildropStream({ ignoreDots: sub.ignoreDots });
  const input = ctx.stdin[Symbol.asyncIterator]();
  let eof = false;
  for (;;) {
    const next = await input.next();
    if (next.done) {
      eof = true;
      drop.endOfInput();
      break;
    }
    if (drop.collect(typeof next.value === 'string' ? Buffer.from(next.value) : (next.value as Buffer))) break;
  }
  let header = drop.headerBytes();
  let sender = user;
  if (sub.sender !== undefined) {
    const f = senderAddress(sub.sender);
    if (f.malformed) ctx.stderr.write(`sendmail: warning: -f option specified malformed sender: ${sub.sender}\n`);
    sender = f.address;
  }
  sender = qualify(sender, config);
  const recipients = [...sub.recipients];
  if (sub.extract) {
    recipients.push(...headerRecipients(header));
    header = removeBcc(header);
  }
  if (recipients.length === 0) {
    if (sub.extract) fatal('No recipient addresses found in message header', EX.DATAERR);
    fatal('Recipient addresses must be specified on the command line or via the -t option', EX.USAGE);
  }
  if (sub.fullName !== undefined && sub.fullName !== '' && !hasFrom(header)) {
    // sendmail(1) -F: used only for a message without From:; pickup adds the other headers.
    header = withHeaders(header, [], [fromWithFullName(sub.fullName, sender)]);
  }
  const envelope: EnvelopeInput = {
    arrivalTime: Date.now(),
    sender,
    recipients: recipients.map((r) => {
      const address = qualify(stripAngles(r), config);
      return { address, origAddress: r, ...(sub.notify ? { notify: sub.notify } : {}) };
    }),
    ...(sub.envid !== undefined ? { envid: sub.envid } : {}),
    ...(sub.ret !== undefined ? { ret: sub.ret } : {}),
    eightBitMime: sub.eightBit,
    ...(sub.requireTls !== undefined ? { requireTls: sub.requireTls } : {}),
    ...(sub.smtputf8 !== undefined ? { smtputf8: sub.smtputf8 } : {}),
  };
  const limit = config.getSize('message_size_limit');
  const queueDir = config.get('queue_directory');
  const direct = mayWriteDirectly(queueDir);
  try {
    const spool = direct ? await createSpool(queueDir, { longQueueIds: config.getBool('enable_long_queue_ids') }) : undefined;
    // Not allowed into maildrop/ (mode 1730): the content is collected for the setgid postdrop
    // helper, which writes the file as Postfix's postdrop does.
    if (spool) await drop.open(spool, envelope, header);
    else drop.openInMemory(header);
    try {
      if (!eof && !drop.inputEnded) {
        for (;;) {
          const next = await input.next();
          if (next.done) break;
          await drop.write(typeof next.value === 'string' ? Buffer.from(next.value) : (next.value as Buffer));
          if (limit > 0 && drop.size > limit) fatal('Message file too big', EX.DATAERR);
        }
      }
      await drop.drain();
      if (limit > 0 && drop.size > limit) fatal('Message file too big', EX.DATAERR);
      if (!spool) {
        const helper = join(config.get('daemon_directory'), 'postdrop');
        const r = await submitThroughPostdrop(helper, sub.configDir, encodeQueueFile(envelope, drop.memoryContent()), ctx.stderr);
        return 'id' in r ? EX.OK : r.code;
      }
      await drop.finish(envelope);
    } catch (err) {
      await drop.abort();
      throw err;
    }
  } catch (err) {
    if (err instanceof SendmailError) throw err;
    if (err instanceof QueueWriteError || (err as NodeJS.ErrnoException).code !== undefined) {
      fatal(`queue file write error: ${(err as Error).message}`, EX.TEMPFAIL);
    }
    throw err;
  }
  return EX.OK;
}

/** -bs: one SMTP session on stdin/stdout through the listener's session code, as `smtpd -S`. */
async function smtpOnStdio(ctx: CommandContext, config: LoadedConfig): Promise<number> {
  const [{ SmtpConnection }, { Session }, { runSession }, { smtpdSettings }, { memoryMailLog }] = await Promise.all([
    import('../intake/smtpd/connection.ts'),
    import('../intake/smtpd/session.ts'),
    import('../intake/smtpd/command-loop.ts'),
    import('../intake/smtpd/settings.ts'),
    import('../reports/maillog.ts'),
  ]);
  const settings = smtpdSettings(config);
  const queueDir = config.get('queue_directory');
  if (!mayWriteDirectly(queueDir, 'incoming')) {
    throw new SendmailError(`queue file write error: ${queueDir}: -bs writes the queue directly and this user may not; submit without -bs (sendmail reads the message from standard input)`, EX.TEMPFAIL);
  }
  let spool;
  try {
    spool = await createSpool(queueDir, { longQueueIds: config.getBool('enable_long_queue_ids') });
  } catch (err) {
    throw new SendmailError(`queue file write error: ${(err as Error).message}`, EX.TEMPFAIL);
  }
  const stream = Duplex.from({ readable: ctx.stdin, writable: ctx.stdout });
  // The session only reads, writes and ends the stream; there is no TLS on stdio.
  const socket = Object.assign(stream, { setNoDelay: () => socket, setKeepAlive: () => socket, setTimeout: () => socket }) as unknown as Socket;
  const conn = new SmtpConnection(socket, settings.lineLengthLimit, settings.timeoutMs);
  const session = new Session(conn, {
    settings,
    spool,
    log: memoryMailLog(config.get('syslog_name') || 'sealpost'),
    serviceName: 'sendmail',
    clientAddress: '127.0.0.1',
    clientPort: 0,
    localAddress: '127.0.0.1',
  });
  await runSession(session);
  return EX.OK;
}

/** Run another command for a mode sendmail delegates (postqueue, postfix start). */
async function delegate(ctx: CommandContext, configDir: string, load: () => Promise<{ main: (c: CommandContext) => Promise<number> }>, prog: string, argv: string[]): Promise<number> {
  const m = await load();
  return m.main({ ...ctx, prog, argv: ['-c', configDir, ...argv] });
}

async function dispatch(ctx: CommandContext, o: SendmailOptions, config: LoadedConfig): Promise<number> {
  const configDir = config.configDir;
  const postqueue = () => import('./postqueue.ts');
  // sendmail.c: "-qinterval" outside daemon mode exits at once.
  if (o.queueInterval !== undefined && o.mode !== 'daemon') return EX.OK;
  switch (o.mode) {
    case 'mailq':
      return delegate(ctx, configDir, postqueue, 'sealpost/mailq', []);
    case 'flush':
      return delegate(ctx, configDir, postqueue, 'sealpost/postqueue', ['-f']);
    case 'daemon':
      return delegate(ctx, configDir, () => import('./daemon.ts'), 'sealpost/start', []);
    case 'newaliases':
    case 'ignore':
      // sealpost keeps no aliases(5) database and no host status: nothing to do.
      return EX.OK;
    case 'user-smtp':
      return smtpOnStdio(ctx, config);
    case 'enqueue':
      break;
  }
  if (o.siteToFlush !== undefined) return delegate(ctx, configDir, postqueue, 'sealpost/postqueue', ['-s', o.siteToFlush]);
  if (o.idToFlush !== undefined) return delegate(ctx, configDir, postqueue, 'sealpost/postqueue', ['-i', o.idToFlush]);
  if (o.verify) throw new SendmailError('-bv (address verification report by mail) is not supported by sealpost', EX.TEMPFAIL);
  if (o.verp !== undefined) throw new SendmailError('-XV (VERP) is not supported by sealpost', EX.TEMPFAIL);
  if (o.verbose === 1) {
    // sendmail(1): one -v asks for a report of the first delivery attempt; sealpost sends none.
    ctx.stderr.write(`sendmail: warning: -v: sealpost sends no delivery status report; the message is queued without one\n`);
  }
  return submit(ctx, submission(configDir, o, ctx.env), config);
}

export async function main(ctx: CommandContext): Promise<number> {
  // Postfix's sendmail speaks as its program name: sendmail, or newaliases.
  const invoked = ctx.prog.replace(/^.*\//, '') === 'newaliases' ? 'newaliases' : 'sendmail';
  try {
    // sendmail.c: -C is found first, main.cf is read, then the options are parsed.
    const configDir = prescanConfigDir(ctx.argv, ctx.env) ?? resolveConfigDir(undefined, ctx.env);
    const config = loadConfig({ configDir });
    const o = parseSendmailArgs(ctx.argv, invoked, settingsOf(config));
    for (const w of o.warnings) ctx.stderr.write(`${invoked}: warning: ${w}\n`);
    return await dispatch(ctx, o, config);
  } catch (err) {
    const d = describeError(err);
    if (d.bug) throw err;
    if (err instanceof SendmailFatal) {
      for (const w of err.warnings) ctx.stderr.write(`${invoked}: warning: ${w}\n`);
      if (err.before) ctx.stderr.write(`${invoked}: ${err.before}\n`);
    }
    ctx.stderr.write(`${invoked}: fatal: ${d.message}\n`);
    // Every Postfix sendmail fatal exits EX_TEMPFAIL (its msg_cleanup handler).
    return EX.TEMPFAIL;
  }
}
