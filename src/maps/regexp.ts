/**
 * regexp.ts — the `regexp:` table type (regexp_table(5)): POSIX regular
 * expressions in Postfix's `/pattern/flags result` syntax, run on JavaScript's
 * RegExp.
 *
 * Contract:
 * - Flags toggle Postfix's defaults (regexp_table(5)): `i` (case-insensitive,
 *   on), `x` (extended syntax, on; off means POSIX basic syntax), `m`
 *   (REG_NEWLINE, off). The rule grammar, `/p1/!/p2/` included, is
 *   pattern-table.ts's (dict_regexp.c).
 * - `translatePosix()` turns a POSIX (glibc) ERE or BRE into an equivalent
 *   JavaScript source: bracket expressions with POSIX semantics (a backslash
 *   is literal, `]` first is literal, `[[:alpha:]]`, `[=c=]`, `[.c.]`), GNU
 *   escapes `\w \s \b \< \>`, back references, stacked quantifiers (`a**`),
 *   `{,n}`, an unmatched `)` in ERE as a literal (as glibc takes it). What
 *   glibc's regcomp() refuses is a `RuleSkip` with regerror()'s text
 *   (`Invalid preceding regular expression`, `Unmatched ( or \(` ...): the
 *   rule is skipped with Postfix's warning. A backslash before a letter glibc
 *   gives no meaning (`\d`) is an `UnsupportedPattern`: glibc accepts it with
 *   a meaning JavaScript cannot reproduce, so the table is refused.
 * - Known difference: POSIX picks the leftmost-longest match, JavaScript the
 *   leftmost-first; whether a key matches is the same, but a `$n` capture of
 *   an alternation can differ (`(a|ab)` on `ab`). Documented in the diff test.
 * - Keys are matched as given (no case folding).
 *
 * Not here: the line grammar, if/endif, `$n` (pattern-table.ts).
 */
import type { TableType } from './types.ts';
import { jsLiteral, openPatternFile, POSIX_CLASSES, RuleSkip, UnsupportedPattern } from './pattern-table.ts';
import type { PatternDialect, Place, Test } from './pattern-table.ts';

interface PosixFlags {
  i: boolean;
  x: boolean;
  m: boolean;
}

/** regexp_table(5) defaults: i on, x on, m off. */
const DEFAULT_FLAGS: Readonly<PosixFlags> = { i: true, x: true, m: false };

/** glibc's RE_DUP_MAX: a larger interval count is "Regular expression too big". */
const RE_DUP_MAX = 0x7fff;

/** Compile one pattern with its flag letters (each toggles a regexp_table(5) default). */
export function compileRegexp(source: string, flagLetters: string, place: Place): { test: Test; groups: number } {
  const state: PosixFlags = { ...DEFAULT_FLAGS };
  for (const f of flagLetters) if (f === 'i' || f === 'x' || f === 'm') state[f] = !state[f];
  const { source: js, groups } = translatePosix(source, state, place);
  let regex: RegExp;
  try {
    regex = new RegExp(js, (state.i ? 'i' : '') + (state.m ? 'm' : ''));
  } catch (err) {
    const text = (err as Error).message;
    // The one regcomp() error the translation leaves to the RegExp compiler.
    if (/Range out of order/.test(text)) throw new RuleSkip('Invalid range end');
    throw new UnsupportedPattern(`pattern /${source}/ cannot be run by sealpost's regexp: (${text.replace(/^Invalid regular expression: /, '')}); rewrite it`, place.file, place.line);
  }
  return { test: (key) => regex.exec(key), groups };
}

/** dict_regexp.c as a pattern-table.ts dialect. */
export const REGEXP_DIALECT: PatternDialect = {
  map: 'regexp',
  flags: 'imx',
  obsolete: '',
  secondPattern: true,
  unclosed: 'skipping',
  lowIndex: 'out-of-range',
  compile: compileRegexp,
};

interface Item {
  text: string;
  /** Can take a quantifier (not an anchor, not `|`, not a group opener). */
  quantifiable: boolean;
  /** Already carries a quantifier: another one wraps it in (?:...). */
  quantified: boolean;
}

/** Translate a POSIX ERE (x on) or BRE (x off) to JavaScript RegExp source. */
export function translatePosix(src: string, flags: Readonly<PosixFlags>, place: Place): { source: string; groups: number } {
  // regerror() texts: the rule is skipped with this reason (dict_regexp_regerror()).
  const fail = (what: string): never => {
    throw new RuleSkip(what);
  };
  const ere = flags.x;
  const frames: Item[][] = [[]];
  let groups = 0;
  let closed = 0;
  let i = 0;
  const items = (): Item[] => frames[frames.length - 1]!;
  const push = (text: string, quantifiable = true): void => {
    items().push({ text, quantifiable, quantified: false });
  };
  const atStart = (): boolean => {
    const last = items()[items().length - 1];
    return last === undefined || last.text === '|';
  };
  const quantify = (q: string): void => {
    const list = items();
    const last = list[list.length - 1];
    if (!last || !last.quantifiable) fail('Invalid preceding regular expression');
    if (last!.quantified) last!.text = `(?:${last!.text})`;
    last!.text += q;
    last!.quantified = true;
  };
  const interval = (body: string): void => {
    const m = /^(\d*)(,(\d*))?$/.exec(body);
    if (!m || (m[1] === '' && m[2] === undefined)) fail('Invalid content of \\{\\}');
    const lo = m![1] === '' ? '0' : m![1]!;
    const hi = m![3];
    if (hi !== undefined && hi !== '' && Number(hi) < Number(lo)) fail('Invalid content of \\{\\}');
    if (Number(lo) > RE_DUP_MAX || (hi !== undefined && hi !== '' && Number(hi) > RE_DUP_MAX)) fail('Regular expression too big');
    quantify(m![2] === undefined ? `{${lo}}` : `{${lo},${hi ?? ''}}`);
  };
  const openGroup = (): void => {
    groups++;
    frames.push([]);
  };
  const closeGroup = (): void => {
    // glibc: an unmatched ")" is literal in ERE; an unmatched "\\)" in BRE is this text.
    if (frames.length === 1) {
      if (ere) return push('\\)');
      fail('Unmatched ( or \\(');
    }
    const inner = frames.pop()!.map((x) => x.text).join('');
    closed++;
    push(`(${inner})`);
  };
  while (i < src.length) {
    const c = src[i]!;
    if (c === '[') {
      const { text, end } = bracket(src, i, flags.m, fail);
      push(text);
      i = end;
      continue;
    }
    if (c === '\\') {
      const e = src[i + 1];
      if (e === undefined) fail('Trailing backslash');
      i += 2;
      if (!ere && e === '(') openGroup();
      else if (!ere && e === ')') closeGroup();
      else if (!ere && e === '|') push('|', false);
      else if (!ere && (e === '+' || e === '?')) quantify(e!);
      else if (!ere && e === '{') {
        const close = src.indexOf('\\}', i);
        if (close < 0) fail('Unmatched \\{');
        interval(src.slice(i, close));
        i = close + 2;
      } else {
        // glibc: a back reference must name a group that is already closed.
        if (/[1-9]/.test(e!) && Number(e) > closed) fail('Invalid back reference');
        push(...posixEscape(e!, src, place));
      }
      continue;
    }
    i++;
    if (ere) {
      if (c === '(') openGroup();
      else if (c === ')') closeGroup();
      else if (c === '|') push('|', false);
      else if (c === '*' || c === '+' || c === '?') quantify(c);
      else if (c === '{') {
        const close = src.indexOf('}', i);
        if (close < 0) fail('Unmatched \\{');
        interval(src.slice(i, close));
        i = close + 1;
      } else if (c === '^' || c === '$') push(c, false);
      else if (c === '.') push(flags.m ? '[^\\n]' : '[\\s\\S]');
      else push(jsLiteral(c));
      continue;
    }
    // POSIX basic syntax: `*` is literal first; ^ and $ anchor only at the ends.
    if (c === '*' && atStart()) push('\\*');
    else if (c === '*') quantify('*');
    else if (c === '^' && atStart()) push('^', false);
    else if (c === '$' && (i === src.length || src.startsWith('\\)', i) || src.startsWith('\\|', i))) push('$', false);
    else if (c === '.') push(flags.m ? '[^\\n]' : '[\\s\\S]');
    else push(jsLiteral(c));
  }
  if (frames.length > 1) fail('Unmatched ( or \\(');
  return { source: items().map((x) => x.text).join(''), groups };
}

/** A backslash escape outside brackets: [JavaScript text, quantifiable]. */
function posixEscape(e: string, src: string, place: Place): [string, boolean] {
  if ('wWsS'.includes(e)) return [`\\${e}`, true];
  if (e === 'b' || e === 'B') return [`\\${e}`, false];
  // GNU regex: \< and \> are word start and word end, \` and \' buffer start and end.
  if (e === '<') return ['\\b(?=\\w)', false];
  if (e === '>') return ['\\b(?<=\\w)', false];
  if (e === '`') return ['(?<![\\s\\S])', false];
  if (e === "'") return ['(?![\\s\\S])', false];
  if (/[1-9]/.test(e)) return [`\\${e}`, true];
  if (/[A-Za-z0-9]/.test(e)) {
    throw new UnsupportedPattern(`"\\${e}" is not a POSIX regular expression escape${e === 'd' ? ' (use [[:digit:]] or [0-9])' : ''}; in /${src}/`, place.file, place.line);
  }
  return [jsLiteral(e), true];
}

/** A POSIX bracket expression starting at `src[start] === '['`. */
function bracket(src: string, start: number, newline: boolean, fail: (what: string) => never): { text: string; end: number } {
  let j = start + 1;
  let out = '[';
  const negate = src[j] === '^';
  if (negate) {
    out += '^';
    j++;
  }
  // POSIX: a `]` first in the list is literal.
  if (src[j] === ']') {
    out += '\\]';
    j++;
  }
  for (;;) {
    const c = src[j];
    if (c === undefined) fail('Unmatched [, [^, [:, [., or [=');
    if (c === ']') break;
    if (c === '[' && (src[j + 1] === ':' || src[j + 1] === '=' || src[j + 1] === '.')) {
      const kind = src[j + 1]!;
      const close = src.indexOf(`${kind}]`, j + 2);
      if (close < 0) fail('Unmatched [, [^, [:, [., or [=');
      const name = src.slice(j + 2, close);
      if (kind === ':') {
        const body = POSIX_CLASSES[name];
        if (body === undefined || name === 'word') fail('Invalid character class name');
        out += body;
      } else {
        if ([...name].length !== 1) fail('Invalid collation character');
        out += jsLiteral(name);
      }
      j = close + 2;
      continue;
    }
    // POSIX: inside brackets a backslash is an ordinary character.
    if (c === '-') out += '-';
    else out += jsLiteral(c);
    j++;
  }
  // regexp_table(5) m / REG_NEWLINE: a non-matching list does not match a newline.
  if (negate && newline) out += '\\n';
  return { text: out + ']', end: j + 1 };
}

export const regexpType: TableType = {
  type: 'regexp',
  keyKind: 'pattern',
  listed: true,
  open: (name, spec, options) => openPatternFile(REGEXP_DIALECT, name, spec, options),
};
