/**
 * sendmail-options.ts — the command line of Postfix's sendmail(1), parsed as
 * sendmail.c main() parses it (Postfix 3.11), with no I/O.
 *
 * Contract:
 * - `prescanConfigDir(argv, env)`: sendmail.c's first pass, which only looks
 *   for `-C config_file|config_dir` (a path whose last component is `main.cf`
 *   names its directory; the last -C wins), else $MAIL_CONFIG, else the
 *   default directory. The rest of the options are parsed after main.cf is
 *   read, because -O and -XV depend on it (`SendmailSettings`).
 * - `parseSendmailArgs(argv, invokedAs, settings)`: getopt with Postfix's
 *   option string "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx" in POSIX
 *   order (parsing stops at the first operand: `sendmail -c DIR -f a b`
 *   has four recipients, DIR, -f, a and b — `-c` takes no argument and is
 *   ignored, as in Postfix; the configuration directory is `-C`, $MAIL_CONFIG
 *   or `sealpost -c DIR sendmail`), with the special cases before each
 *   argument: a lone `-q` (flush), `-V xy` / `-Vxy` (old VERP spellings,
 *   warned), `-XV`. Options Postfix ignores are ignored (-A -c -e -h -i(m)
 *   -L -m -p -U -x, -o other than -oi/-oA, -O other than requiretls/smtputf8).
 * - Every fatal is Postfix's text, thrown as `SendmailFatal`; exit status 75
 *   (EX_TEMPFAIL) for every one of them, as Postfix's sendmail exits:
 *   msg_fatal_status() runs its cleanup handler, which exits EX_TEMPFAIL.
 *   getopt's own complaint (`invalid option -- 'z'`, `option requires an
 *   argument -- 'f'`) comes first, then `usage: sendmail [options]`.
 * - Warnings are returned, in order, without the `sendmail: warning: ` prefix.
 *
 * Not here: what each mode does (sendmail.ts), address parsing of the
 * recipients (intake/maildrop.ts), alternate_config_directories.
 */
import { UserError, EX } from '../lib/errors.ts';
import { parseAddressList } from '../intake/maildrop.ts';
import type { DsnNotify } from '../queue/queue-file.ts';

/** sendmail.c SM_MODE_*. */
export type SendmailMode = 'enqueue' | 'mailq' | 'flush' | 'daemon' | 'newaliases' | 'user-smtp' | 'ignore';

/** What sendmail.c reads from main.cf before it parses the options. */
export interface SendmailSettings {
  /** requiretls_enable. */
  readonly requiretlsEnable: boolean;
  /** smtputf8_enable. */
  readonly smtputf8Enable: boolean;
  /** verp_delimiter_filter. */
  readonly verpFilter: string;
  /** default_verp_delimiters. */
  readonly verpDefault: string;
}

export const DEFAULT_SENDMAIL_SETTINGS: SendmailSettings = Object.freeze({ requiretlsEnable: true, smtputf8Enable: true, verpFilter: '-=+', verpDefault: '+=' });

export interface SendmailOptions {
  mode: SendmailMode;
  /** -t. */
  extract: boolean;
  /** -i / -oi: a lone `.` does not end input. */
  ignoreDots: boolean;
  /** -f / -r, as given. */
  sender: string | undefined;
  /** -F. */
  fullName: string | undefined;
  /** -N (undefined: not given or ignored). */
  notify: DsnNotify[] | undefined;
  /** -R. */
  ret: 'FULL' | 'HDRS' | undefined;
  /** -V. */
  envid: string | undefined;
  /** -B. */
  encoding: '7BIT' | '8BITMIME' | undefined;
  /** -G: gateway (relay) submission. */
  gateway: boolean;
  /** -XV[xy]: the VERP delimiters. */
  verp: string | undefined;
  /** -bv: address verification report. */
  verify: boolean;
  /** -v count (one -v in delivery mode asks for a delivery report). */
  verbose: number;
  /** -O requiretls=yes|no, -O smtputf8=yes|no (undefined: not given). */
  requireTls: boolean | undefined;
  smtputf8: boolean | undefined;
  /** -qRsite, -qIqueue_id, -qinterval. */
  siteToFlush: string | undefined;
  idToFlush: string | undefined;
  queueInterval: string | undefined;
  /** -oA alias database. */
  aliasMap: string | undefined;
  /** The operands: recipients (each may be an address list). */
  operands: string[];
  warnings: string[];
}

/** A sendmail.c msg_fatal_status(): one line, and sendmail's exit status 75. */
export class SendmailFatal extends UserError {
  /** Warnings of the options parsed before the fatal one (printed first, as Postfix prints them as it goes). */
  warnings: readonly string[] = [];
  constructor(message: string, before?: string) {
    super(message, EX.TEMPFAIL, before);
    this.name = 'SendmailFatal';
  }
}

const OPTSTRING = 'A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx';
const TAKES_ARG: ReadonlyMap<string, boolean> = (() => {
  const m = new Map<string, boolean>();
  for (let i = 0; i < OPTSTRING.length; i++) {
    const c = OPTSTRING[i]!;
    if (c !== ':') m.set(c, OPTSTRING[i + 1] === ':');
  }
  return m;
})();

/** One getopt(3) step: the options of `argv[i]` (a cluster), with their arguments. */
interface Step {
  readonly options: ReadonlyArray<readonly [string, string | undefined]>;
  /** Index of the next argument to look at. */
  readonly next: number;
}

function getoptStep(argv: readonly string[], i: number, prog: string): Step {
  const arg = argv[i]!;
  const options: Array<readonly [string, string | undefined]> = [];
  for (let j = 1; j < arg.length; j++) {
    const flag = arg[j]!;
    const needs = TAKES_ARG.get(flag);
    if (needs === undefined) throw new SendmailFatal(`usage: ${prog} [options]`, `invalid option -- '${flag}'`);
    if (!needs) {
      options.push([flag, undefined]);
      continue;
    }
    if (j + 1 < arg.length) return { options: [...options, [flag, arg.slice(j + 1)]], next: i + 1 };
    if (i + 1 < argv.length) return { options: [...options, [flag, argv[i + 1]!]], next: i + 2 };
    throw new SendmailFatal(`usage: ${prog} [options]`, `option requires an argument -- '${flag}'`);
  }
  return { options, next: i + 1 };
}

/** True when `argv[i]` starts options (getopt: `-x...`, not `-` alone, not after `--`). */
function isOption(arg: string): boolean {
  return arg.length >= 2 && arg[0] === '-';
}

/**
 * sendmail.c's pre-scan: the configuration directory from -C (`.../main.cf`
 * means its directory), else $MAIL_CONFIG, else undefined (the default).
 */
export function prescanConfigDir(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): string | undefined {
  let dir = env.MAIL_CONFIG !== undefined && env.MAIL_CONFIG !== '' ? env.MAIL_CONFIG : undefined;
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg === '-q') {
      i++;
      continue;
    }
    if (arg === '--') break;
    if (!isOption(arg)) break;
    let step: Step;
    try {
      step = getoptStep(argv, i, 'sendmail');
    } catch {
      i++; // The complaint comes from the real parse.
      continue;
    }
    for (const [flag, value] of step.options) if (flag === 'C' && value !== undefined) dir = configDirOfC(value);
    i = step.next;
  }
  return dir;
}

/** sendmail -C: `sane_basename(path) == "main.cf"` names its directory. */
export function configDirOfC(value: string): string {
  const trimmed = value.replace(/\/+$/, '');
  const slash = trimmed.lastIndexOf('/');
  const base = slash < 0 ? trimmed : trimmed.slice(slash + 1);
  if (base !== 'main.cf') return value;
  if (slash < 0) return '.';
  return slash === 0 ? '/' : trimmed.slice(0, slash);
}

/** dsn_mask.c dsn_notify_mask(): NEVER alone, or any of SUCCESS, DELAY, FAILURE; separators ", \t\r\n". */
export function parseNotify(value: string, warnings: string[]): DsnNotify[] | undefined {
  const out: DsnNotify[] = [];
  for (const w of value.split(/[, \t\r\n]+/).filter((s) => s !== '')) {
    const up = w.toUpperCase();
    if (up !== 'NEVER' && up !== 'SUCCESS' && up !== 'DELAY' && up !== 'FAILURE') {
      // name_mask.c NAME_MASK_RETURN.
      warnings.push(`unknown DSN NOTIFY command value "${w}" in "${value}"`);
      return undefined;
    }
    if (!out.includes(up)) out.push(up);
  }
  // DSN_NOTIFY_OK(): RFC 3461 §4.1, NEVER cannot be combined with the others.
  if (out.length === 0 || (out.includes('NEVER') && out.length > 1)) return undefined;
  return out;
}

/** verp_sender.c verp_delims_verify(): two characters, both in verp_delimiter_filter. */
function verpProblem(delims: string, filter: string): string | undefined {
  if (delims.length !== 2 || ![...delims].every((c) => filter.includes(c))) return `-V requires two characters from ${filter}`;
  return undefined;
}

function initial(invokedAs: string): SendmailOptions {
  // sendmail.c: "The default mode of operation is determined by the process name."
  const mode: SendmailMode = invokedAs === 'mailq' ? 'mailq' : invokedAs === 'newaliases' ? 'newaliases' : invokedAs === 'smtpd' ? 'daemon' : 'enqueue';
  return {
    mode,
    extract: false,
    ignoreDots: false,
    sender: undefined,
    fullName: undefined,
    notify: undefined,
    ret: undefined,
    envid: undefined,
    encoding: undefined,
    gateway: false,
    verp: undefined,
    verify: false,
    verbose: 0,
    requireTls: undefined,
    smtputf8: undefined,
    siteToFlush: undefined,
    idToFlush: undefined,
    queueInterval: undefined,
    aliasMap: undefined,
    operands: [],
    warnings: [],
  };
}

/** `-O name=value`: the case-insensitive name match of sendmail.c (strncasecmp up to and including `=`). */
function optionNamed(arg: string, name: string): boolean {
  const eq = arg.indexOf('=');
  const head = eq < 0 ? arg : arg.slice(0, eq + 1);
  return head.length <= name.length + 1 && `${name}=`.slice(0, head.length).toLowerCase() === head.toLowerCase();
}

function dashO(o: SendmailOptions, arg: string, s: SendmailSettings): void {
  const eq = arg.indexOf('=');
  const value = eq < 0 ? '' : arg.slice(eq + 1);
  const yesNo = /^yes$/i.test(value) ? true : /^no$/i.test(value) ? false : undefined;
  if (optionNamed(arg, 'REQUIRETLS')) {
    if (!s.requiretlsEnable) {
      o.warnings.push(`Ignoring option '-O ${arg}, because the configuration is 'requiretls_enable = no'`);
      return;
    }
    if (yesNo === undefined) o.warnings.push(`bad -O option: '${arg}' -- ignored`);
    else o.requireTls = yesNo;
  } else if (optionNamed(arg, 'SMTPUTF8')) {
    if (!s.smtputf8Enable) {
      o.warnings.push(`'-O ${arg}' was requested, but the configuration is 'smtputf8_enable = no'`);
      return;
    }
    if (yesNo === undefined) o.warnings.push(`bad -O option: '${arg}' -- ignored`);
    else o.smtputf8 = yesNo;
  }
  // sendmail(1): other -O option=value are ignored.
}

function dashB(o: SendmailOptions, arg: string): void {
  const c = arg[0] ?? '';
  switch (c) {
    case 'd':
    case 'l':
      if (o.mode === 'flush') o.warnings.push('ignoring -q option in daemon mode');
      o.mode = 'daemon';
      return;
    case 'h':
    case 'H':
      o.mode = 'ignore';
      return;
    case 'i':
      o.mode = 'newaliases';
      return;
    case 'm':
      o.mode = 'enqueue';
      return;
    case 'p':
      o.mode = 'mailq';
      return;
    case 's':
      o.mode = 'user-smtp';
      return;
    case 'v':
      o.verify = true;
      return;
    default:
      throw new SendmailFatal(`unsupported: -b${c}`);
  }
}

function dashQ(o: SendmailOptions, arg: string): void {
  const c = arg[0] ?? '';
  if (/[0-9]/.test(c)) o.queueInterval = arg;
  else if (c === 'R') {
    o.siteToFlush = arg.slice(1);
    if (o.siteToFlush === '') throw new SendmailFatal('specify: -qRsitename');
  } else if (c === 'I') {
    o.idToFlush = arg.slice(1);
    if (o.idToFlush === '') throw new SendmailFatal('specify: -qIqueueid');
  } else throw new SendmailFatal(`-q${c} is not implemented`);
}

function dashLittleO(o: SendmailOptions, arg: string): void {
  switch (arg[0]) {
    case 'A':
      if (arg.length === 1) throw new SendmailFatal('-oA requires pathname');
      o.aliasMap = arg.slice(1);
      return;
    case 'i':
      o.ignoreDots = true;
      return;
    default:
      // -o7, -o8, -om and other -o x are ignored.
      return;
  }
}

/** One option with its argument (sendmail.c's switch). */
function apply(o: SendmailOptions, flag: string, arg: string | undefined, s: SendmailSettings): void {
  const a = arg ?? '';
  switch (flag) {
    case 'n':
      throw new SendmailFatal('-n option not supported');
    case 'B':
      // RFC 1652 body types, exact case (strcmp).
      if (a === '8BITMIME' || a === '7BIT') o.encoding = a;
      else throw new SendmailFatal('-B option needs 8BITMIME or 7BIT');
      return;
    case 'F':
      o.fullName = a;
      return;
    case 'G':
      o.gateway = true;
      return;
    case 'I':
      o.mode = 'newaliases';
      return;
    case 'N':
      o.notify = parseNotify(a, o.warnings);
      if (o.notify === undefined) o.warnings.push(`bad -N option value: '${a}' -- ignored`);
      return;
    case 'O':
      return dashO(o, a, s);
    case 'R': {
      const r = a.toUpperCase();
      if (r === 'FULL' || r === 'HDRS') o.ret = r;
      else o.warnings.push('bad -R option value -- ignored');
      return;
    }
    case 'V':
      // sendmail.c (3.11): at most 100 printable characters.
      if (a.length > 100) o.warnings.push('too long -V option value -- ignored');
      else if (!/^[\x20-\x7e]*$/.test(a)) o.warnings.push('bad syntax in -V option value -- ignored');
      else o.envid = a;
      return;
    case 'X':
      if (a[0] !== 'V') throw new SendmailFatal(`unsupported: -X${a[0] ?? ''}`);
      {
        const problem = verpProblem(a.slice(1), s.verpFilter);
        if (problem) throw new SendmailFatal(problem);
      }
      o.verp = a.slice(1);
      return;
    case 'b':
      return dashB(o, a);
    case 'f':
    case 'r':
      o.sender = a;
      return;
    case 'i':
      o.ignoreDots = true;
      return;
    case 'o':
      return dashLittleO(o, a);
    case 'q':
      return dashQ(o, a);
    case 't':
      o.extract = true;
      return;
    case 'v':
      o.verbose++;
      return;
    default:
      // -A -C -L -U -c -e -h -m -p -x: accepted and ignored (-C was used by the pre-scan).
      return;
  }
}

/**
 * The arguments that sendmail.c rewrites or consumes before getopt sees them:
 * `-q`, `-V xy`, `-Vxy`, `-XV`. Returns the index of the next argument, or
 * undefined when getopt should parse `argv[i]`.
 */
function special(o: SendmailOptions, argv: string[], i: number, s: SendmailSettings): number | undefined {
  const arg = argv[i]!;
  if (arg === '-q') {
    if (o.mode === 'daemon') o.warnings.push('ignoring -q option in daemon mode');
    else o.mode = 'flush';
    return i + 1;
  }
  if (arg === '-V' && argv[i + 1] !== undefined && argv[i + 1]!.length === 2) {
    o.warnings.push('option -V is deprecated with Postfix 2.3; specify -XV instead');
    argv[i] = '-XV';
  } else if (arg.startsWith('-V') && arg.length === 4) {
    o.warnings.push(`option ${arg} is deprecated with Postfix 2.3; specify -X${arg.slice(1)} instead`);
    argv[i] = `-X${arg.slice(1)}`;
  }
  if (argv[i] === '-XV') {
    o.verp = s.verpDefault;
    return i + 1;
  }
  return undefined;
}

/** Conflicting options and arguments (sendmail.c after the getopt loop). */
function conflicts(o: SendmailOptions): void {
  if (o.extract && o.mode !== 'enqueue') throw new SendmailFatal('-t can be used only in delivery mode');
  if (o.siteToFlush !== undefined && o.mode !== 'enqueue') throw new SendmailFatal('-qR can be used only in delivery mode');
  if (o.idToFlush !== undefined && o.mode !== 'enqueue') throw new SendmailFatal('-qI can be used only in delivery mode');
  if (o.verify) {
    if (o.extract) throw new SendmailFatal('-t option cannot be used with -bv');
    if (o.notify !== undefined) throw new SendmailFatal('-N option cannot be used with -bv');
    if (o.ret !== undefined) throw new SendmailFatal('-R option cannot be used with -bv');
    if (o.verbose === 1) throw new SendmailFatal('-v option cannot be used with -bv');
  }
}

/** The operand rule of each mode (sendmail.c: "... mode requires no recipient"). */
function operandRules(o: SendmailOptions): void {
  if (o.operands.length === 0) return;
  switch (o.mode) {
    case 'enqueue':
      if (o.siteToFlush !== undefined) throw new SendmailFatal('flush site requires no recipient');
      if (o.idToFlush !== undefined) throw new SendmailFatal('flush queue_id requires no recipient');
      return;
    case 'mailq':
      throw new SendmailFatal('display queue mode requires no recipient');
    case 'flush':
      throw new SendmailFatal('flush queue mode requires no recipient');
    case 'daemon':
      throw new SendmailFatal('daemon mode requires no recipient');
    case 'newaliases':
      throw new SendmailFatal('alias initialization mode requires no recipient');
    case 'user-smtp':
      throw new SendmailFatal('stand-alone mode requires no recipient');
    case 'ignore':
      return;
  }
}

/** Parse sendmail's command line; see the header. `invokedAs` is the program name (sendmail, mailq, newaliases). */
export function parseSendmailArgs(args: readonly string[], invokedAs: string, settings: SendmailSettings = DEFAULT_SENDMAIL_SETTINGS): SendmailOptions {
  const o = initial(invokedAs);
  try {
    return parseInto(o, [...args], invokedAs, settings);
  } catch (err) {
    if (err instanceof SendmailFatal) err.warnings = [...o.warnings];
    throw err;
  }
}

function parseInto(o: SendmailOptions, argv: string[], invokedAs: string, settings: SendmailSettings): SendmailOptions {
  let i = 0;
  while (i < argv.length) {
    const skip = special(o, argv, i, settings);
    if (skip !== undefined) {
      i = skip;
      continue;
    }
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!isOption(arg)) break;
    const step = getoptStep(argv, i, invokedAs);
    for (const [flag, value] of step.options) apply(o, flag, value, settings);
    i = step.next;
  }
  o.operands = argv.slice(i);
  conflicts(o);
  // sendmail.c: a qtime (-q30m) outside daemon mode means "exit 0 now"; the operand rules do not apply.
  if (o.queueInterval !== undefined && o.mode !== 'daemon') return o;
  operandRules(o);
  return o;
}

/**
 * sendmail.c enqueue(): the -f argument is parsed as an address list and the
 * first address is the sender (`<>` is the null sender); more than one is
 * "-f option specified malformed sender".
 */
export function senderAddress(text: string): { address: string; malformed: boolean } {
  const list = parseAddressList(text);
  return { address: list[0] ?? '', malformed: list.length > 1 };
}
