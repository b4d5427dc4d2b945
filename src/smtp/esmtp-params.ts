/**
 * esmtp-params.ts — MAIL FROM and RCPT TO command lines: tokenise, parse the address and the
 * ESMTP parameters (server side), format them (client side), and xtext (RFC 3461 §4).
 *
 * Contract:
 * - `tokenizeCommand()` splits a command line the way Postfix's smtpd_token() does: white
 *   space separates tokens, except inside `<...>` and `"..."`; backslash escapes one character;
 *   a token that reads `FROM:` or `TO:` ends at the colon. So `MAIL FROM: <a@b>` and
 *   `MAIL FROM:<a@b>` tokenise the same, in both strict_rfc821_envelopes modes, as in Postfix.
 * - `parseMailFrom()` / `parseRcptTo()` never throw: they return the parsed command or an
 *   `EsmtpError` carrying the exact reply Postfix's smtpd gives for that mistake
 *   (`501 5.5.4 Bad RET parameter syntax`, `555 5.5.4 Unsupported option: X`, ...). The first
 *   problem in command order wins, as in smtpd's mail_cmd()/rcpt_cmd().
 *   Duplicates: RET, ENVID, NOTIFY, ORCPT and AUTH may appear once (Postfix's texts); a repeated
 *   SIZE or BODY silently overrides, as Postfix does.
 *   `strict_rfc821_envelopes = yes` (postconf(5)) requires `<...>` around the address and
 *   refuses an address that starts with `@`.
 * - `formatMailFrom()` / `formatRcptTo()` build client command lines (no CRLF) with the address
 *   quoted as Postfix's quote_821_local() does and xtext where RFC 3461/4954 require it.
 *
 * Not here: policy (message_size_limit, relay control, whether DSN/SMTPUTF8/REQUIRETLS are
 * offered in this session — the caller says so through the options), UTF-8 validity of the
 * raw line (the listener checks bytes), BDAT and the other commands.
 */
import { formatPath, needsSmtpUtf8, parsePath } from './address.ts';
import type { ParsedAddress } from './address.ts';

/** A refused command: the reply Postfix's smtpd sends. */
export interface EsmtpError {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
  /** The whole reply line without CRLF: `501 5.5.4 Bad RET parameter syntax`. */
  readonly reply: string;
}

export type EsmtpResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: EsmtpError };

function refuse<T>(code: number, enhanced: string, text: string): EsmtpResult<T> {
  return { ok: false, error: Object.freeze({ code, enhanced, text, reply: `${code} ${enhanced} ${text}` }) };
}

// ---------------------------------------------------------------- tokeniser (smtpd_token.c)

export interface CommandToken {
  readonly value: string;
  /** An unterminated `<...>` or `"..."` (Postfix SMTPD_TOK_ERROR). */
  readonly error: boolean;
}

function isSpace(c: string): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\v' || c === '\f';
}

/** Read a `<...>` or `"..."` group starting at s[i] (the opener); returns the index after it. */
function readQuoted(s: string, i: number, last: string): { end: number; text: string; error: boolean } {
  const stack: string[] = [last];
  let text = s[i] as string;
  let j = i + 1;
  while (j < s.length) {
    const c = s[j++] as string;
    text += c;
    if (c === '\\') {
      if (j >= s.length) break;
      text += s[j++];
    } else if (c === stack[stack.length - 1]) {
      if (stack.length === 1) return { end: j, text, error: false };
      stack.pop();
    } else if (c === '"') {
      stack.push('"');
    } else if (c === '<' && stack[stack.length - 1] === '>') {
      stack.push('>');
    }
  }
  return { end: j, text, error: true };
}

/** Split a command line into tokens the way Postfix's smtpd does. */
export function tokenizeCommand(line: string): CommandToken[] {
  const tokens: CommandToken[] = [];
  let i = 0;
  while (i < line.length) {
    let value = '';
    let error = false;
    while (i < line.length) {
      const c = line[i] as string;
      if (isSpace(c)) {
        while (i < line.length && isSpace(line[i] as string)) i++;
        if (value.length > 0) break;
        continue;
      }
      if (c === '<' || c === '"') {
        const q = readQuoted(line, i, c === '<' ? '>' : '"');
        value += q.text;
        error ||= q.error;
        i = q.end;
        continue;
      }
      i++;
      if (c === ':') {
        value += c;
        // "this is gross, but..." (smtpd_token.c): FROM: and TO: end a token at the colon.
        const lower = value.toLowerCase();
        if (lower === 'from:' || lower === 'to:') break;
        continue;
      }
      if (c === '\\') {
        value += c;
        if (i >= line.length) break;
        value += line[i++];
        continue;
      }
      value += c;
    }
    if (value.length > 0) tokens.push({ value, error });
  }
  return tokens;
}

// ---------------------------------------------------------------- xtext (RFC 3461 §4)

/**
 * RFC 3461 §4: xtext. Octets outside 33..126, and `+` and `=`, become `+XX` (upper-case hex).
 * Works on the UTF-8 octets of the string.
 */
export function xtextEncode(value: string | Buffer): string {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  let out = '';
  for (const b of bytes) {
    if (b > 32 && b < 127 && b !== 0x2b && b !== 0x3d) out += String.fromCharCode(b);
    else out += `+${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * Decode xtext to octets, or undefined when malformed. Like Postfix's xtext_unquote(): `+`
 * must be followed by two hex digits of any case. With `strict`, also RFC 3461 §4's character
 * rules: only octets 33..126 except `=`, and upper-case hex.
 */
export function xtextDecodeBytes(text: string, opts: { strict?: boolean } = {}): Buffer | undefined {
  const out: number[] = [];
  const hex = opts.strict ? /^[0-9A-F]{2}$/ : /^[0-9A-Fa-f]{2}$/;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x2b) {
      const h = text.slice(i + 1, i + 3);
      if (!hex.test(h)) return undefined;
      out.push(parseInt(h, 16));
      i += 2;
      continue;
    }
    if (opts.strict && (c < 33 || c > 126 || c === 0x3d)) return undefined;
    if (c > 0x7f) out.push(...Buffer.from(text[i] as string, 'utf8'));
    else out.push(c);
  }
  return Buffer.from(out);
}

/** Decode xtext to a string (UTF-8), or undefined when malformed. */
export function xtextDecode(text: string, opts: { strict?: boolean } = {}): string | undefined {
  return xtextDecodeBytes(text, opts)?.toString('utf8');
}

// ---------------------------------------------------------------- parameters

export type BodyType = '7BIT' | '8BITMIME' | 'BINARYMIME';
export type DsnRet = 'FULL' | 'HDRS';
export type DsnNotify = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

export interface MailParams {
  /** RFC 1870 SIZE=. */
  readonly size?: number;
  /** RFC 6152 / RFC 3030 BODY=. */
  readonly body?: BodyType;
  /** RFC 6531 SMTPUTF8. */
  readonly smtputf8: boolean;
  /** RFC 8689 REQUIRETLS. */
  readonly requireTls: boolean;
  /** RFC 3461 §4.3 RET=. */
  readonly ret?: DsnRet;
  /** RFC 3461 §4.4 ENVID=, decoded from xtext. */
  readonly envid?: string;
  /** RFC 4954 §5 AUTH=: `<>` or the decoded xtext mailbox (raw when it is not valid xtext; Postfix stores it raw). */
  readonly auth?: string;
}

export interface RcptParams {
  /** RFC 3461 §4.1 NOTIFY=: `['NEVER']` or a subset of SUCCESS, FAILURE, DELAY in that order. */
  readonly notify?: readonly DsnNotify[];
  /** RFC 3461 §4.2 ORCPT=addr-type;xtext — type as sent, address decoded. */
  readonly orcpt?: { readonly type: string; readonly address: string };
}

export interface MailFromCommand {
  readonly address: ParsedAddress;
  /** The address token as received (`<...>`), as Postfix keeps it for logging. */
  readonly rawAddress: string;
  readonly params: MailParams;
}

export interface RcptToCommand {
  readonly address: ParsedAddress;
  readonly rawAddress: string;
  readonly params: RcptParams;
}

export interface EsmtpParseOptions {
  /** postconf(5) strict_rfc821_envelopes (default no). */
  readonly strictRfc821Envelopes?: boolean;
  /** DSN offered (default true); otherwise RET/ENVID/NOTIFY/ORCPT get `501 5.7.1 DSN support is disabled`. */
  readonly dsn?: boolean;
  /** SMTPUTF8 offered (smtputf8_enable, default true). */
  readonly smtputf8?: boolean;
  /** AUTH offered (smtpd_sasl_auth_enable, default false); otherwise AUTH= is an unsupported option. */
  readonly auth?: boolean;
  /** REQUIRETLS offered (only inside TLS; default false). */
  readonly requireTls?: boolean;
  /** BINARYMIME offered (default false: Postfix never offers it). */
  readonly binaryMime?: boolean;
  /** RCPT only: did this transaction's MAIL FROM declare SMTPUTF8? */
  readonly smtputf8Declared?: boolean;
}

const UNSUPPORTED = (arg: string) => refuse<never>(555, '5.5.4', `Unsupported option: ${arg}`);
const DSN_DISABLED = () => refuse<never>(501, '5.7.1', 'DSN support is disabled');
const NEED_SMTPUTF8 = () => refuse<never>(553, '5.6.7', 'Must declare SMTPUTF8 to send unicode address');

function keyIs(arg: string, key: string): boolean {
  return arg.length >= key.length && arg.slice(0, key.length).toUpperCase() === key;
}

/** RFC 3461 §4.1 (Postfix dsn_notify_mask): NEVER alone, or any of SUCCESS, FAILURE, DELAY. */
export function parseNotify(value: string): DsnNotify[] | undefined {
  const items = value.split(',').filter((v) => v !== '').map((v) => v.toUpperCase());
  if (items.length === 0) return undefined;
  if (!items.every((v) => v === 'NEVER' || v === 'SUCCESS' || v === 'FAILURE' || v === 'DELAY')) return undefined;
  if (items.includes('NEVER')) return items.every((v) => v === 'NEVER') ? ['NEVER'] : undefined;
  return (['SUCCESS', 'FAILURE', 'DELAY'] as const).filter((v) => items.includes(v));
}

type MailDraft = { -readonly [K in keyof MailParams]: MailParams[K] };

function mailParam(arg: string, p: MailDraft, seen: Set<string>, o: EsmtpParseOptions): EsmtpResult<true> | undefined {
  const upper = arg.toUpperCase();
  // RFC 6152 / RFC 3030: BODY=7BIT | 8BITMIME | BINARYMIME.
  if (upper === 'BODY=7BIT' || upper === 'BODY=8BITMIME' || (upper === 'BODY=BINARYMIME' && o.binaryMime)) {
    p.body = upper.slice(5) as BodyType;
    return undefined;
  }
  if (keyIs(arg, 'SIZE=')) {
    // RFC 1870 §6: size-value ::= 1*20DIGIT. Postfix: non-digits → 501, overflow → 552.
    const v = arg.slice(5);
    if (!/^\d+$/.test(v)) return refuse(501, '5.5.4', 'Bad message size syntax');
    const n = Number(v);
    if (!Number.isSafeInteger(n)) return refuse(552, '5.3.4', 'Message size exceeds file system imposed limit');
    p.size = n;
    return undefined;
  }
  if (o.auth && keyIs(arg, 'AUTH=')) {
    // RFC 4954 §5: AUTH=<> or AUTH=xtext, once.
    if (seen.has('AUTH')) return refuse(503, '5.5.4', 'Error: multiple AUTH= options');
    seen.add('AUTH');
    const v = arg.slice(5);
    p.auth = v === '<>' ? v : (xtextDecode(v) ?? v);
    return undefined;
  }
  if (keyIs(arg, 'RET=')) {
    if (!(o.dsn ?? true)) return DSN_DISABLED();
    // RFC 3461 §4.3: RET=FULL | HDRS, once.
    const v = arg.slice(4).toUpperCase();
    if (seen.has('RET') || (v !== 'FULL' && v !== 'HDRS')) return refuse(501, '5.5.4', 'Bad RET parameter syntax');
    seen.add('RET');
    p.ret = v;
    return undefined;
  }
  if (keyIs(arg, 'ENVID=')) {
    if (!(o.dsn ?? true)) return DSN_DISABLED();
    // RFC 3461 §4.4: ENVID=xtext, once; Postfix also wants printable ASCII after decoding.
    const v = xtextDecode(arg.slice(6));
    if (seen.has('ENVID') || v === undefined || !/^[\x20-\x7e]+$/.test(v)) {
      return refuse(501, '5.5.4', 'Bad ENVID parameter syntax');
    }
    seen.add('ENVID');
    p.envid = v;
    return undefined;
  }
  // RFC 6531 §3.4: SMTPUTF8 takes no value.
  if ((o.smtputf8 ?? true) && upper === 'SMTPUTF8') {
    p.smtputf8 = true;
    return undefined;
  }
  // RFC 8689 §4.1: REQUIRETLS takes no value.
  if (o.requireTls && upper === 'REQUIRETLS') {
    p.requireTls = true;
    return undefined;
  }
  return UNSUPPORTED(arg);
}

/** Check verb and `FROM:`/`TO:`, then parse the address token. */
function commandAddress(
  line: string,
  verb: 'MAIL' | 'RCPT',
  o: EsmtpParseOptions,
): EsmtpResult<{ tokens: CommandToken[]; address: ParsedAddress }> {
  const tokens = tokenizeCommand(line);
  const isMail = verb === 'MAIL';
  const syntax = isMail ? 'Syntax: MAIL FROM:<address>' : 'Syntax: RCPT TO:<address>';
  const badAddr = isMail ? refuse<never>(501, '5.1.7', 'Bad sender address syntax') : refuse<never>(501, '5.1.3', 'Bad recipient address syntax');
  if (tokens.length < 3 || tokens[0]?.value.toUpperCase() !== verb || tokens[1]?.value.toLowerCase() !== (isMail ? 'from:' : 'to:')) {
    return refuse(501, '5.5.4', syntax);
  }
  const tok = tokens[2] as CommandToken;
  if (tok.error) return badAddr;
  const strict = o.strictRfc821Envelopes ?? false;
  // postconf(5) strict_rfc821_envelopes: require <>; RCPT TO never takes the null address.
  const r = parsePath(tok.value, { allowNull: isMail, requireBrackets: strict });
  if (!r.ok) return badAddr;
  if (strict && r.value.address.startsWith('@')) return badAddr;
  return { ok: true, value: { tokens, address: r.value } };
}

/** Server side: parse `MAIL FROM:<address> [params]`. */
export function parseMailFrom(line: string, opts: EsmtpParseOptions = {}): EsmtpResult<MailFromCommand> {
  const head = commandAddress(line, 'MAIL', opts);
  if (!head.ok) return head;
  const { tokens, address } = head.value;
  const params: MailDraft = { smtputf8: false, requireTls: false };
  const seen = new Set<string>();
  for (const t of tokens.slice(3)) {
    const err = mailParam(t.value, params, seen, opts);
    if (err) return err as EsmtpResult<never>;
  }
  // RFC 6531 §3.4 / Postfix smtpd: a non-ASCII address needs SMTPUTF8 on MAIL FROM.
  if ((opts.smtputf8 ?? true) && !params.smtputf8 && address.needsSmtpUtf8) return NEED_SMTPUTF8();
  return { ok: true, value: Object.freeze({ address, rawAddress: (tokens[2] as CommandToken).value, params: Object.freeze(params) }) };
}

type RcptDraft = { -readonly [K in keyof RcptParams]: RcptParams[K] };

function rcptParam(arg: string, p: RcptDraft, o: EsmtpParseOptions): EsmtpResult<true> | undefined {
  if (keyIs(arg, 'NOTIFY=')) {
    if (!(o.dsn ?? true)) return DSN_DISABLED();
    const n = p.notify === undefined ? parseNotify(arg.slice(7)) : undefined;
    if (n === undefined) return refuse(501, '5.5.4', 'Error: Bad NOTIFY parameter syntax');
    p.notify = n;
    return undefined;
  }
  if (keyIs(arg, 'ORCPT=')) {
    if (!(o.dsn ?? true)) return DSN_DISABLED();
    // RFC 3461 §4.2: ORCPT=addr-type ";" xtext, once (Postfix: non-empty type, valid xtext).
    const v = arg.slice(6);
    const semi = v.indexOf(';');
    const type = semi === -1 ? '' : v.slice(0, semi);
    const address = semi === -1 ? undefined : xtextDecode(v.slice(semi + 1));
    if (p.orcpt !== undefined || type === '' || address === undefined) {
      return refuse(501, '5.5.4', 'Error: Bad ORCPT parameter syntax');
    }
    p.orcpt = Object.freeze({ type, address });
    return undefined;
  }
  return UNSUPPORTED(arg);
}

/** Server side: parse `RCPT TO:<address> [params]`. */
export function parseRcptTo(line: string, opts: EsmtpParseOptions = {}): EsmtpResult<RcptToCommand> {
  const head = commandAddress(line, 'RCPT', opts);
  if (!head.ok) return head;
  const { tokens, address } = head.value;
  const params: RcptDraft = {};
  for (const t of tokens.slice(3)) {
    const err = rcptParam(t.value, params, opts);
    if (err) return err as EsmtpResult<never>;
  }
  if ((opts.smtputf8 ?? true) && !opts.smtputf8Declared && address.needsSmtpUtf8) return NEED_SMTPUTF8();
  return { ok: true, value: Object.freeze({ address, rawAddress: (tokens[2] as CommandToken).value, params: Object.freeze(params) }) };
}

// ---------------------------------------------------------------- client side formatting

function noLineBreaks(what: string, value: string): string {
  // A CR or LF would end the command and smuggle another one (RFC 5321 §2.3.8).
  if (/[\r\n]/.test(value)) throw new RangeError(`${what} must not contain CR or LF`);
  return value;
}

export interface MailFromFormat {
  readonly size?: number | undefined;
  readonly body?: BodyType | undefined;
  readonly smtputf8?: boolean | undefined;
  readonly requireTls?: boolean | undefined;
  readonly ret?: DsnRet | undefined;
  readonly envid?: string | undefined;
  /** AUTH= mailbox (internal form), or '<>'. */
  readonly auth?: string | undefined;
}

/** Client side: `MAIL FROM:<sender> ...` (no CRLF). `sender` is the internal form; '' is `<>`. */
export function formatMailFrom(sender: string, p: MailFromFormat = {}): string {
  let out = `MAIL FROM:${formatPath(noLineBreaks('sender', sender))}`;
  if (p.size !== undefined) {
    if (!Number.isSafeInteger(p.size) || p.size < 0) throw new RangeError(`bad SIZE ${p.size}`);
    out += ` SIZE=${p.size}`;
  }
  if (p.body) out += ` BODY=${p.body}`;
  if (p.smtputf8) out += ' SMTPUTF8';
  if (p.requireTls) out += ' REQUIRETLS';
  if (p.ret) out += ` RET=${p.ret}`;
  if (p.envid !== undefined) out += ` ENVID=${xtextEncode(p.envid)}`;
  if (p.auth !== undefined) out += ` AUTH=${p.auth === '<>' ? '<>' : xtextEncode(p.auth)}`;
  return out;
}

export interface RcptToFormat {
  readonly notify?: readonly DsnNotify[] | undefined;
  readonly orcpt?: { readonly type: string; readonly address: string } | undefined;
}

/** Client side: `RCPT TO:<recipient> ...` (no CRLF). */
export function formatRcptTo(recipient: string, p: RcptToFormat = {}): string {
  if (recipient === '') throw new RangeError('RCPT TO needs a recipient address');
  let out = `RCPT TO:${formatPath(noLineBreaks('recipient', recipient))}`;
  if (p.notify && p.notify.length > 0) {
    const n = parseNotify(p.notify.join(','));
    if (!n) throw new RangeError(`bad NOTIFY ${p.notify.join(',')}`);
    out += ` NOTIFY=${n.join(',')}`;
  }
  if (p.orcpt) {
    if (!/^[\x21-\x3a\x3c-\x7e]+$/.test(p.orcpt.type)) throw new RangeError(`bad ORCPT type ${p.orcpt.type}`);
    out += ` ORCPT=${p.orcpt.type};${xtextEncode(p.orcpt.address)}`;
  }
  return out;
}

/** RFC 6531: does sending this envelope need SMTPUTF8? */
export function envelopeNeedsSmtpUtf8(sender: string, recipients: readonly string[]): boolean {
  return needsSmtpUtf8(sender) || recipients.some(needsSmtpUtf8);
}
