/**
 * command-loop.ts — the command loop of one SMTP server session (smtpd(8)):
 * the connect line, the greeting (TLS first in wrapper mode), then read a
 * command, check it, run its handler (commands.ts, data.ts, auth.ts), until
 * QUIT, an error limit, a timeout or a lost connection; then the disconnect line.
 *
 * Contract:
 * - `runSession()` owns the connection until it ends; it never throws (an
 *   unexpected error is logged as a warning and the connection is cut).
 * - smtpd_hard_error_limit ends the session with `421 4.7.0 $myhostname
 *   Error: too many errors`; smtpd_forbid_unauth_pipelining (Postfix ≥ 3.9
 *   default yes) ends it with `554 5.5.0 Error: SMTP protocol
 *   synchronization` and logs `improper command pipelining after CMD from ...`;
 *   smtpd_forbid_bare_newline = reject refuses a command ending in a bare LF.
 *
 * Not here: the session state (session.ts), the command semantics.
 */
import type { SmtpLine } from '../../smtp/line-reader.ts';
import { printable } from '../../smtp/reply.ts';
import { COMMANDS } from './commands.ts';
import { bareLfExempt, type Session } from './session.ts';

function decodeLine(s: Session, line: SmtpLine): string | undefined {
  if (!s.s.smtputf8) return line.line.toString('latin1');
  const text = line.line.toString('utf8');
  // Postfix: "500 5.5.2 Error: bad UTF-8 syntax" when SMTPUTF8 is on and the bytes are not UTF-8.
  return Buffer.from(text, 'utf8').equals(line.line) ? text : undefined;
}

/** One turn of the loop: read a command, check it, run it. */
async function step(s: Session): Promise<'continue' | 'end'> {
  if (s.errorCount >= s.s.hardErrorLimit) {
    s.log(`too many errors after ${s.where} from ${s.namaddr}`);
    await s.reply(`421 4.7.0 ${s.s.myhostname} Error: too many errors`);
    return 'end';
  }
  const line = await s.conn.readLine();
  if (line === 'eof') {
    s.log(`lost connection after ${s.where} from ${s.namaddr}`);
    return 'end';
  }
  if (line === 'timeout') {
    s.log(`timeout after ${s.where} from ${s.namaddr}`);
    await s.reply(`421 4.4.2 ${s.s.myhostname} Error: timeout exceeded`);
    return 'end';
  }
  return runCommand(s, line);
}

/** For a command that ended in a bare <LF> (the exclusions, a match list, are consulted only then). */
async function refuseBareLf(s: Session): Promise<boolean> {
  // postconf(5) smtpd_forbid_bare_newline = reject: a command ending in bare <LF> is rejected, then disconnect.
  if (s.s.bareNewline !== 'reject' || (await bareLfExempt(s))) return false;
  s.log(`disallowed bare <LF> received from ${s.namaddr} after ${s.where}`);
  await s.reply(`${s.s.bareNewlineRejectCode} 5.5.2 ${s.s.myhostname} Error: bare <LF> received`);
  return true;
}

async function runCommand(s: Session, line: SmtpLine): Promise<'continue' | 'end'> {
  s.lastLineBareLf = line.bareLf;
  const text = decodeLine(s, line);
  if (text === undefined) {
    s.errorCount++;
    await s.reply('500 5.5.2 Error: bad UTF-8 syntax');
    return 'continue';
  }
  const verb = (/^\S*/.exec(text)?.[0] ?? '').toUpperCase();
  const cmd = COMMANDS.get(verb);
  if (line.bareLf && (await refuseBareLf(s))) return 'end';
  if (text.trim() === '' || text.includes('\0')) {
    s.errorCount++;
    await s.reply('500 5.5.2 Error: bad syntax');
    return 'continue';
  }
  // smtpd_forbid_unauth_pipelining: input behind a command that PIPELINING did not allow.
  if (s.s.forbidUnauthPipelining && !s.pipeliningOffered && verb !== 'QUIT' && s.conn.reader.hasBufferedData()) {
    s.log(`improper command pipelining after ${cmd?.name ?? verb} from ${s.namaddr}: ${printable(peekBuffered(s)).slice(0, 100)}`);
    await s.reply('554 5.5.0 Error: SMTP protocol synchronization');
    return 'end';
  }
  if (!cmd) {
    s.count('unknown', false);
    s.errorCount++;
    s.where = 'UNKNOWN';
    await s.reply('500 5.5.2 Error: command not recognized');
    return 'continue';
  }
  s.where = cmd.name;
  // Postfix: with TLS mandatory only a few commands work before STARTTLS.
  if (s.s.tls.level === 'encrypt' && !s.tls && !cmd.preTls) {
    s.count(cmd.stat, false);
    s.errorCount++;
    await s.reply('530 5.7.0 Must issue a STARTTLS command first');
    return 'continue';
  }
  const args = text.slice(verb.length).replace(/^[ \t]+/, '');
  const outcome = await cmd.run(s, args, text);
  s.count(cmd.stat, outcome === 'ok' || outcome === 'quit');
  if (outcome === 'error') s.errorCount++;
  return outcome === 'quit' || outcome === 'close' ? 'end' : 'continue';
}

function peekBuffered(s: Session): string {
  // The session ends here, so the pipelined input can be consumed for the log line.
  return s.conn.reader.takeBuffered().subarray(0, 100).toString('latin1');
}

/** Run a session from the greeting to the disconnect line. */
export async function runSession(s: Session): Promise<void> {
  await s.nameClient();
  s.log(`connect from ${s.namaddr}`);
  try {
    if (s.s.tls.wrapperMode) {
      const r = await s.conn.wrapTls(s.s.tls.context!);
      if (!r.ok) {
        s.log(`SSL_accept error from ${s.namaddr}: ${r.reason}`);
        s.log(`lost connection after CONNECT from ${s.namaddr}`);
        return;
      }
      s.tlsEstablished();
    }
    // RFC 5321 §4.2: 220 greeting; Postfix: "220 $smtpd_banner".
    await s.reply(`220 ${s.s.banner}`);
    while ((await step(s)) === 'continue') {
      /* next command */
    }
  } catch (e) {
    s.warn(`${s.namaddr}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    s.log(`disconnect from ${s.namaddr} ${s.statsText()}`);
    await s.conn.close();
  }
}
