/**
 * expand.ts — Postfix's mac_expand(3): `$name` expansion in parameter values.
 *
 * Forms (postconf(5) "$name expansion"):
 *   $name  ${name}  $(name)                 the value of name ('' when undefined)
 *   ${name?value}  ${name?{value}}          value when name is non-empty, else ''
 *   ${name:value}  ${name:{value}}          value when name is empty/undefined, else ''
 *   ${name?{then}:{else}}                   one or the other
 *   ${name{text}}                           a named function applied to the expanded
 *                                           text (mac_expand_add_named_fn); the one
 *                                           Postfix registers for main.cf is
 *                                           domain_to_ascii (≥ 3.11: the A-label form
 *                                           of an internationalized domain name)
 *   ${{lhs} op {rhs} ? {then} : {else}}     Postfix ≥ 3.5 relational form; op is one of
 *                                           == != < <= > >= (numeric when both sides are
 *                                           integers, else byte-wise) or <level <=level
 *                                           >level >=level (compatibility levels, 3.6 < 3.11)
 *   $$                                      a literal '$'
 * Expansion is recursive: a looked-up value, and the text chosen by a condition,
 * are expanded again; nesting deeper than 100 is a loop ("unreasonable macro call
 * nesting", Postfix's text).
 *
 * Contract: pure — names are resolved through the `lookup` callback. Syntax
 * errors and loops throw ExpandError whose message is Postfix's wording; callers
 * (load.ts) wrap it with the file, line and parameter. `scan` mode walks every
 * branch (as postconf does to find references) and reports each `$name` seen.
 *
 * Not here: where values come from (load.ts), warnings about undefined names.
 */

import { domainToASCII } from 'node:url';

/** A malformed reference or a loop. The message is Postfix's text. */
export class ExpandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExpandError';
  }
}

export interface ExpandOptions {
  /** Value of a parameter, or undefined when it is not defined at all. */
  lookup(name: string): string | undefined;
  /** Called for every name referenced (in scan mode: in every branch). */
  onReference?(name: string): void;
  /** Walk every branch without choosing; the result is meaningless. */
  scan?: boolean;
  /** Expand looked-up values recursively (default true; postconf -x needs it). */
  recurse?: boolean;
}

// mac_expand: nesting limit; beyond it Postfix reports "unreasonable macro call nesting".
const MAX_DEPTH = 100;
const NAME_CHAR = /[A-Za-z0-9_]/;

/** Expand `text` fully. Throws ExpandError on bad syntax or a loop. */
export function expand(text: string, opts: ExpandOptions): string {
  return expandAt(text, opts, 0, undefined);
}

/** Collect every `$name` referenced by `text` in any branch (no values needed). */
export function references(text: string): string[] {
  const seen: string[] = [];
  expand(text, { lookup: () => undefined, scan: true, recurse: false, onReference: (n) => seen.push(n) });
  return seen;
}

function expandAt(text: string, opts: ExpandOptions, depth: number, via: string | undefined): string {
  if (depth > MAX_DEPTH) throw new ExpandError(`unreasonable macro call nesting: "${via ?? ''}"`);
  let out = '';
  let i = 0;
  while (i < text.length) {
    const dollar = text.indexOf('$', i);
    if (dollar < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, dollar);
    const next = text[dollar + 1];
    if (next === '$') {
      out += '$';
      i = dollar + 2;
    } else if (next === '{' || next === '(') {
      const close = matchClose(text, dollar + 1);
      if (close < 0) throw new ExpandError(`truncated macro reference: "${text}"`);
      out += expandBraced(text.slice(dollar + 2, close), text, opts, depth);
      i = close + 1;
    } else {
      let j = dollar + 1;
      while (j < text.length && NAME_CHAR.test(text[j]!)) j++;
      if (j === dollar + 1) throw new ExpandError(`empty macro name: "${text}"`);
      out += valueOf(text.slice(dollar + 1, j), opts, depth);
      i = j;
    }
  }
  return out;
}

/** Index of the bracket closing the one at `open` (same kind, nested), or -1. */
function matchClose(text: string, open: number): number {
  const o = text[open]!;
  const c = o === '{' ? '}' : ')';
  let level = 0;
  for (let k = open; k < text.length; k++) {
    if (text[k] === o) level++;
    else if (text[k] === c && --level === 0) return k;
  }
  return -1;
}

function valueOf(name: string, opts: ExpandOptions, depth: number): string {
  opts.onReference?.(name);
  const v = opts.lookup(name);
  if (v === undefined || opts.recurse === false) return v ?? '';
  return expandAt(v, opts, depth + 1, name);
}

/** The inside of `${...}` / `$(...)`: a name, a conditional, or a relational expression. */
function expandBraced(inner: string, whole: string, opts: ExpandOptions, depth: number): string {
  const lead = inner.length - inner.trimStart().length;
  if (inner[lead] === '{') return expandRelational(inner, lead, opts, depth);
  let j = lead;
  while (j < inner.length && NAME_CHAR.test(inner[j]!)) j++;
  const name = inner.slice(lead, j);
  let k = skipSpace(inner, j);
  if (name === '') throw new ExpandError(`empty macro name: "${whole}"`);
  if (k >= inner.length) return valueOf(name, opts, depth);
  if (inner[j] === '{') return namedFunction(name, inner, j, whole, opts, depth);
  const op = inner[k]!;
  if (op !== '?' && op !== ':') throw new ExpandError(`attribute name syntax error at: "...${inner.slice(0, j)}>>>${inner.slice(j)}"`);
  opts.onReference?.(name);
  const raw = opts.lookup(name);
  const value = raw === undefined ? '' : opts.recurse === false ? raw : expandAt(raw, opts, depth + 1, name);
  const { then, otherwise } = parseBranches(inner, k + 1, op);
  const takeThen = op === '?' ? value !== '' : value === '';
  if (opts.scan) {
    expandAt(then, opts, depth + 1, name);
    if (otherwise !== undefined) expandAt(otherwise, opts, depth + 1, name);
    return '';
  }
  // postconf(5): ${name?value} gives value when $name is non-empty; ${name:value} when it is empty.
  if (takeThen) return expandAt(then, opts, depth + 1, name);
  return otherwise === undefined ? '' : expandAt(otherwise, opts, depth + 1, name);
}

/** Named functions (Postfix mac_expand_add_named_fn); the input is the expanded text. */
const NAMED_FUNCTIONS: Readonly<Record<string, (text: string) => string>> = {
  // An IDN's A-label form; ASCII text is returned unchanged, text that is no domain as given.
  domain_to_ascii: (text) => (/^[\x00-\x7f]*$/.test(text) ? text : domainToASCII(text) || text),
};

/** `${name{text}}`: apply a named function to the expanded `{text}`. */
function namedFunction(name: string, inner: string, at: number, whole: string, opts: ExpandOptions, depth: number): string {
  const group = readGroup(inner, at);
  if (skipSpace(inner, group.end) < inner.length) {
    throw new ExpandError(`unexpected input at: "...${inner.slice(0, group.end)}>>>${inner.slice(group.end)}"`);
  }
  const fn = NAMED_FUNCTIONS[name];
  if (!fn) throw new ExpandError(`unknown function "${name}" at: "${whole}"`);
  const arg = expandAt(group.text, opts, depth + 1, name);
  return opts.scan ? '' : fn(arg);
}

/** After `?` or `:`: `text`, `{text}`, or (after `?`) `{then}:{else}`. */
function parseBranches(inner: string, from: number, op: string): { then: string; otherwise?: string } {
  const k = skipSpace(inner, from);
  if (inner[k] !== '{') return { then: inner.slice(from) };
  const first = readGroup(inner, k);
  let m = skipSpace(inner, first.end);
  if (m >= inner.length) return { then: first.text };
  if (op === ':') throw new ExpandError(`unexpected input at: "...${inner.slice(0, first.end)}>>>${inner.slice(m)}"`);
  if (inner[m] !== ':') throw new ExpandError(`":" expected at: "...${inner.slice(0, first.end)}>>>${inner.slice(m)}"`);
  m = skipSpace(inner, m + 1);
  if (inner[m] !== '{') return { then: first.text, otherwise: inner.slice(m) };
  const second = readGroup(inner, m);
  const rest = skipSpace(inner, second.end);
  if (rest < inner.length) throw new ExpandError(`unexpected input at: "...${inner.slice(0, second.end)}>>>${inner.slice(rest)}"`);
  return { then: first.text, otherwise: second.text };
}

/** `{...}` starting at `at`: its inside (not trimmed) and the index after it. */
function readGroup(s: string, at: number): { text: string; end: number } {
  let level = 0;
  for (let k = at; k < s.length; k++) {
    if (s[k] === '{') level++;
    else if (s[k] === '}' && --level === 0) return { text: s.slice(at + 1, k), end: k + 1 };
  }
  throw new ExpandError(`unbalanced {} in attribute expression: "${s.slice(at)}"`);
}

function skipSpace(s: string, k: number): number {
  while (k < s.length && /\s/.test(s[k]!)) k++;
  return k;
}

const RELOPS = ['<=level', '>=level', '<level', '>level', '==', '!=', '<=', '>=', '<', '>'] as const;
type RelOp = (typeof RELOPS)[number];

/** `{lhs} op {rhs} [? {then} [: {else}]]` — without `?` the result is "true" or "". */
function expandRelational(inner: string, at: number, opts: ExpandOptions, depth: number): string {
  const lhs = readGroup(inner, at);
  let k = skipSpace(inner, lhs.end);
  const op = RELOPS.find((o) => inner.startsWith(o, k));
  if (!op) {
    throw new ExpandError(`"==" or "!="" or "<"" or "<="" or ">="" or ">" expected at: "...${inner.slice(0, lhs.end)}>>>${inner.slice(k)}"`);
  }
  k = skipSpace(inner, k + op.length);
  if (inner[k] !== '{') throw new ExpandError(`"{expression}" expected at: "...${inner.slice(0, k).trimEnd()}>>>${inner.slice(k)}"`);
  const rhs = readGroup(inner, k);
  const a = expandAt(lhs.text, opts, depth + 1, undefined);
  const b = expandAt(rhs.text, opts, depth + 1, undefined);
  // In scan mode only literal operands are checked (a level like "x" is an error either way).
  const literal = !lhs.text.includes('$') && !rhs.text.includes('$');
  const truth = opts.scan && !literal ? true : compare(a, op, b);
  k = skipSpace(inner, rhs.end);
  if (k >= inner.length) return truth ? 'true' : '';
  if (inner[k] !== '?') throw new ExpandError(`"?" expected at: "...${inner.slice(0, rhs.end)}>>>${inner.slice(k)}"`);
  const { then, otherwise } = parseBranches(inner, k + 1, '?');
  if (opts.scan) {
    expandAt(then, opts, depth + 1, undefined);
    if (otherwise !== undefined) expandAt(otherwise, opts, depth + 1, undefined);
    return '';
  }
  if (truth) return expandAt(then, opts, depth + 1, undefined);
  return otherwise === undefined ? '' : expandAt(otherwise, opts, depth + 1, undefined);
}

const INTEGER = /^[-+]?\d+$/;

function compare(a: string, op: RelOp, b: string): boolean {
  if (op.endsWith('level')) {
    const c = compareLevels(a, b);
    const base = op.slice(0, -'level'.length);
    return base === '<' ? c < 0 : base === '<=' ? c <= 0 : base === '>' ? c > 0 : c >= 0;
  }
  // mac_expand: numeric comparison when both operands are integers, else strcmp().
  const c = INTEGER.test(a) && INTEGER.test(b) ? Math.sign(Number(a) - Number(b)) : a < b ? -1 : a > b ? 1 : 0;
  switch (op) {
    case '==':
      return c === 0;
    case '!=':
      return c !== 0;
    case '<':
      return c < 0;
    case '<=':
      return c <= 0;
    case '>':
      return c > 0;
    default:
      return c >= 0;
  }
}

const LEVEL = /^\d+(\.\d+){0,2}$/;

/** Compatibility levels: major[.minor[.patch]] compared field by field ("3.6" < "3.11"). */
export function compareLevels(a: string, b: string): number {
  for (const x of [a, b]) if (!LEVEL.test(x)) throw new ExpandError(`malformed compatibility level syntax: "${x}"`);
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}
