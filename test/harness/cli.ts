/**
 * cli.ts (test harness) — run sealpost commands in-process with captured
 * standard streams, and run Debian's Postfix tools for differential tests.
 */
import { PassThrough, Readable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/sealpost.ts';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** Run `sealpost <args>` (or, with argv0, the binary under another name) in this process. */
export async function sealpost(
  args: readonly string[],
  opts: { stdin?: string; env?: Record<string, string | undefined>; argv0?: string } = {},
): Promise<RunResult> {
  const out = collect();
  const err = collect();
  const stdin = Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]);
  const env = opts.env ?? { PATH: process.env.PATH };
  const code = await run(opts.argv0 ?? 'sealpost', args, { stdout: out.stream, stderr: err.stream, stdin, env });
  await new Promise((r) => setImmediate(r));
  return { code, stdout: out.text(), stderr: err.text() };
}

const POSTFIX_SBIN = '/usr/sbin';

/** Path of a Postfix tool from Debian's package; throws a clear message when missing. */
export function postfixTool(name: string): string {
  const p = join(POSTFIX_SBIN, name);
  if (!existsSync(p)) {
    throw new Error(`${p} is missing: differential tests need Debian's postfix, postfix-cdb and postfix-pcre (.ci/run installs them)`);
  }
  return p;
}

/** Run a real Postfix tool synchronously. */
export function postfix(name: string, args: readonly string[], opts: { stdin?: string; cwd?: string } = {}): RunResult {
  const r = spawnSync(postfixTool(name), args, {
    input: opts.stdin ?? '',
    cwd: opts.cwd,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A fresh temporary directory, removed by the returned cleanup function. */
export function tempDir(prefix = 'sealpost-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
