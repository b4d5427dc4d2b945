/**
 * getopt.ts — POSIX getopt(3) with Postfix's option strings ("c:d:fFiNnq:rsvw").
 *
 * Contract: options may be clustered (`-fq key`), an option argument may be
 * attached (`-qkey`) or separate (`-q key`), `--` ends options, and parsing stops
 * at the first non-option (POSIX order, as Postfix's tools do). Repeated options
 * are kept in order. An unknown option or a missing argument throws UsageError
 * with the program's usage line, and getopt(3)'s complaint as the line printed
 * before it (`prog: invalid option -- 'z'`, then `prog: fatal: usage: ...`).
 */
import { UsageError } from '../lib/errors.ts';

export interface ParsedOptions {
  /** Options in the order given: [flag, argument-or-undefined]. */
  readonly list: ReadonlyArray<readonly [string, string | undefined]>;
  /** Operands after the options. */
  readonly rest: string[];
  has(flag: string): boolean;
  /** Last argument given for `flag`. */
  value(flag: string): string | undefined;
  /** Every argument given for `flag`, in order. */
  values(flag: string): string[];
  count(flag: string): number;
}

export function getopt(argv: readonly string[], optstring: string, usage: string): ParsedOptions {
  const takesArg = new Map<string, boolean>();
  for (let i = 0; i < optstring.length; i++) {
    const ch = optstring[i]!;
    if (ch === ':') continue;
    takesArg.set(ch, optstring[i + 1] === ':');
  }
  const list: Array<readonly [string, string | undefined]> = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (arg.length < 2 || arg[0] !== '-') break;
    for (let j = 1; j < arg.length; j++) {
      const flag = arg[j]!;
      const needs = takesArg.get(flag);
      if (needs === undefined) throw new UsageError(usage, `invalid option -- '${flag}'`);
      if (!needs) {
        list.push([flag, undefined]);
        continue;
      }
      let value: string;
      if (j + 1 < arg.length) value = arg.slice(j + 1);
      else if (i + 1 < argv.length) value = argv[++i]!;
      else throw new UsageError(usage, `option requires an argument -- '${flag}'`);
      list.push([flag, value]);
      break;
    }
  }
  const rest = argv.slice(i);
  return {
    list,
    rest,
    has: (f) => list.some(([g]) => g === f),
    value: (f) => {
      let v: string | undefined;
      for (const [g, a] of list) if (g === f) v = a;
      return v;
    },
    values: (f) => list.filter(([g]) => g === f).map(([, a]) => a ?? ''),
    count: (f) => list.filter(([g]) => g === f).length,
  };
}
