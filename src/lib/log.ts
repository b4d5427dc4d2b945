/**
 * log.ts — the tiny logging surface CLI commands use for warnings and fatals,
 * in Postfix's shape: `sealpost/postmap: warning: ...`, `sealpost/postconf: fatal: ...`.
 *
 * Contract: commands print to stderr through a `Reporter`, so tests can capture
 * it. The daemon's maillog (with timestamps, host and pid) lives elsewhere.
 */
export interface Reporter {
  warn(message: string): void;
  info(message: string): void;
}

export function stderrReporter(prog: string): Reporter {
  return {
    warn: (m) => process.stderr.write(`${prog}: warning: ${m}\n`),
    info: (m) => process.stderr.write(`${prog}: ${m}\n`),
  };
}

/** A reporter that records lines (for tests and for `reload` checks). */
export function memoryReporter(): Reporter & { readonly lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    warn: (m) => lines.push(`warning: ${m}`),
    info: (m) => lines.push(m),
  };
}
