/**
 * postcat.ts — `sealpost postcat`: show a queue file the way postcat(1) shows
 * Postfix's, record by record.
 *
 * Contract:
 * - `postcat -q ID...` searches maildrop, incoming, active, deferred, hold (and
 *   corrupt) for each ID; without -q the operands are file names, and with no
 *   operands the file is read from standard input.
 * - Output sections as postcat.c prints them, labelled with `queue/ID` (or the
 *   file name): `*** ENVELOPE RECORDS ... ***` (message_size with its six
 *   `%15ld` fields, message_arrival_time as asctime(), named_attribute lines for
 *   the client and the transport flags, dsn_envelope_id, dsn_return_flags,
 *   sender, and per recipient dsn_original_recipient, dsn_notify_flags,
 *   original_recipient, recipient or done_recipient), `*** MESSAGE CONTENTS
 *   ... ***` followed by the header and body (CRLF shown as LF), `*** HEADER
 *   EXTRACTED ... ***`, `*** MESSAGE FILE END ... ***`.
 * - `-e` envelope only, `-h` header only, `-b` body only (combinable); none
 *   means all. A bad ID is fatal (`bad mail queue ID: X`), a missing one too
 *   (`open queue file X: No such file or directory`); a file that does not
 *   parse gives `warning: X: input is not a valid queue file (why)`.
 *
 * Not here: -d, -o, -r, -s (record types, offsets, raw pointers and start
 * offsets are Postfix record-format notions that sealpost's format lacks).
 */
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { EX, UserError } from '../lib/errors.ts';
import { decodeQueueFile, QueueFileFormatError } from '../queue/queue-file.ts';
import type { QueueEnvelope } from '../queue/queue-file.ts';
import { isValidQueueId } from '../queue/queue-id.ts';
import { asctime } from '../queue/showq.ts';
import { Spool } from '../queue/spool.ts';
import type { QueueName } from '../queue/spool.ts';
import { warn } from './context.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';
import { isNotFound } from '../lib/fs-errors.ts';

const USAGE =
  'usage: postcat [-b (body text)] [-c config_dir] [-e (envelope records)] [-h (header text)] [-q (access queue)] [-v] [file(s)...]';

const SEARCH: readonly QueueName[] = ['maildrop', 'incoming', 'active', 'deferred', 'hold', 'corrupt'];

export interface PostcatFlags {
  readonly envelope: boolean;
  readonly header: boolean;
  readonly body: boolean;
}

// dsn.h: DSN_NOTIFY_NEVER 1, SUCCESS 2, FAILURE 4, DELAY 8; DSN_RET_FULL 1, HDRS 2.
const NOTIFY_BITS: Readonly<Record<string, number>> = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 };

function envelopeRecords(env: QueueEnvelope, time: (s: number) => string): string {
  const f = (n: number): string => String(n).padStart(15);
  let out = `message_size: ${f(env.messageSize)} ${f(env.contentOffset)} ${f(env.recipients.length)} ${f(0)} ${f(env.contentLength)} ${f(env.smtputf8 ? 1 : 0)}\n`;
  out += `message_arrival_time: ${time(Math.floor(env.arrivalTime / 1000))}`;
  const attr = (name: string, value: string | number | undefined): void => {
    if (value !== undefined && value !== '') out += `named_attribute: ${name}=${value}\n`;
  };
  if (env.client) {
    attr('log_client_name', env.client.name);
    attr('log_client_address', env.client.address);
    attr('log_client_port', env.client.port);
    attr('log_helo_name', env.client.helo);
    attr('log_protocol_name', env.client.protocol);
    attr('sasl_username', env.client.saslUser);
  }
  if (env.eightBitMime) attr('encoding', '8bit');
  if (env.smtputf8) attr('smtputf8', 'yes');
  if (env.requireTls) attr('requiretls', 'yes');
  if (env.tlsRequiredNo) attr('tls_required', 'no');
  if (env.envid !== undefined) out += `dsn_envelope_id: ${env.envid}\n`;
  if (env.ret !== undefined) out += `dsn_return_flags: ${env.ret === 'FULL' ? 1 : 2}\n`;
  out += `sender: ${env.sender}\n`;
  for (const r of env.recipients) {
    if (r.orcpt !== undefined) out += `dsn_original_recipient: ${r.orcpt}\n`;
    if (r.notify !== undefined) out += `dsn_notify_flags: ${r.notify.reduce((a, w) => a | (NOTIFY_BITS[w] ?? 0), 0)}\n`;
    out += `original_recipient: ${r.origAddress}\n`;
    out += `${r.status === 'done' ? 'done_recipient' : 'recipient'}: ${r.address}\n`;
  }
  return out;
}

/** Content as records print it: CRLF → LF, and a final newline. */
function textLines(bytes: Buffer): Buffer {
  const text = Buffer.from(bytes.toString('latin1').replace(/\r\n/g, '\n'), 'latin1');
  return text.length === 0 || text[text.length - 1] === 0x0a ? text : Buffer.concat([text, Buffer.from('\n')]);
}

/** Render one queue file (pure, given the decoded parts). */
export function renderPostcat(label: string, env: QueueEnvelope, content: Buffer, flags: PostcatFlags, time: (s: number) => string): Buffer {
  const parts: Buffer[] = [];
  const text = (s: string): void => void parts.push(Buffer.from(s, 'utf8'));
  if (flags.envelope) {
    text(`*** ENVELOPE RECORDS ${label} ***\n`);
    text(envelopeRecords(env, time));
    text(`*** MESSAGE CONTENTS ${label} ***\n`);
  }
  if (flags.header) parts.push(textLines(content.subarray(0, env.headerLength)));
  if (flags.body) parts.push(textLines(content.subarray(env.headerLength)));
  if (flags.envelope) {
    text(`*** HEADER EXTRACTED ${label} ***\n`);
    text(`*** MESSAGE FILE END ${label} ***\n`);
  }
  return Buffer.concat(parts);
}

async function readAll(ctx: CommandContext): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.stdin) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(String(c)));
  return Buffer.concat(chunks);
}

function show(ctx: CommandContext, label: string, bytes: Buffer, flags: PostcatFlags): void {
  let decoded;
  try {
    decoded = decodeQueueFile(bytes);
  } catch (err) {
    if (!(err instanceof QueueFileFormatError)) throw err;
    warn(ctx, `${label}: input is not a valid queue file (${err.message})`);
    return;
  }
  ctx.stdout.write(renderPostcat(label, decoded.envelope, decoded.content, flags, (s) => asctime(s)));
}

/** A queue directory this user may not search is a permission problem, not "No such file". */
function searchable(queueDir: string, queues: readonly QueueName[]): void {
  for (const q of queues) {
    try {
      accessSync(`${queueDir}/${q}`, constants.X_OK);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = getopt(ctx.argv, 'bc:ehqv', USAGE);
  const any = opts.has('e') || opts.has('h') || opts.has('b');
  const flags: PostcatFlags = { envelope: !any || opts.has('e'), header: !any || opts.has('h'), body: !any || opts.has('b') };
  if (opts.rest.length === 0) {
    show(ctx, 'stdin', await readAll(ctx), flags);
    return EX.OK;
  }
  if (!opts.has('q')) {
    for (const file of opts.rest) {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new UserError(`open ${file}: ${(err as Error).message}`);
      }
      show(ctx, file, bytes, flags);
    }
    return EX.OK;
  }
  const configDir = resolveConfigDir(opts.value('c'), ctx.env);
  const config = loadConfig({ configDir, warn: (m: string) => warn(ctx, m) });
  const spool = new Spool(config.get('queue_directory'));
  for (const id of opts.rest) {
    // postcat.c: mail_queue_id_ok() before any file is opened.
    if (!isValidQueueId(id)) throw new UserError(`bad mail queue ID: ${id}`);
    searchable(spool.dir, SEARCH);
    const queue = spool.locate(id, SEARCH);
    if (queue === undefined) throw new UserError(`open queue file ${id}: No such file or directory`);
    show(ctx, `${queue}/${id}`, await readFile(spool.path(queue, id)), flags);
  }
  return EX.OK;
}
