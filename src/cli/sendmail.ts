/**
 * sendmail.ts — `sealpost sendmail` and the binary invoked as `sendmail`: the
 * Sendmail-compatible submission interface of Postfix's sendmail(1).
 *
 * Contract:
 * - Reads the message from standard input and writes it to maildrop/ through
 *   the spool (intake/maildrop.ts); exit 0 only once the file is fsynced. The
 *   daemon need not run: pickup takes the file when it starts.
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
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { userInfo } from 'node:os';
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { EX, UserError, describeError } from '../lib/errors.ts';
import { fromWithFullName, hasFrom, headerRecipients, normaliseInput, parseAddressList, removeBcc, writeMaildrop } from '../intake/maildrop.ts';
import { withHeaders } from '../message/headers.ts';
import type { DsnNotify, EnvelopeInput } from '../queue/queue-file.ts';
import { createSpool, QueueWriteError } from '../queue/spool.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

const OPTSTRING = 'B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx';
const USAGE = 'usage: sendmail [options] [recipient ...]';

interface Submission {
  readonly configDir: string;
  mode: string;
  extract: boolean;
  ignoreDots: boolean;
  sender: string | undefined;
  fullName: string | undefined;
  notify: DsnNotify[] | undefined;
  ret: 'FULL' | 'HDRS' | undefined;
  envid: string | undefined;
  eightBit: boolean;
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

class SendmailError extends UserError {}

function warn(ctx: CommandContext, text: string): void {
  ctx.stderr.write(`sendmail: warning: ${text}\n`);
}

/** -N: `never`, or a comma list of success, delay, failure (postfix dsn_notify_mask). */
function parseNotifyOption(ctx: CommandContext, value: string): DsnNotify[] | undefined {
  const words = value.split(/[\s,]+/).filter((w) => w !== '');
  const out: DsnNotify[] = [];
  for (const w of words) {
    const up = w.toUpperCase();
    if (up === 'NEVER' || up === 'SUCCESS' || up === 'DELAY' || up === 'FAILURE') out.push(up);
    else {
      warn(ctx, `unknown DSN NOTIFY command value "${w}" in "${value}"`);
      return undefined;
    }
  }
  // RFC 3461 §4.1: NEVER cannot be combined with the others.
  if (out.length === 0 || (out.includes('NEVER') && out.length > 1)) return undefined;
  return out;
}

function configDirOf(cValue: string | undefined, env: CommandContext['env']): string {
  if (cValue === undefined) return resolveConfigDir(undefined, env);
  // sendmail(1) -C: a main.cf file or its directory.
  try {
    if (statSync(cValue).isFile()) return dirname(cValue);
  } catch {
    // Reported when loading.
  }
  return cValue;
}

function parseArgs(ctx: CommandContext): Submission {
  const opts = getopt(ctx.argv, OPTSTRING, USAGE);
  const sub: Submission = {
    configDir: configDirOf(opts.value('C'), ctx.env),
    mode: 'm',
    extract: false,
    ignoreDots: false,
    sender: undefined,
    fullName: ctx.env.NAME,
    notify: undefined,
    ret: undefined,
    envid: undefined,
    eightBit: false,
    recipients: [],
  };
  for (const [flag, arg = ''] of opts.list) {
    switch (flag) {
      case 'b':
        sub.mode = arg;
        break;
      case 't':
        sub.extract = true;
        break;
      case 'i':
        sub.ignoreDots = true;
        break;
      case 'o':
        // sendmail(1): -oi is -i; -o7, -o8, -om, -oA... are ignored.
        if (arg === 'i') sub.ignoreDots = true;
        break;
      case 'f':
      case 'r':
        sub.sender = arg;
        break;
      case 'F':
        sub.fullName = arg;
        break;
      case 'N': {
        const n = parseNotifyOption(ctx, arg);
        if (n === undefined) warn(ctx, 'bad -N option value -- ignored');
        else sub.notify = n;
        break;
      }
      case 'R': {
        const r = arg.toUpperCase();
        if (r === 'FULL' || r === 'HDRS') sub.ret = r;
        else warn(ctx, 'bad -R option value -- ignored');
        break;
      }
      case 'V':
        sub.envid = arg;
        break;
      case 'B':
        sub.eightBit = arg.toUpperCase() === '8BITMIME';
        break;
      case 'q':
        sub.mode = 'q';
        break;
      default:
        // -G -I -L -O -U -X -c -e -h -m -n -p -v -x: accepted and ignored, as Postfix does.
        break;
    }
  }
  for (const r of opts.rest) sub.recipients.push(...parseAddressList(r));
  return sub;
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

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks);
}

async function submit(ctx: CommandContext, sub: Submission, config: LoadedConfig): Promise<number> {
  const { user, uid } = who();
  const fatal = (text: string, code: number): never => {
    throw new SendmailError(`${user}(${uid}): ${text}`, code);
  };
  let content = normaliseInput(await readAll(ctx.stdin), { ignoreDots: sub.ignoreDots });
  const sender = qualify(sub.sender !== undefined ? stripAngles(sub.sender) : user, config);
  const recipients = [...sub.recipients];
  if (sub.extract) {
    recipients.push(...headerRecipients(content));
    content = removeBcc(content);
  }
  if (recipients.length === 0) {
    if (sub.extract) fatal('No recipient addresses found in message header', EX.DATAERR);
    fatal('Recipient addresses must be specified on the command line or via the -t option', EX.USAGE);
  }
  if (sub.fullName !== undefined && sub.fullName !== '' && !hasFrom(content)) {
    // sendmail(1) -F: used only for a message without From:; pickup adds the other headers.
    content = withHeaders(content, [], [fromWithFullName(sub.fullName, sender)]);
  }
  const limit = config.getSize('message_size_limit');
  if (limit > 0 && content.length > limit) fatal('Message file too big', EX.DATAERR);
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
  };
  try {
    const spool = await createSpool(config.get('queue_directory'), { longQueueIds: config.getBool('enable_long_queue_ids') });
    await writeMaildrop(spool, envelope, content);
  } catch (err) {
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
  const spool = await createSpool(config.get('queue_directory'), { longQueueIds: config.getBool('enable_long_queue_ids') });
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

async function dispatch(ctx: CommandContext, sub: Submission): Promise<number> {
  const modeOnly = (argv: string[], prog: string) => import('./postqueue.ts').then((m) => m.main({ ...ctx, prog, argv: ['-c', sub.configDir, ...argv] }));
  switch (sub.mode) {
    case 'p':
      return modeOnly([], 'sealpost/mailq');
    case 'q':
      return modeOnly(['-f'], 'sealpost/postqueue');
    case 'i':
      return EX.OK; // newaliases: sealpost has no aliases(5).
    case 'm':
    case 's': {
      const config = loadConfig({ configDir: sub.configDir });
      return sub.mode === 's' ? smtpOnStdio(ctx, config) : submit(ctx, sub, config);
    }
    case 'd':
    case 'l':
      throw new SendmailError(`unsupported: -b${sub.mode}: run "sealpost start"`, EX.USAGE);
    default:
      throw new SendmailError(`unsupported: -b${sub.mode}`, EX.USAGE);
  }
}

export async function main(ctx: CommandContext): Promise<number> {
  try {
    return await dispatch(ctx, parseArgs(ctx));
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    // sendmail(1) speaks as "sendmail", whatever the binary is called.
    ctx.stderr.write(`sendmail: fatal: ${describeError(err).message}\n`);
    return err.exitCode;
  }
}
