/**
 * pattern-table.ts — what regexp:, pcre: and cidr: tables share: the file's
 * logical lines, the rule tree with `if` ... `endif`, first-match evaluation,
 * and `$1`/`${1}`/`$(1)`/`$$` result templates.
 *
 * Contract (dict_regexp.c, dict_pcre.c, dict_cidr.c, readlline.c, mac_parse.c
 * of Postfix 3.11):
 * - `logicalLines(text, file, warn)` applies the postmap(1) input rules:
 *   blank and `#` lines are skipped, a line starting with whitespace continues
 *   the previous logical line (the newline is dropped, the whitespace kept),
 *   trailing whitespace is removed. A first logical line that starts with
 *   whitespace is skipped with readllines()'s warning. Each logical line
 *   carries the number of its first physical line.
 * - `buildRules(lines, parseLine, label, warn)` builds the rule tree from one
 *   `LineResult` per logical line; the line grammar is the dialect's. A rule
 *   that Postfix would skip is skipped here too, with Postfix's warning text
 *   (`regexp map FILE, line N: ...: skipping this rule`) through `warn`, and
 *   the rest of the table works: a bad rule never takes the table down. An
 *   `if` without `endif` extends to the end of the table ("IF has no matching
 *   ENDIF"). What sealpost cannot run although Postfix would (a PCRE feature
 *   JavaScript lacks) is an `UnsupportedPattern` ConfigError: the table is
 *   refused with file and line, never silently read differently.
 * - `parseMatchRule()` is the regexp/pcre rule grammar (a `PatternDialect`
 *   compiles the patterns); `prescanTemplate()` is mac_parse() plus the
 *   replacement checks.
 * - `evaluate(rules, key)` walks the tree: first matching rule wins; the rules
 *   inside `if`..`endif` are tried only when the `if` test holds.
 * - `loadPatternRules()` reads a table file (or an inline `{ {rule}, ... }`
 *   name, Postfix 3.7) and returns the rules; the parsers do no I/O.
 *
 * Not here: the regex dialects (regexp.ts, pcre.ts), address parsing (cidr.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../lib/errors.ts';
import { found, NOT_FOUND } from './types.ts';
import type { LookupTable, OpenOptions } from './types.ts';
import { isNotFound } from '../lib/fs-errors.ts';

export interface LogicalLine {
  readonly text: string;
  /** 1-based number of the first physical line. */
  readonly line: number;
}

/** Where a rule came from, for error messages. */
export interface Place {
  readonly file: string;
  readonly line: number;
}

export function placeError(place: Place, message: string): ConfigError {
  return new ConfigError(message, place.file, place.line);
}

/** A valid rule that sealpost cannot run (Postfix would): the table is refused. */
export class UnsupportedPattern extends ConfigError {}

/** A rule Postfix skips; `reason` is Postfix's text after `map FILE, line N: `. */
export class RuleSkip extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'RuleSkip';
  }
}

/** Split table text into logical lines (readlline.c readllines()). */
export function logicalLines(text: string, file: string, warn?: (message: string) => void): LogicalLine[] {
  const out: { text: string; line: number }[] = [];
  const physical = text.split('\n');
  if (physical[physical.length - 1] === '') physical.pop();
  let leading: string | undefined;
  for (let i = 0; i < physical.length; i++) {
    const raw = physical[i]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    // regexp_table(5): "Empty lines and whitespace-only lines are ignored, as are
    // lines whose first non-whitespace character is a `#'."
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (/^\s/.test(raw)) {
      const last = out[out.length - 1];
      if (last) last.text += raw;
      else leading = (leading ?? '') + raw;
      continue;
    }
    if (leading !== undefined) reportLeading(file, leading, warn);
    leading = undefined;
    out.push({ text: raw, line: i + 1 });
  }
  if (leading !== undefined) reportLeading(file, leading, warn);
  return out.map((l) => ({ text: l.text.replace(/\s+$/, ''), line: l.line }));
}

/** readllines(): "logical line must not start with whitespace" (the line is skipped). */
function reportLeading(file: string, text: string, warn?: (message: string) => void): void {
  const t = text.replace(/\s+$/, '');
  warn?.(`${file}: logical line must not start with whitespace: "${t.slice(0, 30)}${t.length > 30 ? '...' : ''}"`);
}

/**
 * A compiled test: captures (index 0 = whole match) when it matches, null when
 * it does not, undefined when the rule does not apply to this key at all
 * (cidr: an IPv6 key against an IPv4 network — not even `!pattern` holds).
 */
export type Test = (key: string) => readonly (string | undefined)[] | null | undefined;

/** A result with `$n` substitutions, compiled once at load time. */
export type Template = readonly (string | number)[];

/** regexp's `/pattern1/!/pattern2/`: a second test that must hold as well. */
export interface SecondTest {
  readonly test: Test;
  readonly negate: boolean;
}

export type Rule =
  | { readonly kind: 'match'; readonly line: number; readonly test: Test; readonly negate: boolean; readonly and?: SecondTest; readonly result: Template }
  | { readonly kind: 'if'; readonly line: number; readonly test: Test; readonly negate: boolean; readonly body: readonly Rule[] };

/** What one logical line is, after the dialect's grammar. */
export type LineResult =
  | { readonly kind: 'match'; readonly test: Test; readonly negate: boolean; readonly and?: SecondTest; readonly result: Template }
  | { readonly kind: 'if'; readonly test: Test; readonly negate: boolean }
  | { readonly kind: 'endif' }
  | { readonly kind: 'skip' };

/** Parses one logical line; warnings (Postfix's texts, prefixed) go to `warn`. */
export type LineParser = (text: string, place: Place, nesting: number, warn: (message: string) => void) => LineResult;

/** `regexp map /etc/x.re, line 3: ` — Postfix's prefix of every rule warning. */
export function mapPrefix(map: string, place: Place): string {
  return `${map} map ${place.file}, line ${place.line}: `;
}

const IF_RE = /^if(?![A-Za-z0-9])/i;
const ENDIF_RE = /^endif(?![A-Za-z0-9])/i;

export function isIf(text: string): boolean {
  return IF_RE.test(text);
}
export function isEndif(text: string): boolean {
  return ENDIF_RE.test(text);
}

/** Build the rule tree; `map` is `regexp`, `pcre` or `cidr` (for "IF has no matching ENDIF"). */
export function buildRules(lines: readonly LogicalLine[], file: string, map: string, parse: LineParser, warn: (message: string) => void): Rule[] {
  const top: Rule[] = [];
  const stack: { line: number; test: Test; negate: boolean; body: Rule[] }[] = [];
  const current = (): Rule[] => (stack.length ? stack[stack.length - 1]!.body : top);
  const close = (): void => {
    const open = stack.pop()!;
    current().push({ kind: 'if', line: open.line, test: open.test, negate: open.negate, body: open.body });
  };
  for (const { text, line } of lines) {
    const r = parse(text, { file, line }, stack.length, warn);
    if (r.kind === 'skip') continue;
    if (r.kind === 'endif') close();
    else if (r.kind === 'if') stack.push({ line, test: r.test, negate: r.negate, body: [] });
    else current().push({ kind: 'match', line, test: r.test, negate: r.negate, ...(r.and ? { and: r.and } : {}), result: r.result });
  }
  // dict_regexp_open(): an unterminated IF reaches to the end of the table.
  for (let i = stack.length - 1; i >= 0; i--) warn(`${mapPrefix(map, { file, line: stack[i]!.line })}IF has no matching ENDIF`);
  while (stack.length > 0) close();
  return top;
}

/** How a regexp-style dialect compiles and names things. */
export interface PatternDialect {
  readonly map: 'regexp' | 'pcre';
  /** Flag letters (a flag toggles); `obsolete` letters are accepted with a warning. */
  readonly flags: string;
  readonly obsolete: string;
  /** regexp: options end at `!` too (the second pattern of `/p1/!/p2/`). */
  readonly secondPattern: boolean;
  /** dict_pcre.c says "ignoring this rule" for an unclosed delimiter, dict_regexp.c "skipping". */
  readonly unclosed: 'skipping' | 'ignoring';
  /** `out-of-range` (regexp) or `out of range` (pcre) for an index below 1. */
  readonly lowIndex: string;
  /** Compile a pattern with its flag letters; throws RuleSkip (Postfix's reason) or UnsupportedPattern. */
  compile(source: string, flags: string, place: Place): { test: Test; groups: number };
}

interface RawPattern {
  readonly negate: boolean;
  readonly source: string;
  readonly flags: string;
  /** The text after the flags. */
  readonly rest: string;
}

const isSpaceChar = (c: string | undefined): boolean => c !== undefined && /[ \t\n\r\f\v]/.test(c);

/** dict_regexp_get_pat() / dict_pcre_get_pattern(): negations, delimiters, flags. */
function getPattern(text: string, d: PatternDialect, prefix: string, warn: (m: string) => void): RawPattern {
  let i = 0;
  let negate = false;
  for (; i < text.length; i++) {
    if (text[i] === '!') negate = !negate;
    else if (!isSpaceChar(text[i])) break;
  }
  if (i >= text.length) throw new RuleSkip('no regexp: skipping this rule');
  const delimiter = text[i]!;
  const start = ++i;
  for (; i < text.length; i++) {
    if (text[i] === '\\') {
      if (i + 1 < text.length) i++;
      else {
        i = text.length;
        break;
      }
    } else if (text[i] === delimiter) break;
  }
  if (i >= text.length) throw new RuleSkip(`no closing regexp delimiter "${delimiter}": ${d.unclosed} this rule`);
  const source = text.slice(start, i);
  let j = i + 1;
  let flags = '';
  for (; j < text.length && !isSpaceChar(text[j]) && !(d.secondPattern && text[j] === '!'); j++) {
    const f = text[j]!;
    if (d.obsolete.includes(f)) {
      warn(`${prefix}ignoring obsolete regexp option "${f}"`);
      continue;
    }
    if (!d.flags.includes(f)) throw new RuleSkip(`unknown regexp option "${f}": skipping this rule`);
    flags += f;
  }
  return { negate, source, flags, rest: text.slice(j) };
}

/**
 * mac_parse() over a replacement text with dict_regexp_prescan(): `$$`,
 * `$n`, `${n}`, `$(n)`; every problem is Postfix's warning; the template and
 * the highest index, or undefined when the rule must be skipped.
 */
export function prescanTemplate(text: string, prefix: string, lowIndex: string, warn: (m: string) => void): { template: Template; maxSub: number } | undefined {
  const parts: (string | number)[] = [];
  let literal = '';
  let error = false;
  let maxSub = 0;
  const variable = (name: string): void => {
    if (!/^[0-9]*$/.test(name)) {
      warn(`${prefix}non-numeric replacement index "${name}"`);
      error = true;
      return;
    }
    const n = Number(name);
    if (n < 1) {
      warn(`${prefix}${lowIndex} replacement index "${name}"`);
      error = true;
      return;
    }
    maxSub = Math.max(maxSub, n);
    if (literal) parts.push(literal);
    literal = '';
    parts.push(n);
  };
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c !== '$') {
      literal += c;
      i++;
    } else if (text[i + 1] === '$') {
      literal += '$';
      i += 2;
    } else if (text[i + 1] === '{' || text[i + 1] === '(') {
      const open = text[i + 1]!;
      const closeCh = open === '{' ? '}' : ')';
      let level = 1;
      let j = i + 2;
      for (; level > 0; j++) {
        if (j >= text.length) {
          warn(`truncated macro reference: "${text}"`);
          return undefined;
        }
        if (text[j] === open) level++;
        if (text[j] === closeCh) level--;
      }
      const name = text.slice(i + 2, j - 1);
      if (name === '') {
        warn(`empty macro name: "${text}"`);
        return undefined;
      }
      variable(name);
      i = j;
    } else {
      const m = /^[A-Za-z0-9_]*/.exec(text.slice(i + 1))!;
      if (m[0] === '') {
        warn(`empty macro name: "${text}"`);
        return undefined;
      }
      variable(m[0]);
      i += 1 + m[0].length;
    }
  }
  if (literal) parts.push(literal);
  return error ? undefined : { template: parts, maxSub };
}

/** One regexp/pcre logical line (dict_regexp_parseline(), dict_pcre_parse_rule()). */
export function parseMatchRule(d: PatternDialect): LineParser {
  return (text, place, nesting, warn) => {
    const prefix = mapPrefix(d.map, place);
    try {
      if (!/^[A-Za-z0-9]/.test(text)) return matchLine(d, text, place, prefix, warn);
      if (isIf(text)) return ifLine(d, text.slice(2), place, prefix, warn);
      if (isEndif(text)) {
        if (nesting === 0) {
          warn(`${prefix}ignoring ENDIF without matching IF`);
          return { kind: 'skip' };
        }
        if (text.slice(5).trim() !== '') warn(`${prefix}ignoring extra text after ENDIF`);
        return { kind: 'endif' };
      }
      warn(`${prefix}ignoring unrecognized request`);
      return { kind: 'skip' };
    } catch (err) {
      if (!(err instanceof RuleSkip)) throw err;
      warn(`${prefix}${err.reason}`);
      return { kind: 'skip' };
    }
  };
}

function matchLine(d: PatternDialect, text: string, place: Place, prefix: string, warn: (m: string) => void): LineResult {
  const first = getPattern(text, d, prefix, warn);
  let rest = first.rest;
  let second: RawPattern | undefined;
  if (d.secondPattern && rest.startsWith('!')) {
    second = getPattern(rest, d, prefix, warn);
    rest = second.rest;
  }
  const resultText = rest.replace(/^[ \t\n\r\f\v]+/, '');
  if (resultText === '') warn(`${prefix}no replacement text: using empty string`);
  const pre = prescanTemplate(resultText, prefix, d.lowIndex, warn);
  if (!pre) throw new RuleSkip('bad replacement syntax: skipping this rule');
  if (pre.maxSub > 0 && first.negate) throw new RuleSkip('$number found in negative match replacement text: skipping this rule');
  const compiled = d.compile(first.source, first.flags, place);
  if (pre.maxSub > compiled.groups) throw new RuleSkip(`out of range replacement index "${pre.maxSub}": skipping this rule`);
  const and = second ? { test: d.compile(second.source, second.flags, place).test, negate: second.negate } : undefined;
  return { kind: 'match', test: compiled.test, negate: first.negate, ...(and ? { and } : {}), result: pre.template };
}

function ifLine(d: PatternDialect, text: string, place: Place, prefix: string, warn: (m: string) => void): LineResult {
  const pat = getPattern(text.replace(/^[ \t\n\r\f\v]+/, ''), d, prefix, warn);
  const extra = pat.rest.replace(/^[ \t\n\r\f\v]+/, '');
  if (extra !== '') {
    warn(`${prefix}ignoring extra text after IF statement: "${extra}"`);
    warn(`${prefix}do not prepend whitespace to statements between IF and ENDIF`);
  }
  return { kind: 'if', test: d.compile(pat.source, pat.flags, place).test, negate: pat.negate };
}

/** Fill in a template with the captures of the matching pattern (unset groups are empty). */
export function expandTemplate(template: Template, captures: readonly (string | undefined)[]): string {
  if (template.length === 1 && typeof template[0] === 'string') return template[0];
  let out = '';
  for (const part of template) out += typeof part === 'string' ? part : (captures[part] ?? '');
  return out;
}

function holds(test: Test, negate: boolean, key: string): { captures: readonly (string | undefined)[] | null } | undefined {
  const captures = test(key);
  if (captures === undefined) return undefined;
  return (negate ? captures === null : captures !== null) ? { captures } : undefined;
}

/** First-match evaluation of the rule tree. Returns the result text, or undefined. */
export function evaluate(rules: readonly Rule[], key: string): string | undefined {
  for (const rule of rules) {
    const h = holds(rule.test, rule.negate, key);
    if (!h) continue;
    if (rule.kind === 'match') {
      if (rule.and && !holds(rule.and.test, rule.and.negate, key)) continue;
      return expandTemplate(rule.result, h.captures ?? []);
    }
    const inner = evaluate(rule.body, key);
    if (inner !== undefined) return inner;
  }
  return undefined;
}

/** Every rule in file order (flattened), for `postmap -s`-style listings. */
export function* flattenRules(rules: readonly Rule[]): Generator<Rule> {
  for (const rule of rules) {
    yield rule;
    if (rule.kind === 'if') yield* flattenRules(rule.body);
  }
}

/** POSIX character classes as JavaScript class contents (ASCII, like the C locale). */
export const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alpha: 'A-Za-z',
  digit: '0-9',
  alnum: '0-9A-Za-z',
  upper: 'A-Z',
  lower: 'a-z',
  space: ' \\t\\n\\r\\f\\v',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  print: ' -~',
  graph: '!-~',
  cntrl: '\\x00-\\x1f\\x7f',
  xdigit: '0-9A-Fa-f',
  word: '0-9A-Za-z_',
};

/** Escape one literal character for use in a JavaScript pattern (outside or inside a class). */
export function jsLiteral(c: string): string {
  return /[\\^$.*+?()[\]{}|\/-]/.test(c) ? `\\${c}` : c === '\n' ? '\\n' : c;
}

/** Split an inline table (`regexp:{ { rule-1 }, { rule-2 } }`, Postfix 3.7) into rule lines. */
export function inlineRules(name: string, spec: string): string[] {
  const body = name.trim();
  if (!body.startsWith('{') || !body.endsWith('}')) throw new ConfigError(`${spec}: inline table must be written as { { rule }, { rule } ... }`);
  const inner = body.slice(1, -1);
  const rules: string[] = [];
  let i = 0;
  while (i < inner.length) {
    const c = inner[i]!;
    if (/[\s,]/.test(c)) {
      i++;
      continue;
    }
    if (c !== '{') throw new ConfigError(`${spec}: expected "{" to start a rule at "${inner.slice(i, i + 20)}"`);
    let depth = 0;
    let j = i;
    for (; j < inner.length; j++) {
      if (inner[j] === '{') depth++;
      else if (inner[j] === '}' && --depth === 0) break;
    }
    if (j >= inner.length) throw new ConfigError(`${spec}: unbalanced "{" in inline table`);
    rules.push(inner.slice(i + 1, j).trim());
    i = j + 1;
  }
  return rules;
}

/** Rules read from a table file (or an inline `{...}` name), with what reload needs to notice a change. */
export interface LoadedRules {
  readonly rules: Rule[];
  /** The file read; undefined for an inline table. */
  readonly path: string | undefined;
  readonly mtimeMs: number;
  /** The logical lines, for tools that show rules with their text (sealpost check). */
  readonly lines: readonly LogicalLine[];
}

/**
 * Read and parse a regexp:/pcre:/cidr: table from a file or an inline
 * `{ {rule}, ... }` name. ConfigError on a missing file or an unsupported
 * pattern; bad rules are skipped with a warning through `options.warn`.
 */
export async function loadPatternRules(map: string, name: string, spec: string, options: OpenOptions, parse: LineParser): Promise<LoadedRules> {
  const warn = options.warn ?? (() => {});
  if (name.trimStart().startsWith('{')) {
    const lines = inlineRules(name, spec).map((text, n) => ({ text, line: n + 1 }));
    return { rules: buildRules(lines, name, map, parse, warn), path: undefined, mtimeMs: 0, lines };
  }
  const path = isAbsolute(name) || !options.baseDir ? name : resolve(options.baseDir, name);
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(path, 'utf8');
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (err) {
    throw new ConfigError(`open ${map} table ${path}: ${isNotFound(err) ? 'No such file or directory' : (err as Error).message}`);
  }
  const lines = logicalLines(text, path, warn);
  return { rules: buildRules(lines, path, map, parse, warn), path, mtimeMs, lines };
}

/** True when the file behind a table changed (or vanished) since it was read. */
export function fileChanged(path: string | undefined, mtimeMs: number): boolean {
  if (path === undefined) return false;
  try {
    return statSync(path).mtimeMs !== mtimeMs;
  } catch {
    return true;
  }
}

/** Open a regexp:/pcre: table: read, parse every rule, and return a first-match LookupTable. */
export async function openPatternFile(dialect: PatternDialect, name: string, spec: string, options: OpenOptions): Promise<LookupTable> {
  const { rules, path, mtimeMs } = await loadPatternRules(dialect.map, name, spec, options, parseMatchRule(dialect));
  return patternTable(dialect.map, name, spec, rules, path, mtimeMs);
}

function patternTable(type: string, name: string, spec: string, rules: Rule[], path: string | undefined, mtimeMs: number): LookupTable {
  const table: LookupTable = {
    type,
    name,
    spec,
    keyKind: 'pattern',
    // regexp_table(5): "Patterns are applied in the order as specified in the
    // table, until a pattern is found that matches the input string."
    lookup: async (key) => {
      const value = evaluate(rules, key);
      return value === undefined ? NOT_FOUND : found(value);
    },
    close: async () => {},
  };
  if (path === undefined) return table;
  return { ...table, isStale: () => fileChanged(path, mtimeMs) };
}
