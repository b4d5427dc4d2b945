/**
 * master-cf.ts — parse master.cf (the listening services) and print it in
 * postconf -M's layout.
 *
 * Syntax (master(5)): one service per logical line,
 *   service type private unpriv chroot wakeup maxproc command [args...]
 * continuation lines start with whitespace, `#` lines are comments, `-` means
 * the default. Arguments are split on whitespace, and `{ ... }` keeps text with
 * spaces together. Daemon options are normalised as postconf does it:
 * `-oname=value` → `-o` `name=value`, `-o { name = value }` → `-o` `name=value`,
 * other `{ text }` arguments lose their braces. An inet service name may be
 * `host:port` (`127.0.0.1:10025`, `[::1]:2525`).
 *
 * Contract: parseMasterCf() does no I/O and throws ConfigError naming the file
 * and line (Postfix's texts: `bad field count`, `invalid type field "x" in ...`).
 * formatMasterEntry() reproduces postconf -M / -Mf byte for byte.
 *
 * Not here: starting listeners (daemon/services.ts), `-o` semantics (load.ts).
 */
import { ConfigError } from '../lib/errors.ts';

export interface MasterService {
  /** Service field as written: `smtp`, `127.0.0.1:10025`, `[::1]:2525`. */
  readonly name: string;
  /** inet services: the host part (`127.0.0.1`, `::1`) or undefined for all interfaces. */
  readonly host: string | undefined;
  /** inet services: the port or service name (`smtp`, `10025`); otherwise the name. */
  readonly service: string;
  readonly type: string;
  /** `y`, `n` or `-` as written. */
  readonly private: string;
  readonly unpriv: string;
  readonly chroot: string;
  readonly wakeup: string;
  readonly maxproc: string;
  readonly command: string;
  /** Normalised arguments after the command (`-o`, `name=value`, ...). */
  readonly args: readonly string[];
  /** `-o name=value` pairs in order. */
  readonly overrides: ReadonlyArray<readonly [string, string]>;
  /** 1-based line of the entry. */
  readonly line: number;
}

const VALID_TYPES = new Set(['unix', 'unix-dgram', 'fifo', 'inet', 'pass']);
const FIELDS = ['service', 'type', 'private', 'unpriv', 'chroot', 'wakeup', 'maxproc', 'command'] as const;
// Daemon options that take a value (postconf's pcf_daemon_options_expecting_value).
const OPTIONS_WITH_VALUE = 'o';

/** The master.cf sealpost uses when the config directory has none. */
export const DEFAULT_MASTER_CF = `#
# sealpost master process configuration file (master.cf), Postfix syntax:
# see master(5). "sealpost postconf -M" shows the services in use.
#
# ==========================================================================
# service type  private unpriv  chroot  wakeup  maxproc command + args
#               (yes)   (yes)   (no)    (never) (100)
# ==========================================================================
smtp      inet  n       -       y       -       -       smtpd
#submission inet n       -       y       -       -       smtpd
#  -o syslog_name=sealpost/submission
#  -o smtpd_tls_security_level=encrypt
#  -o smtpd_sasl_auth_enable=yes
#  -o smtpd_tls_auth_only=yes
#  -o local_header_rewrite_clients=static:all
#  -o smtpd_reject_unlisted_recipient=no
#  -o smtpd_client_restrictions=
#  -o smtpd_helo_restrictions=
#  -o smtpd_sender_restrictions=
#  -o smtpd_relay_restrictions=
#  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
#  -o milter_macro_daemon_name=ORIGINATING
#submissions     inet  n       -       y       -       -       smtpd
#  -o syslog_name=sealpost/submissions
#  -o smtpd_tls_wrappermode=yes
#  -o smtpd_sasl_auth_enable=yes
#  -o local_header_rewrite_clients=static:all
#  -o smtpd_reject_unlisted_recipient=no
#  -o smtpd_client_restrictions=
#  -o smtpd_helo_restrictions=
#  -o smtpd_sender_restrictions=
#  -o smtpd_relay_restrictions=
#  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
#  -o milter_macro_daemon_name=ORIGINATING
#
# Delivery agents the queue manager runs; a transport(5) name is a service
# below. maxproc limits the concurrent deliveries of each.
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
        -o syslog_name=sealpost/$service_name
#       -o smtp_helo_timeout=5 -o smtp_connect_timeout=5
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
`;

/** argv_splitq(3): split on blanks, keeping `{ ... }` groups (with braces) in one token. */
export function splitQuoted(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let level = 0;
  let inToken = false;
  for (const ch of text) {
    if (level === 0 && /\s/.test(ch)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
      continue;
    }
    if (ch === '{') level++;
    else if (ch === '}' && level > 0) level--;
    cur += ch;
    inToken = true;
  }
  if (inToken) out.push(cur);
  return out;
}

/** extpar(3) with STRIP: the text inside `{ }`, trimmed; an error text when unbalanced. */
function extractBraces(arg: string): string | { error: string } {
  if (!arg.endsWith('}')) return { error: `syntax error after '}' in "${arg}"` };
  return arg.slice(1, -1).trim();
}

interface Logical {
  text: string;
  line: number;
}

function logicalLines(text: string): Logical[] {
  const out: Logical[] = [];
  let cur: Logical | undefined;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const t = line.trimStart();
    if (t === '' || t.startsWith('#')) return;
    if (/^\s/.test(line) && cur) {
      cur.text += ' ' + t;
      return;
    }
    cur = { text: line, line: i + 1 };
    out.push(cur);
  });
  return out;
}

/** Normalise daemon options and arguments as postconf does. */
function normalizeArgs(args: string[], fail: (msg: string) => never): { args: string[]; optionCount: number } {
  const out: string[] = [];
  let i = 0;
  for (; i < args.length; i++) {
    let arg = args[i]!;
    if (!arg.startsWith('-') || arg === '--') break;
    // "-vo x=y" → "-v" "-o x=y": an option taking a value ends a cluster.
    const k = [...arg].findIndex((ch, idx) => idx > 1 && OPTIONS_WITH_VALUE.includes(ch));
    if (k > 0) {
      out.push(arg.slice(0, k));
      arg = '-' + arg.slice(k);
    }
    if (!OPTIONS_WITH_VALUE.includes(arg[1] ?? '')) {
      out.push(arg);
      continue;
    }
    let value: string | undefined;
    if (arg.length > 2) value = arg.slice(2);
    else if (i + 1 < args.length) value = args[++i]!;
    out.push(arg.slice(0, 2));
    if (value === undefined) continue;
    if (value.startsWith('{')) {
      const inner = extractBraces(value);
      if (typeof inner !== 'string') fail(inner.error);
      value = inner;
      if (arg[1] === 'o') {
        const eq = value.indexOf('=');
        if (eq <= 0) fail(`missing '=' after attribute name: "${value}"`);
        value = `${value.slice(0, eq).trim()}=${value.slice(eq + 1).trim()}`;
      }
    }
    out.push(value);
  }
  const optionCount = out.length;
  for (; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith('{')) {
      const inner = extractBraces(arg);
      if (typeof inner !== 'string') fail(inner.error);
      out.push(inner);
    } else out.push(arg);
  }
  return { args: out, optionCount };
}

function checkFields(f: readonly string[], raw: string, fail: (msg: string) => never): void {
  // master(5) field checks, with postconf's texts.
  if (!VALID_TYPES.has(f[1]!)) fail(`invalid type field "${f[1]}" in "${raw}"`);
  for (const idx of [2, 3, 4]) {
    if (!/^[yn-]$/.test(f[idx]!)) fail(`invalid ${FIELDS[idx]} field "${f[idx]}" in "${raw}"`);
  }
  if (!/^(-|\d+\??)$/.test(f[5]!)) fail(`invalid wakeup field "${f[5]}" in "${raw}"`);
  if (!/^(-|\d+)$/.test(f[6]!)) fail(`invalid maxproc field "${f[6]}" in "${raw}"`);
}

function splitEndpoint(name: string, type: string): { host: string | undefined; service: string } {
  if (type !== 'inet') return { host: undefined, service: name };
  const m = /^\[([^\]]*)\]:(.+)$/.exec(name) ?? /^([^:]*):([^:]+)$/.exec(name);
  if (!m) return { host: undefined, service: name };
  return { host: m[1] === '' ? undefined : m[1], service: m[2]! };
}

/** Parse master.cf text; `file` is used in messages only. */
export function parseMasterCf(text: string, file: string): MasterService[] {
  const services: MasterService[] = [];
  for (const logical of logicalLines(text)) {
    const fail = (msg: string): never => {
      throw new ConfigError(msg, file, logical.line);
    };
    const f = splitQuoted(logical.text);
    if (f.length < FIELDS.length) fail('bad field count');
    checkFields(f, logical.text, fail);
    const { args, optionCount } = normalizeArgs(f.slice(FIELDS.length), fail);
    const overrides: Array<readonly [string, string]> = [];
    for (let i = 0; i + 1 < args.length && i < optionCount; i++) {
      if (args[i] === '-o') {
        const nv = args[i + 1]!;
        const eq = nv.indexOf('=');
        if (eq <= 0) fail(`missing '=' after attribute name: "${nv}"`);
        overrides.push([nv.slice(0, eq).trim(), nv.slice(eq + 1).trim()]);
        i++;
      }
    }
    const { host, service } = splitEndpoint(f[0]!, f[1]!);
    services.push({
      name: f[0]!,
      host,
      service,
      type: f[1]!,
      private: f[2]!,
      unpriv: f[3]!,
      chroot: f[4]!,
      wakeup: f[5]!,
      maxproc: f[6]!,
      command: f[7]!,
      args,
      overrides,
      line: logical.line,
    });
  }
  return services;
}

// postconf(1) output layout: column goals for the 8 fixed fields, 80-column folding, 4-space indent.
const COLUMN_GOAL = [0, 11, 17, 25, 33, 41, 49, 57];
const LINE_LIMIT = 80;
const INDENT = '    ';

/** One entry as `postconf -M` (fold=false) or `postconf -Mf` (fold=true) prints it. */
export function formatMasterEntry(s: MasterService, fold: boolean, expand?: (value: string) => string): string {
  let out = '';
  let len = 0;
  const add = (t: string): void => {
    out += t;
    len += t.length;
  };
  const fixed = [s.name, s.type, s.private, s.unpriv, s.chroot, s.wakeup, s.maxproc, s.command];
  fixed.forEach((f, i) => {
    if (len > 0) {
      do add(' ');
      while (len < COLUMN_GOAL[i]!);
    }
    add(f);
  });
  let inOptions = true;
  const args = s.args;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    let argLen = arg.length;
    let aval: string | undefined;
    let parens = false;
    const wasInOptions = inOptions;
    if (inOptions) {
      if (!arg.startsWith('-') || arg === '--') inOptions = false;
      else if (OPTIONS_WITH_VALUE.includes(arg[1] ?? '') && i + 1 < args.length) {
        len = LINE_LIMIT; // an option with a value starts a new line when folding
        aval = args[i + 1]!;
        if (arg === '-o' && expand) aval = expand(aval);
        argLen += aval.length + 3;
        parens = /\s/.test(aval);
        if (parens) argLen += 2;
      }
    }
    // postconf prints a non-option argument with blanks inside { } (not the first one, as Postfix does).
    if (!wasInOptions) parens = /\s/.test(arg);
    if (len > INDENT.length) {
      if (!fold || len + 1 + argLen < LINE_LIMIT) add(' ');
      else {
        out += '\n' + INDENT;
        len = INDENT.length;
      }
    }
    if (!inOptions && parens) add('{');
    add(arg);
    if (!inOptions && parens) add('}');
    if (aval !== undefined) {
      add(' ');
      if (parens) add('{');
      add(aval);
      if (parens) add('}');
      i++;
      len = LINE_LIMIT;
    }
  }
  return out + '\n';
}
