/**
 * main-cf.ts — parse and edit main.cf text, the Postfix way.
 *
 * Syntax (postconf(5) "Syntax of main.cf"): `name = value` with optional
 * whitespace around `=`; a line that starts with whitespace continues the
 * previous logical line; a line whose first non-blank character is `#` is a
 * comment, and comment and blank lines inside a logical line do not end it.
 * There are no trailing comments: `a = b # c` has the value `b # c`. When a
 * name appears twice the last one wins.
 *
 * Contract: parseMainCf() does no I/O; it returns entries with their line
 * numbers and warnings for ignored text, and throws ConfigError naming the file
 * and line for a line that is not `name = value` (Postfix's wording: `missing
 * '=' after attribute name`). editMainCf() rewrites the text for postconf -e,
 * -X and -#: matching logical lines are replaced, removed or commented out in
 * place, everything else (comments, order, blank lines) is kept byte for byte,
 * and new names are appended at the end.
 *
 * Not here: reading the file (load.ts), $name expansion (expand.ts), the
 * parameter registry (params.ts).
 */
import { ConfigError } from '../lib/errors.ts';

export interface MainCfEntry {
  readonly name: string;
  /** The value with continuation lines joined by one space, trimmed. */
  readonly value: string;
  /** 1-based line of the `name = value` line. */
  readonly line: number;
  /** 1-based physical lines that make up the logical line (first + continuations). */
  readonly lines: readonly number[];
}

export interface MainCfParse {
  /** Every entry in file order, duplicates included. */
  readonly entries: readonly MainCfEntry[];
  /** One-line warnings (file and line included) for text that was ignored. */
  readonly warnings: readonly string[];
}

interface LogicalLine {
  text: string;
  lines: number[];
}

/** Split text into physical lines (a final newline does not start a new line; CR before LF dropped). */
function physicalLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

function isBlankOrComment(line: string): boolean {
  const t = line.trimStart();
  return t === '' || t.startsWith('#');
}

/** Group physical lines into logical lines (readllines(3) semantics). */
function logicalLines(lines: readonly string[], file: string, warnings: string[]): LogicalLine[] {
  const out: LogicalLine[] = [];
  let current: LogicalLine | undefined;
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (isBlankOrComment(line)) return;
    if (/^\s/.test(line)) {
      if (current) {
        current.text += ' ' + line.trim();
        current.lines.push(lineNo);
      } else {
        // readllines(3): text before the first logical line is ignored with this warning.
        warnings.push(`${file}, line ${lineNo}: logical line must not start with whitespace: "${line}"`);
      }
      return;
    }
    current = { text: line.trimEnd(), lines: [lineNo] };
    out.push(current);
  });
  return out;
}

/**
 * split_nameval(3): `name = value`. Returns the error text Postfix uses, or the pair.
 */
export function splitNameValue(text: string): { name: string; value: string } | { error: string } {
  const s = text.trimStart();
  const m = /^[^\s=]*/.exec(s)!;
  const name = m[0];
  const rest = s.slice(name.length).trimStart();
  if (name === '') return { error: `missing attribute name: "${text}"` };
  if (!rest.startsWith('=')) return { error: `missing '=' after attribute name: "${text}"` };
  return { name, value: rest.slice(1).trim() };
}

/** Parse main.cf text. `file` is used in messages only. */
export function parseMainCf(text: string, file: string): MainCfParse {
  const warnings: string[] = [];
  const entries: MainCfEntry[] = [];
  for (const logical of logicalLines(physicalLines(text), file, warnings)) {
    const r = splitNameValue(logical.text);
    // postconf(5): every logical line is `name = value`; Postfix stops with a fatal error otherwise.
    if ('error' in r) throw new ConfigError(r.error, file, logical.lines[0]);
    entries.push({ name: r.name, value: r.value, line: logical.lines[0]!, lines: logical.lines });
  }
  return { entries, warnings };
}

/** One postconf edit: set (-e), remove (-X) or comment out (-#). */
export type MainCfEdit =
  | { readonly op: 'set'; readonly name: string; readonly value: string }
  | { readonly op: 'remove'; readonly name: string }
  | { readonly op: 'comment'; readonly name: string };

export interface MainCfEditResult {
  readonly text: string;
  /** Names that had more than one entry (Postfix warns `multiple entries for "name"`). */
  readonly duplicates: readonly string[];
}

/**
 * Apply edits to main.cf text. Every logical line of an edited name is changed
 * (Postfix replaces all of them); interleaved comment and blank lines stay.
 */
export function editMainCf(text: string, edits: readonly MainCfEdit[], file: string): MainCfEditResult {
  const lines = physicalLines(text);
  const { entries } = parseMainCf(text, file);
  const byName = new Map<string, MainCfEdit>();
  // postconf(1): a later request for the same name replaces the earlier one (and goes last).
  for (const e of edits) {
    byName.delete(e.name);
    byName.set(e.name, e);
  }
  const counts = new Map<string, number>();
  const replace = new Map<number, string[]>();
  for (const entry of entries) {
    const edit = byName.get(entry.name);
    if (!edit) continue;
    counts.set(entry.name, (counts.get(entry.name) ?? 0) + 1);
    entry.lines.forEach((ln, i) => {
      if (edit.op === 'comment') replace.set(ln, [`#${lines[ln - 1]}`]);
      else if (edit.op === 'set' && i === 0) replace.set(ln, [`${edit.name} = ${edit.value}`]);
      else replace.set(ln, []);
    });
  }
  const out: string[] = [];
  lines.forEach((line, idx) => {
    const r = replace.get(idx + 1);
    if (r) out.push(...r);
    else out.push(line);
  });
  for (const e of byName.values()) {
    // postconf(1) -e: a name that main.cf does not have yet is appended at the end.
    if (e.op === 'set' && !counts.has(e.name)) out.push(`${e.name} = ${e.value}`);
  }
  const duplicates = [...counts].filter(([, n]) => n > 1).map(([name]) => name);
  return { text: out.length === 0 ? '' : out.join('\n') + '\n', duplicates };
}
