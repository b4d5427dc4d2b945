/**
 * pcre.ts — the `pcre:` table type (pcre_table(5)): Perl-compatible patterns
 * in Postfix's `/pattern/flags result` syntax, run on JavaScript's RegExp.
 *
 * Contract:
 * - Flags toggle Postfix's defaults (pcre_table(5)): `i` (on), `s` (DOTALL,
 *   on), `m` (off), `x` (off), `A` (ANCHORED, off), `E` (DOLLAR_ENDONLY,
 *   off), `U` (UNGREEDY, off); `X` is accepted and ignored (PCRE2, as Postfix
 *   3.7+ with pcre2 does, with a warning).
 * - `translatePcre()` rewrites what JavaScript spells differently: POSIX
 *   classes `[[:alpha:]]`, `\Q...\E`, `\A`, `\Z`, `\z`, `\h`, `\v`, `\R`,
 *   `\x{..}`, `\e`, `(?P<name>`, `(?#...)`, a leading `(?i)`-style option
 *   group, PCRE's `$` (which also matches before a final newline), the `x`
 *   and `U` flags. PCRE features JavaScript has no equivalent for
 *   (possessive quantifiers, atomic groups, recursion, conditionals, `\G`,
 *   `\K`, `\p`, verbs, option groups in mid-pattern) are a ConfigError naming
 *   file and line — never a silently different match.
 * - Keys are matched as given: no case folding (the `i` flag decides).
 *
 * Not here: the line grammar, if/endif and `$n` results (pattern-table.ts).
 */
import type { TableType } from './types.ts';
import { jsLiteral, openPatternFile, placeError, POSIX_CLASSES, splitDelimited } from './pattern-table.ts';
import type { ParsedPattern, Place } from './pattern-table.ts';

interface PcreFlags {
  i: boolean;
  m: boolean;
  s: boolean;
  x: boolean;
  A: boolean;
  E: boolean;
  U: boolean;
}

/** pcre_table(5) defaults: i and s on, the rest off. */
const DEFAULT_FLAGS: Readonly<PcreFlags> = { i: true, m: false, s: true, x: false, A: false, E: false, U: false };

/** Parse `/pattern/flags` at the start of `text` into a compiled test. */
export function parsePcrePattern(text: string, place: Place, warn?: (m: string) => void): ParsedPattern {
  const { source, flags, rest } = splitDelimited(text, place);
  const state: PcreFlags = { ...DEFAULT_FLAGS };
  for (const f of flags) {
    if (f === 'X') {
      warn?.(`${place.file}, line ${place.line}: ignoring obsolete regexp option "X"`);
      continue;
    }
    if (!(f in state)) throw placeError(place, `unknown regexp option "${f}"; pcre_table(5) flags are i, m, s, x, A, E, U`);
    state[f as keyof PcreFlags] = !state[f as keyof PcreFlags];
  }
  const { regex, groups } = compilePcre(source, state, place);
  const test = (key: string): RegExpExecArray | null => {
    regex.lastIndex = 0;
    return regex.exec(key);
  };
  return { test, groups, rest };
}

/** Translate and compile one PCRE pattern. */
export function compilePcre(source: string, flags: Readonly<PcreFlags>, place: Place): { regex: RegExp; groups: number } {
  const state = { ...flags };
  const body = leadingOptions(source, state, place);
  const t = new PcreTranslator(body, state, place);
  const out = t.translate();
  let jsFlags = '';
  if (state.i) jsFlags += 'i';
  if (state.m) jsFlags += 'm';
  if (state.s) jsFlags += 's';
  // pcre_table(5) A: "constrained to match only at the start of the subject string".
  if (state.A) jsFlags += 'y';
  try {
    return { regex: new RegExp(out, jsFlags), groups: t.groups };
  } catch (err) {
    throw placeError(place, `invalid pattern /${source}/: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
  }
}

/** A leading `(?i)`, `(?s-i)` ... sets (not toggles) options for the whole pattern. */
function leadingOptions(source: string, state: PcreFlags, place: Place): string {
  let rest = source;
  for (;;) {
    const m = /^\(\?([imsxUJn]*)(?:-([imsxUJn]*))?\)/.exec(rest);
    if (!m || (m[1] === '' && m[2] === undefined)) return rest;
    for (const [letters, on] of [[m[1] ?? '', true], [m[2] ?? '', false]] as const) {
      for (const f of letters) {
        if (!'imsxU'.includes(f)) throw placeError(place, `unsupported inline option "(?${f})"`);
        state[f as keyof PcreFlags] = on;
      }
    }
    rest = rest.slice(m[0].length);
  }
}

const UNSUPPORTED_ESCAPES: Readonly<Record<string, string>> = {
  G: '\\G (match at the previous match end)',
  K: '\\K (reset match start)',
  X: '\\X (extended grapheme cluster)',
  C: '\\C (single code unit)',
  p: '\\p{...} (Unicode property)',
  P: '\\P{...} (Unicode property)',
  N: '\\N',
};

/** Single-pass PCRE → JavaScript RegExp source translator. */
class PcreTranslator {
  groups = 0;
  private i = 0;
  private out = '';
  /** True when the last emitted item can take a quantifier. */
  private quantifiable = false;

  constructor(
    private readonly src: string,
    private readonly flags: Readonly<PcreFlags>,
    private readonly place: Place,
  ) {}

  private fail(what: string): never {
    throw placeError(this.place, `pattern /${this.src}/ uses ${what}, which sealpost's pcre: (JavaScript RegExp) does not support; rewrite the pattern without it`);
  }

  translate(): string {
    while (this.i < this.src.length) this.step();
    return this.out;
  }

  private emit(text: string, quantifiable: boolean): void {
    this.out += text;
    this.quantifiable = quantifiable;
  }

  private step(): void {
    const c = this.src[this.i]!;
    if (this.flags.x && /\s/.test(c)) {
      this.i++;
      return;
    }
    if (this.flags.x && c === '#') {
      const nl = this.src.indexOf('\n', this.i);
      this.i = nl < 0 ? this.src.length : nl + 1;
      return;
    }
    switch (c) {
      case '\\':
        return this.escape();
      case '[':
        return this.charClass();
      case '(':
        return this.groupOpen();
      case ')':
        this.i++;
        return this.emit(')', true);
      case '*':
      case '+':
      case '?':
        return this.quantifier(c, 1);
      case '{': {
        const m = /^\{(\d+)(?:,(\d*))?\}/.exec(this.src.slice(this.i));
        if (m) return this.quantifier(m[0], m[0].length);
        this.i++;
        return this.emit('\\{', true);
      }
      case '$':
        this.i++;
        // pcre_table(5) E: without DOLLAR_ENDONLY "a dollar also matches immediately
        // before the final character if it is a newline character".
        if (this.flags.m || this.flags.E) return this.emit('$', false);
        return this.emit('(?=\\n?(?![\\s\\S]))', false);
      default:
        this.i++;
        return this.emit(c === '/' ? '\\/' : c, c !== '^' && c !== '|');
    }
  }

  private quantifier(text: string, length: number): void {
    if (!this.quantifiable) this.fail(`a quantifier "${text}" that follows nothing repeatable`);
    this.i += length;
    const next = this.src[this.i];
    if (next === '+') this.fail(`a possessive quantifier "${text}+"`);
    let lazy = false;
    if (next === '?') {
      lazy = true;
      this.i++;
    }
    // pcre_table(5) U: "inverts the greediness of the quantifiers".
    if (this.flags.U) lazy = !lazy;
    this.emit(text + (lazy ? '?' : ''), false);
  }

  private groupOpen(): void {
    const rest = this.src.slice(this.i);
    if (rest.startsWith('(*')) this.fail('a backtracking verb "(*...)"');
    if (!rest.startsWith('(?')) {
      this.groups++;
      this.i++;
      return this.emit('(', false);
    }
    const simple = /^\(\?(?::|=|!|<=|<!)/.exec(rest);
    if (simple) {
      this.i += simple[0].length;
      return this.emit(simple[0], false);
    }
    const named = /^\(\?(?:P?<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')/.exec(rest);
    if (named) {
      this.groups++;
      this.i += named[0].length;
      return this.emit(`(?<${named[1] ?? named[2]}>`, false);
    }
    const backref = /^\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(rest);
    if (backref) {
      this.i += backref[0].length;
      return this.emit(`\\k<${backref[1]}>`, true);
    }
    if (rest.startsWith('(?#')) {
      const close = rest.indexOf(')');
      if (close < 0) throw placeError(this.place, `unterminated comment "(?#" in /${this.src}/`);
      this.i += close + 1;
      return;
    }
    if (rest.startsWith('(?>')) this.fail('an atomic group "(?>...)"');
    if (rest.startsWith('(?|')) this.fail('a branch-reset group "(?|...)"');
    if (rest.startsWith('(?(')) this.fail('a conditional group "(?(...)...)"');
    if (/^\(\?(?:R|[+-]?\d|&|P>)/.test(rest)) this.fail('recursion or a subroutine call "(?R)"/"(?1)"');
    if (/^\(\?[imsxUJn-]+[:)]/.test(rest)) {
      this.fail('an option setting such as "(?i)" after the start of the pattern (put it first, or use the flag after the delimiter)');
    }
    this.fail(`an unknown group "${rest.slice(0, 4)}"`);
  }

  private escape(): void {
    const e = this.src[this.i + 1];
    if (e === undefined) throw placeError(this.place, `pattern /${this.src}/ ends with a backslash`);
    const rest = this.src.slice(this.i);
    this.i += 2;
    if (e === 'Q') return this.quoted();
    if (e === 'E') return; // a \E without \Q is ignored (PCRE)
    if (e === 'A') return this.emit('(?<![\\s\\S])', false);
    if (e === 'z') return this.emit('(?![\\s\\S])', false);
    if (e === 'Z') return this.emit('(?=\\n?(?![\\s\\S]))', false);
    if (e === 'b' || e === 'B') return this.emit(`\\${e}`, false);
    if (e === 'R') return this.emit('(?:\\r\\n|[\\n\\x0b\\f\\r\\x85])', true);
    if (e === 'g' || e === 'k') return this.namedRef(rest);
    if (e === 'x' || e === 'o' || e === 'e' || e === 'a' || e === '0') {
      this.i -= 2;
      return this.emit(this.codepoint(), true);
    }
    const cls = classEscape(e);
    if (cls !== undefined) return this.emit(cls.startsWith('[') ? cls : `[${cls}]`, true);
    if (e in UNSUPPORTED_ESCAPES) this.fail(UNSUPPORTED_ESCAPES[e]!);
    if (/[1-9]/.test(e)) return this.emit(`\\${e}`, true);
    if (/[dDwWsSnrtf]/.test(e)) return this.emit(`\\${e}`, true);
    if (e === 'c') {
      const ctl = this.src[this.i++];
      if (!ctl || !/[A-Za-z]/.test(ctl)) throw placeError(this.place, `\\c must be followed by a letter in /${this.src}/`);
      return this.emit(`\\c${ctl}`, true);
    }
    if (/[A-Za-z]/.test(e)) throw placeError(this.place, `unrecognized escape "\\${e}" in /${this.src}/`);
    return this.emit(jsLiteral(e), true);
  }

  /** `\g1`, `\g{1}`, `\g{name}`, `\k<name>`, `\k{name}`, `\k'name'`. */
  private namedRef(rest: string): void {
    const m = /^\\(?:g(\d+)|g\{(\d+)\}|g\{([A-Za-z_]\w*)\}|k<([A-Za-z_]\w*)>|k\{([A-Za-z_]\w*)\}|k'([A-Za-z_]\w*)')/.exec(rest);
    if (!m) this.fail(`a relative back reference or subroutine call "${rest.slice(0, 6)}"`);
    this.i += m[0].length - 2;
    const num = m[1] ?? m[2];
    return this.emit(num !== undefined ? `\\${num}` : `\\k<${m[3] ?? m[4] ?? m[5] ?? m[6]}>`, true);
  }

  /** `\xHH`, `\x{H..}`, `\o{...}`, `\0oo`, `\e`, `\a` → a JavaScript escape for that code point. */
  private codepoint(): string {
    const rest = this.src.slice(this.i);
    let m: RegExpExecArray | null;
    let cp: number;
    if ((m = /^\\x\{([0-9A-Fa-f]+)\}/.exec(rest))) cp = parseInt(m[1]!, 16);
    else if ((m = /^\\x([0-9A-Fa-f]{0,2})/.exec(rest))) cp = m[1] ? parseInt(m[1], 16) : 0;
    else if ((m = /^\\o\{([0-7]+)\}/.exec(rest))) cp = parseInt(m[1]!, 8);
    else if ((m = /^\\0([0-7]{0,2})/.exec(rest))) cp = m[1] ? parseInt(m[1], 8) : 0;
    else if ((m = /^\\e/.exec(rest))) cp = 0x1b;
    else if ((m = /^\\a/.exec(rest))) cp = 0x07;
    else throw placeError(this.place, `bad character escape "${rest.slice(0, 4)}" in /${this.src}/`);
    this.i += m[0].length;
    if (cp > 0xffff) this.fail(`a code point above U+FFFF ("${m[0]}")`);
    return cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u${cp.toString(16).padStart(4, '0')}`;
  }

  /** `\Q...\E`: everything up to `\E` (or the end) is literal. */
  private quoted(): void {
    const end = this.src.indexOf('\\E', this.i);
    const text = this.src.slice(this.i, end < 0 ? this.src.length : end);
    this.i = end < 0 ? this.src.length : end + 2;
    if (text === '') return;
    // Only the last character is the quantifiable atom, as in PCRE.
    this.emit([...text].map(jsLiteral).join(''), true);
  }

  /** A bracket expression, with POSIX classes expanded. */
  private charClass(): void {
    let j = this.i + 1;
    let out = '[';
    if (this.src[j] === '^') {
      out += '^';
      j++;
    }
    if (this.src[j] === ']') {
      out += '\\]';
      j++;
    }
    for (;;) {
      const c = this.src[j];
      if (c === undefined) throw placeError(this.place, `missing terminating ] for character class in /${this.src}/`);
      if (c === ']') break;
      if (c === '[') {
        const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(j));
        if (posix) {
          const body = POSIX_CLASSES[posix[2]!];
          if (body === undefined) throw placeError(this.place, `unknown POSIX class name "[:${posix[2]}:]" in /${this.src}/`);
          if (posix[1]) this.fail(`a negated POSIX class "[:^${posix[2]}:]" (write [^[:${posix[2]}:]] instead)`);
          out += body;
          j += posix[0].length;
          continue;
        }
        out += '\\[';
        j++;
        continue;
      }
      if (c === '\\') {
        const { text, end } = this.classEscapeAt(j);
        out += text;
        j = end;
        continue;
      }
      out += c;
      j++;
    }
    this.i = j + 1;
    this.emit(out + ']', true);
  }

  private classEscapeAt(j: number): { text: string; end: number } {
    const e = this.src[j + 1];
    if (e === undefined) throw placeError(this.place, `pattern /${this.src}/ ends with a backslash`);
    if (e === 'Q') {
      const end = this.src.indexOf('\\E', j + 2);
      const text = this.src.slice(j + 2, end < 0 ? this.src.length : end);
      return { text: [...text].map(jsLiteral).join(''), end: end < 0 ? this.src.length : end + 2 };
    }
    if (e === 'E') return { text: '', end: j + 2 };
    if ('xoe0a'.includes(e)) {
      const save = this.i;
      this.i = j;
      const text = this.codepoint();
      const end = this.i;
      this.i = save;
      return { text, end };
    }
    const cls = classEscape(e);
    if (cls !== undefined) {
      if (cls.startsWith('[^')) this.fail(`a negated class escape "\\${e}" inside [...]`);
      return { text: cls, end: j + 2 };
    }
    if (e in UNSUPPORTED_ESCAPES) this.fail(UNSUPPORTED_ESCAPES[e]!);
    if (/[dDwWsSnrtfb]/.test(e)) return { text: `\\${e}`, end: j + 2 };
    if (/[A-Za-z0-9]/.test(e)) throw placeError(this.place, `unrecognized escape "\\${e}" in a character class in /${this.src}/`);
    return { text: jsLiteral(e), end: j + 2 };
  }
}

/** PCRE class escapes JavaScript lacks, as class contents (or a negated class). */
function classEscape(e: string): string | undefined {
  switch (e) {
    case 'h':
      return ' \\t\\xa0';
    case 'H':
      return '[^ \\t\\xa0]';
    case 'v':
      return '\\n\\x0b\\f\\r\\x85';
    case 'V':
      return '[^\\n\\x0b\\f\\r\\x85]';
    default:
      return undefined;
  }
}

export const pcreType: TableType = {
  type: 'pcre',
  keyKind: 'pattern',
  listed: true,
  open: (name, spec, options) =>
    openPatternFile('pcre', name, spec, options, (text, place) => parsePcrePattern(text, place, options.warn)),
};
