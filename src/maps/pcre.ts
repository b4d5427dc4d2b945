/**
 * pcre.ts — the `pcre:` table type (pcre_table(5)): Perl-compatible patterns
 * in Postfix's `/pattern/flags result` syntax, run on JavaScript's RegExp.
 *
 * Contract:
 * - Flags toggle Postfix's defaults (pcre_table(5)): `i` (on), `s` (DOTALL,
 *   on), `m` (off), `x` (off), `A` (ANCHORED, off), `E` (DOLLAR_ENDONLY,
 *   off), `U` (UNGREEDY, off); `X` is accepted and ignored (PCRE2, as Postfix
 *   3.7+ with pcre2 does, with a warning).
 * - The translator rewrites what JavaScript spells differently: POSIX
 *   classes `[[:alpha:]]`, `\Q...\E`, `\A`, `\Z`, `\z`, `\h`, `\v`, `\R`,
 *   `\x{..}`, `\e`, `(?P<name>`, `(?#...)`, a leading `(?i)`-style option
 *   group, PCRE's `$` (which also matches before a final newline), the `x`
 *   and `U` flags.
 * - What PCRE2 itself refuses is a `RuleSkip` with Postfix's text, `error in
 *   regex at offset N: <PCRE2 message>` (unmatched parentheses, a quantifier
 *   with nothing to repeat, an unknown escape, a reference to a group that
 *   does not exist ...): the rule is skipped with a warning, as Postfix does.
 * - PCRE features JavaScript has no equivalent for (possessive quantifiers,
 *   atomic groups, recursion, conditionals, `\G`, `\K`, `\p`, verbs, option
 *   groups in mid-pattern) are an `UnsupportedPattern` ConfigError naming
 *   file and line: PCRE2 accepts them, so skipping the rule would silently
 *   change the table; the table is refused instead.
 * - Keys are matched as given: no case folding (the `i` flag decides).
 *
 * Not here: the line grammar, if/endif and `$n` results (pattern-table.ts).
 */
import type { TableType } from './types.ts';
import { jsLiteral, openPatternFile, POSIX_CLASSES, RuleSkip, UnsupportedPattern } from './pattern-table.ts';
import type { PatternDialect, Place, Test } from './pattern-table.ts';

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

/** Compile one pattern with its flag letters (each toggles a pcre_table(5) default). */
export function compilePcreRule(source: string, flagLetters: string, place: Place): { test: Test; groups: number } {
  const state: PcreFlags = { ...DEFAULT_FLAGS };
  for (const f of flagLetters) if (f in state) state[f as keyof PcreFlags] = !state[f as keyof PcreFlags];
  const { regex, groups } = compilePcre(source, state, place);
  const test = (key: string): RegExpExecArray | null => {
    regex.lastIndex = 0;
    return regex.exec(key);
  };
  return { test, groups };
}

/** dict_pcre.c as a pattern-table.ts dialect ("X" is obsolete with PCRE2: warned and ignored). */
export const PCRE_DIALECT: PatternDialect = {
  map: 'pcre',
  flags: 'imsxAEU',
  obsolete: 'X',
  secondPattern: false,
  unclosed: 'ignoring',
  lowIndex: 'out of range',
  compile: compilePcreRule,
};

/** PCRE2's compile error: the rule is skipped (dict_pcre_compile()). */
function pcreError(offset: number, text: string): RuleSkip {
  return new RuleSkip(`error in regex at offset ${offset}: ${text}`);
}

/** Translate and compile one PCRE pattern. */
export function compilePcre(source: string, flags: Readonly<PcreFlags>, place: Place): { regex: RegExp; groups: number } {
  const state = { ...flags };
  const body = leadingOptions(source, state, place);
  const t = new PcreTranslator(body, state, place, source.length - body.length);
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
    // PCRE2's own errors were found above; what JavaScript still refuses is a difference of dialect.
    throw new UnsupportedPattern(`pattern /${source}/ cannot be run by sealpost's pcre: (${(err as Error).message.replace(/^Invalid regular expression: /, '')}); rewrite it`, place.file, place.line);
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
        if (!'imsxU'.includes(f)) throw new UnsupportedPattern(`unsupported inline option "(?${f})"`, place.file, place.line);
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
  /** Open groups. */
  private depth = 0;
  /** Back references with their offsets, checked once every group is known (PCRE2 allows forward ones). */
  private readonly refs: { readonly n: number; readonly at: number }[] = [];
  private readonly namedRefs: { readonly name: string; readonly at: number }[] = [];
  private readonly names = new Set<string>();

  constructor(
    private readonly src: string,
    private readonly flags: Readonly<PcreFlags>,
    private readonly place: Place,
    /** Offset of `src` in the pattern as written (after a leading option group). */
    private readonly base = 0,
  ) {}

  /** A PCRE feature JavaScript cannot run: the table is refused. */
  private fail(what: string): never {
    throw new UnsupportedPattern(`pattern /${this.src}/ uses ${what}, which sealpost's pcre: (JavaScript RegExp) does not support; rewrite the pattern without it`, this.place.file, this.place.line);
  }

  /** An error PCRE2 reports at `at` (an index into src): the rule is skipped. */
  private error(at: number, text: string): never {
    throw pcreError(this.base + at, text);
  }

  translate(): string {
    while (this.i < this.src.length) this.step();
    if (this.depth > 0) this.error(this.src.length, 'missing closing parenthesis');
    for (const r of this.refs) if (r.n > this.groups) this.error(r.at, 'reference to non-existent subpattern');
    for (const r of this.namedRefs) if (!this.names.has(r.name)) this.error(r.at, 'reference to non-existent subpattern');
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
        // PCRE2: "[:alpha:]" outside a class is an error, not a class of its letters.
        if (/^\[:\^?[A-Za-z]*:\]/.test(this.src.slice(this.i))) this.error(this.i, 'POSIX named classes are supported only within a class');
        return this.charClass();
      case '(':
        return this.groupOpen();
      case ')':
        if (this.depth === 0) this.error(this.i, 'unmatched closing parenthesis');
        this.depth--;
        this.i++;
        return this.emit(')', true);
      case '*':
      case '+':
      case '?':
        return this.quantifier(c, 1);
      case '{': {
        const m = /^\{(\d+)(?:,(\d*))?\}/.exec(this.src.slice(this.i));
        if (m) {
          const close = this.i + m[0].length - 1;
          if (Number(m[1]) > 65535 || (m[2] !== undefined && m[2] !== '' && Number(m[2]) > 65535)) this.error(close, 'number too big in {} quantifier');
          if (m[2] !== undefined && m[2] !== '' && Number(m[2]) < Number(m[1])) this.error(close, 'numbers out of order in {} quantifier');
          return this.quantifier(m[0], m[0].length);
        }
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
    if (!this.quantifiable) this.error(this.i, 'quantifier does not follow a repeatable item');
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
      this.depth++;
      this.i++;
      return this.emit('(', false);
    }
    const simple = /^\(\?(?::|=|!|<=|<!)/.exec(rest);
    if (simple) {
      this.depth++;
      this.i += simple[0].length;
      return this.emit(simple[0], false);
    }
    const named = /^\(\?(?:P?<([A-Za-z_][A-Za-z0-9_]*)>|'([A-Za-z_][A-Za-z0-9_]*)')/.exec(rest);
    if (named) {
      this.groups++;
      this.depth++;
      this.names.add(named[1] ?? named[2]!);
      this.i += named[0].length;
      return this.emit(`(?<${named[1] ?? named[2]}>`, false);
    }
    const backref = /^\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(rest);
    if (backref) {
      this.namedRefs.push({ name: backref[1]!, at: this.i + 4 });
      this.i += backref[0].length;
      return this.emit(`\\k<${backref[1]}>`, true);
    }
    if (rest.startsWith('(?#')) {
      const close = rest.indexOf(')');
      if (close < 0) this.error(this.src.length, 'missing ) after (?# comment');
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
    this.error(this.i + 2, 'unrecognized character after (? or (?-');
  }

  private escape(): void {
    const e = this.src[this.i + 1];
    if (e === undefined) this.error(this.src.length, '\\ at end of pattern');
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
    if (/[1-9]/.test(e!)) {
      const digits = /^[0-9]+/.exec(this.src.slice(this.i - 1))![0];
      this.refs.push({ n: Number(digits), at: this.i - 1 });
      this.i += digits.length - 1;
      return this.emit(`\\${digits}`, true);
    }
    if (/[dDwWsSnrtf]/.test(e)) return this.emit(`\\${e}`, true);
    if (e === 'c') {
      const ctl = this.src[this.i++];
      if (ctl === undefined) this.error(this.src.length, '\\c at end of pattern');
      if (!/[A-Za-z]/.test(ctl!)) this.fail(`"\\c${ctl}" (a control escape that is not a letter)`);
      return this.emit(`\\c${ctl}`, true);
    }
    if (/[A-Za-z]/.test(e)) this.error(this.i - 1, 'unrecognized character follows \\');
    return this.emit(jsLiteral(e), true);
  }

  /** `\g1`, `\g{1}`, `\g{name}`, `\k<name>`, `\k{name}`, `\k'name'`. */
  private namedRef(rest: string): void {
    const m = /^\\(?:g(\d+)|g\{(\d+)\}|g\{([A-Za-z_]\w*)\}|k<([A-Za-z_]\w*)>|k\{([A-Za-z_]\w*)\}|k'([A-Za-z_]\w*)')/.exec(rest);
    if (!m) {
      if (rest[1] === 'k') this.error(this.i, '\\k is not followed by a braced, angle-bracketed, or quoted name');
      this.fail(`a relative back reference or subroutine call "${rest.slice(0, 6)}"`);
    }
    const start = this.i;
    this.i += m![0].length - 2;
    const num = m![1] ?? m![2];
    if (num !== undefined) {
      this.refs.push({ n: Number(num), at: start + (m![2] !== undefined ? 1 : 0) });
      return this.emit(`\\${num}`, true);
    }
    const name = m![3] ?? m![4] ?? m![5] ?? m![6]!;
    this.namedRefs.push({ name, at: start + 1 + (m![3] !== undefined ? 1 : 0) });
    return this.emit(`\\k<${name}>`, true);
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
    else this.fail(`the escape "${rest.slice(0, 4)}"`);
    if (cp > 0x10ffff) this.error(this.i + m![0].length - 1, 'character code point value in \\x{} or \\o{} is too large');
    this.i += m![0].length;
    if (cp > 0xffff) this.fail(`a code point above U+FFFF ("${m![0]}")`);
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
      if (c === undefined) this.error(this.src.length, 'missing terminating ] for character class');
      if (c === ']') break;
      if (c === '[') {
        if (/^\[([.=])[^\]]*\1\]/.test(this.src.slice(j))) this.error(j, 'POSIX collating elements are not supported');
        const posix = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(j));
        if (posix) {
          const body = POSIX_CLASSES[posix[2]!];
          if (body === undefined) this.error(j + 2, 'unknown POSIX class name');
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
      // PCRE2: "range out of order in character class" (two literal ends, the second lower).
      const end = this.src[j + 2];
      if (this.src[j + 1] === '-' && end !== undefined && end !== ']' && end !== '\\' && end !== '[' && end.codePointAt(0)! < c.codePointAt(0)!) {
        this.error(j + 2, 'range out of order in character class');
      }
      out += c;
      j++;
    }
    this.i = j + 1;
    this.emit(out + ']', true);
  }

  private classEscapeAt(j: number): { text: string; end: number } {
    const e = this.src[j + 1];
    if (e === undefined) this.error(this.src.length, '\\ at end of pattern');
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
    if (/[A-Za-z]/.test(e)) this.error(j + 1, 'unrecognized character follows \\');
    if (/[0-9]/.test(e)) this.fail(`an octal escape "\\${e}" inside [...]`);
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
    openPatternFile(PCRE_DIALECT, name, spec, options),
};
