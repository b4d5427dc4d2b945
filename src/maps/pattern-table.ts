/**
 * pattern-table.ts — what regexp:, pcre: and cidr: tables share: the file's
 * logical lines, the `[!]pattern result` / `if [!]pattern` ... `endif` rule
 * tree, first-match evaluation, and `$1`/`${1}`/`$(1)`/`$$` result templates.
 *
 * Contract:
 * - `logicalLines(text, file)` applies the postmap(1) input rules shared by
 *   regexp_table(5), pcre_table(5) and cidr_table(5): blank and `#` lines are
 *   skipped, a line starting with whitespace continues the previous logical
 *   line (the newline is dropped, the whitespace kept), trailing whitespace is
 *   removed. Each logical line carries the number of its first physical line.
 * - `parseRules(lines, file, parsePattern)` builds the rule tree. The pattern
 *   syntax itself is the caller's (`parsePattern`); everything else is here.
 * - `evaluate(rules, key)` walks the tree: first matching rule wins; the rules
 *   inside `if`..`endif` are tried only when the `if` test holds.
 * - Every problem Postfix warns about and skips ("skipping this rule",
 *   "ignoring extra text", "IF has no matching ENDIF" ...) is a ConfigError
 *   naming file and line here: a table that silently lost a rule is a routing
 *   or TLS-policy surprise (each case is checked against Postfix in
 *   test/diff/pattern-tables.test.ts).
 * - `openPatternFile()` reads a table file (or an inline `{ {rule}, ... }`
 *   name, Postfix 3.7) and returns the LookupTable; the parsers above do no I/O.
 *
 * Not here: the regex dialects (regexp.ts, pcre.ts), address parsing (cidr.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { ConfigError } from '../lib/errors.ts';
import { found, NOT_FOUND } from './types.ts';
import type { LookupTable, OpenOptions } from './types.ts';

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

/** Split table text into logical lines (regexp_table(5) "multi-line text"). */
export function logicalLines(text: string, file: string): LogicalLine[] {
  const out: { text: string; line: number }[] = [];
  const physical = text.split('\n');
  for (let i = 0; i < physical.length; i++) {
    const raw = physical[i]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    // regexp_table(5): "Empty lines and whitespace-only lines are ignored, as are
    // lines whose first non-whitespace character is a `#'."
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    if (/^\s/.test(raw)) {
      const last = out[out.length - 1];
      // postmap(1): a logical line must not start with whitespace.
      if (!last) throw new ConfigError(`logical line must not start with whitespace: "${raw}"`, file, i + 1);
      last.text += raw;
      continue;
    }
    out.push({ text: raw, line: i + 1 });
  }
  return out.map((l) => ({ text: l.text.replace(/\s+$/, ''), line: l.line }));
}

/**
 * A compiled test: captures (index 0 = whole match) when it matches, null when
 * it does not, undefined when the rule does not apply to this key at all
 * (cidr: an IPv6 key against an IPv4 network — not even `!pattern` holds).
 */
export type Test = (key: string) => readonly (string | undefined)[] | null | undefined;

export interface ParsedPattern {
  readonly test: Test;
  /** Number of capture groups (`$n` must be 1..groups); 0 for cidr. */
  readonly groups: number;
  /** The text after the pattern (and its flags), not yet trimmed. */
  readonly rest: string;
}

/** Parses one pattern at the start of `text` (after any `!`). Throws ConfigError. */
export type PatternParser = (text: string, place: Place) => ParsedPattern;

/** A result with `$n` substitutions, compiled once at load time. */
export type Template = readonly (string | number)[];

export type Rule =
  | { readonly kind: 'match'; readonly line: number; readonly test: Test; readonly negate: boolean; readonly result: Template }
  | { readonly kind: 'if'; readonly line: number; readonly test: Test; readonly negate: boolean; readonly body: readonly Rule[] };

export interface ParseOptions {
  /** Whether results may use `$n` (regexp, pcre) or are literal text (cidr). */
  readonly substitution: boolean;
}

const IF_RE = /^if(?![A-Za-z0-9])/i;
const ENDIF_RE = /^endif(?![A-Za-z0-9])/i;

/** Build the rule tree from logical lines. */
export function parseRules(lines: readonly LogicalLine[], file: string, parse: PatternParser, opts: ParseOptions): Rule[] {
  const top: Rule[] = [];
  const stack: { line: number; test: Test; negate: boolean; body: Rule[] }[] = [];
  const current = (): Rule[] => (stack.length ? stack[stack.length - 1]!.body : top);
  for (const { text, line } of lines) {
    const place: Place = { file, line };
    if (ENDIF_RE.test(text)) {
      const extra = text.slice(5).trim();
      if (extra) throw placeError(place, `extra text after ENDIF: "${extra}"; put ENDIF on a line of its own`);
      const open = stack.pop();
      if (!open) throw placeError(place, 'ENDIF without matching IF');
      current().push({ kind: 'if', line: open.line, test: open.test, negate: open.negate, body: open.body });
      continue;
    }
    if (IF_RE.test(text)) {
      const { negate, pattern } = parseNegated(text.slice(2).trimStart(), place, parse);
      const extra = pattern.rest.trim();
      if (extra) throw placeError(place, `extra text after IF statement: "${extra}"; IF takes only a pattern`);
      stack.push({ line, test: pattern.test, negate, body: [] });
      continue;
    }
    current().push(parseMatchRule(text, place, parse, opts));
  }
  const unclosed = stack.pop();
  if (unclosed) throw placeError({ file, line: unclosed.line }, 'IF has no matching ENDIF');
  return top;
}

function parseNegated(text: string, place: Place, parse: PatternParser): { negate: boolean; pattern: ParsedPattern } {
  const negate = text.startsWith('!');
  const body = negate ? text.slice(1).trimStart() : text;
  if (body === '') throw placeError(place, 'missing pattern');
  return { negate, pattern: parse(body, place) };
}

function parseMatchRule(text: string, place: Place, parse: PatternParser, opts: ParseOptions): Rule {
  const { negate, pattern } = parseNegated(text, place, parse);
  if (pattern.rest !== '' && !/^\s/.test(pattern.rest)) {
    throw placeError(place, `no whitespace between pattern and result: "${text}"`);
  }
  const resultText = pattern.rest.trim();
  // Postfix warns "no replacement text: using empty string"; an empty result
  // is then rejected at lookup time. We refuse it up front.
  if (resultText === '') throw placeError(place, 'no result after the pattern; add the result text');
  const result = opts.substitution ? compileTemplate(resultText, pattern.groups, negate, place) : [resultText];
  return { kind: 'match', line: place.line, test: pattern.test, negate, result };
}

/**
 * regexp_table(5) TEXT SUBSTITUTION: `$1`, `${1}`, `$(1)`, `$$`. The index must
 * name a capture group of the pattern; negated patterns take no `$n`.
 */
export function compileTemplate(text: string, groups: number, negate: boolean, place: Place): Template {
  const parts: (string | number)[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c !== '$') {
      literal += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      literal += '$';
      i += 2;
      continue;
    }
    const { name, end } = macroName(text, i, place);
    if (!/^[0-9]+$/.test(name)) throw placeError(place, `non-numeric replacement index "${name}" in "${text}"; use $1..$9 or $$ for a literal $`);
    const n = Number(name);
    if (negate) throw placeError(place, `$${name} in the result of a negated pattern (!/.../): there is nothing to substitute`);
    if (n < 1 || n > groups) throw placeError(place, `out of range replacement index "${name}": the pattern has ${groups} capture group(s)`);
    if (literal) parts.push(literal);
    literal = '';
    parts.push(n);
    i = end;
  }
  if (literal) parts.push(literal);
  return parts;
}

/** The macro name after the `$` at `start`: `$name`, `${name}` or `$(name)`. */
function macroName(text: string, start: number, place: Place): { name: string; end: number } {
  const open = text[start + 1];
  if (open === '{' || open === '(') {
    const close = text.indexOf(open === '{' ? '}' : ')', start + 2);
    if (close < 0) throw placeError(place, `truncated macro reference "${text.slice(start)}"`);
    const name = text.slice(start + 2, close);
    if (name === '') throw placeError(place, `empty macro name in "${text}"`);
    return { name, end: close + 1 };
  }
  const m = /^[A-Za-z0-9_]+/.exec(text.slice(start + 1));
  if (!m) throw placeError(place, `empty macro name after "$" in "${text}"; write $$ for a literal $`);
  return { name: m[0], end: start + 1 + m[0].length };
}

/** Fill in a template with the captures of the matching pattern (unset groups are empty). */
export function expandTemplate(template: Template, captures: readonly (string | undefined)[]): string {
  if (template.length === 1 && typeof template[0] === 'string') return template[0];
  let out = '';
  for (const part of template) out += typeof part === 'string' ? part : (captures[part] ?? '');
  return out;
}

/** First-match evaluation of the rule tree. Returns the result text, or undefined. */
export function evaluate(rules: readonly Rule[], key: string): string | undefined {
  for (const rule of rules) {
    const captures = rule.test(key);
    if (captures === undefined) continue;
    const holds = rule.negate ? captures === null : captures !== null;
    if (!holds) continue;
    if (rule.kind === 'match') return expandTemplate(rule.result, captures ?? []);
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

/**
 * Split the `/pattern/flags` form at the start of `text`: the delimiter is the
 * first character (any non-alphanumeric, non-whitespace character —
 * regexp_table(5)); a backslash escapes the next character, including the
 * delimiter. Returns the pattern source (escapes kept), the flag letters, and
 * the rest of the line.
 */
export function splitDelimited(text: string, place: Place): { source: string; flags: string; rest: string; delimiter: string } {
  const delimiter = text[0];
  if (delimiter === undefined || /[A-Za-z0-9\s]/.test(delimiter)) {
    throw placeError(place, `pattern must start with a delimiter such as "/", found "${text.slice(0, 20)}"`);
  }
  let i = 1;
  for (; i < text.length; i++) {
    const c = text[i];
    if (c === '\\' && i + 1 < text.length) {
      i++;
      continue;
    }
    if (c === delimiter) break;
  }
  if (i >= text.length) throw placeError(place, `no closing regexp delimiter "${delimiter}"`);
  const source = text.slice(1, i);
  const flagMatch = /^[^\s]*/.exec(text.slice(i + 1))!;
  return { source, flags: flagMatch[0], rest: text.slice(i + 1 + flagMatch[0].length), delimiter };
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
}

/**
 * Read and parse a regexp:/pcre:/cidr: table from a file or an inline
 * `{ {rule}, ... }` name. ConfigError on a missing file or the first bad rule.
 */
export async function loadPatternRules(
  type: string,
  name: string,
  spec: string,
  options: OpenOptions,
  parse: PatternParser,
  ruleOptions: { readonly substitution: boolean },
): Promise<LoadedRules> {
  if (name.trimStart().startsWith('{')) {
    const lines = inlineRules(name, spec).map((text, n) => ({ text, line: n + 1 }));
    return { rules: parseRules(lines, spec, parse, ruleOptions), path: undefined, mtimeMs: 0 };
  }
  const path = isAbsolute(name) || !options.baseDir ? name : resolve(options.baseDir, name);
  let text: string;
  let mtimeMs: number;
  try {
    text = await readFile(path, 'utf8');
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (err) {
    throw new ConfigError(`open ${type} table ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (err as Error).message}`);
  }
  return { rules: parseRules(logicalLines(text, path), path, parse, ruleOptions), path, mtimeMs };
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

/**
 * Open a regexp:/pcre:-style table: read, parse every rule, and return a
 * LookupTable doing first-match evaluation.
 */
export async function openPatternFile(
  type: string,
  name: string,
  spec: string,
  options: OpenOptions,
  parse: PatternParser,
): Promise<LookupTable> {
  const { rules, path, mtimeMs } = await loadPatternRules(type, name, spec, options, parse, { substitution: true });
  return patternTable(type, name, spec, rules, path, mtimeMs);
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

