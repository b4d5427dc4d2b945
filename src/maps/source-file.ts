/**
 * source-file.ts — the postmap(1) source-file syntax ("key whitespace value"),
 * as a pure parser: text in, entries and problems out, in file order.
 *
 * Contract (postmap(1) "INPUT FILE FORMAT", checked against Postfix 3.7):
 * - Logical lines (Postfix readllines()): empty lines, whitespace-only lines
 *   and lines whose first non-whitespace character is `#` are dropped; a line
 *   that starts with whitespace continues the logical line (its text is
 *   appended as is, leading whitespace included, the newline dropped); a
 *   comment line does not end a logical line. A logical line that starts with
 *   whitespace (continuation text before any key) is reported and skipped.
 *   Line numbers are those of the first physical line of the logical line.
 * - The key ends at the first whitespace outside double quotes (`\` escapes
 *   the next character). The key is kept in its quoted form, quotes included,
 *   exactly as Postfix's postmap does ("Leave the key in quoted form").
 * - Unbalanced quotes, a missing key or value are reported and the line is
 *   skipped; a key that ends in `:` is reported but kept (alias-file hint).
 * - Whitespace is C's isspace(): space, \t, \n, \v, \f, \r (so CRLF input
 *   works: the \r is trailing whitespace).
 *
 * Not here: case folding and duplicate handling (they depend on the table:
 * see foldKey() and the writers), `-F` file reading (postmap.ts), file I/O.
 */

/** One `key value` entry and the line where its logical line starts. */
export interface SourceEntry {
  readonly kind: 'entry';
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

export type SourceProblemKind = 'leading-whitespace' | 'unbalanced-quote' | 'no-value' | 'alias-format';

/** Something postmap warns about; `text` is the logical line. */
export interface SourceProblem {
  readonly kind: SourceProblemKind;
  readonly line: number;
  readonly text: string;
}

export type SourceItem = SourceEntry | (SourceProblem & { readonly kind: SourceProblemKind });

/** A logical line and the number of its first physical line. */
export interface LogicalLine {
  readonly text: string;
  readonly line: number;
}

/** C isspace() in the C locale. */
export function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\v' || ch === '\f';
}

function isBlankOrComment(line: string): boolean {
  let i = 0;
  while (i < line.length && isSpace(line[i])) i++;
  return i === line.length || line[i] === '#';
}

/**
 * Split text into logical lines (Postfix readllines()).
 * Logical lines that start with whitespace are returned too, so the caller
 * can warn ("logical line must not start with whitespace").
 */
export function logicalLines(text: string): LogicalLine[] {
  const physical = text.split('\n');
  // A final newline does not start another (empty) line.
  if (physical.length > 0 && physical[physical.length - 1] === '') physical.pop();
  const out: LogicalLine[] = [];
  let current: string | undefined;
  let start = 0;
  for (let i = 0; i < physical.length; i++) {
    const line = physical[i]!;
    // readlline(3): comment and blank lines are ignored, even inside a logical line.
    if (isBlankOrComment(line)) continue;
    if (current !== undefined && isSpace(line[0])) {
      current += line;
      continue;
    }
    if (current !== undefined) out.push({ text: current, line: start });
    current = line;
    start = i + 1;
  }
  if (current !== undefined) out.push({ text: current, line: start });
  return out;
}

/** Where the key ends: index of the first unquoted whitespace, or -1 for unbalanced quotes. */
function keyEnd(text: string): number {
  let inQuotes = false;
  let i = 0;
  for (; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\\') {
      i++;
      if (i >= text.length) break;
    } else if (isSpace(ch)) {
      if (!inQuotes) break;
    } else if (ch === '"') {
      inQuotes = !inQuotes;
    }
  }
  return inQuotes ? -1 : Math.min(i, text.length);
}

/** Trim trailing C whitespace. */
export function trimEnd(s: string): string {
  let e = s.length;
  while (e > 0 && isSpace(s[e - 1])) e--;
  return s.slice(0, e);
}

function trimStart(s: string): string {
  let b = 0;
  while (b < s.length && isSpace(s[b])) b++;
  return s.slice(b);
}

/** Parse one logical line into an entry or problems (postmap.c). */
export function parseLogicalLine(l: LogicalLine): SourceItem[] {
  // readlline(3): "logical line must not start with whitespace".
  if (isSpace(l.text[0])) return [{ kind: 'leading-whitespace', line: l.line, text: l.text }];
  const end = keyEnd(l.text);
  // postmap(1): quoted keys need balanced double quotes.
  if (end < 0) return [{ kind: 'unbalanced-quote', line: l.line, text: l.text }];
  const key = l.text.slice(0, end);
  const value = trimEnd(trimStart(l.text.slice(end)));
  // postmap(1): "key whitespace value" — a missing value is skipped with a warning.
  if (key === '' || value === '') return [{ kind: 'no-value', line: l.line, text: l.text }];
  const items: SourceItem[] = [];
  if (key.endsWith(':')) items.push({ kind: 'alias-format', line: l.line, text: l.text });
  items.push({ kind: 'entry', key, value, line: l.line });
  return items;
}

/** Parse a whole postmap source text. Items come in file order. */
export function parseSource(text: string): SourceItem[] {
  const items: SourceItem[] = [];
  for (const l of logicalLines(text)) items.push(...parseLogicalLine(l));
  return items;
}

/** Lowercase ASCII letters only, as Postfix's lowercase() in the C locale. */
export function foldKey(key: string): string {
  // Fast path: nothing to fold.
  if (!/[A-Z]/.test(key)) return key;
  return key.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** Which Postfix program's wording to use: postmap (building) or dict_thash (texthash:). */
export type Flavor = 'postmap' | 'texthash';

/**
 * The warning text Postfix prints for a problem, without the `prog: warning: ` prefix.
 * `file` is the source name as given on the command line (or `stdin` for -i).
 */
export function problemMessage(file: string, p: SourceProblem, flavor: Flavor = 'postmap'): string {
  switch (p.kind) {
    case 'leading-whitespace': {
      // readlline.c: %.30s plus "..." when longer.
      const shown = p.text.length > 30 ? `${p.text.slice(0, 30)}...` : p.text;
      return `${file}: logical line must not start with whitespace: "${shown}"`;
    }
    case 'unbalanced-quote':
      return `${file}, line ${p.line}: unbalanced '"' in '${p.text}' -- ignoring this line`;
    case 'no-value':
      return `${file}, line ${p.line}: expected format: key whitespace value${flavor === 'texthash' ? ' -- ignoring this line' : ''}`;
    case 'alias-format':
      return `${file}, line ${p.line}: record is in "key: value" format; is this an alias file?`;
  }
}
