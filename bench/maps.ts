/**
 * maps.ts — lookup-table figures: lookups/s on 100k-entry `hash:` and `cdb:`
 * tables (random existing and missing keys), and the wall time of building
 * 1M entries with `sealpost postmap hash:` / `cdb:` (the real CLI, via
 * `node bin/sealpost.js`, so `npm run build` must have run) next to Postfix's
 * own `postmap cdb:` on the same file.
 *
 * Contract: one printed line per figure; temp files removed at the end;
 * finishes in well under a couple of minutes.
 *
 * Not here: pass/fail thresholds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openTable } from '../src/maps/registry.ts';
import { CdbBuilder, writeCdbFile } from '../src/maps/cdb.ts';
import { encodeIndexed, writeIndexedFile } from '../src/maps/indexed.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SMALL = 100_000;
const BIG = 1_000_000;
const LOOKUPS = 200_000;

function line(label: string, value: string): void {
  process.stdout.write(`${label.padEnd(52)} ${value}\n`);
}

function sourceText(n: number): string {
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`host${i}.example.com encrypt match=mx${i % 97}.example.net\n`);
  return parts.join('');
}

/** Random keys: half existing, half missing (deterministic LCG). */
function keys(n: number, count: number): { hit: string[]; miss: string[] } {
  let x = 12345;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const hit: string[] = [];
  const miss: string[] = [];
  for (let i = 0; i < count; i++) {
    hit.push(`host${next() % n}.example.com`);
    miss.push(`nohost${next() % n}.example.org`);
  }
  return { hit, miss };
}

async function lookupsPerSecond(spec: string, list: readonly string[], expectFound: boolean): Promise<number> {
  const table = await openTable(spec);
  const t0 = process.hrtime.bigint();
  for (const k of list) {
    const r = await table.lookup(k);
    if ((r.kind === 'found') !== expectFound) throw new Error(`${spec}: unexpected ${r.kind} for ${k}`);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await table.close();
  return list.length / secs;
}

function timed(cmd: string, args: readonly string[]): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { PATH: process.env.PATH, LANG: 'C' } });
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.trim()}`);
  return secs;
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

export async function bench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sealpost-bench-'));
  try {
    // 100k-entry tables, built in-process.
    const small = join(dir, 'small');
    const entries: Array<[string, string]> = [];
    for (let i = 0; i < SMALL; i++) entries.push([`host${i}.example.com`, `encrypt match=mx${i % 97}.example.net`]);
    writeIndexedFile('hash', small, encodeIndexed(entries, false));
    const cb = new CdbBuilder();
    for (const [k, v] of entries) cb.put(Buffer.from(k), Buffer.from(v));
    writeCdbFile(`${small}.cdb`, cb.finish());
    const { hit, miss } = keys(SMALL, LOOKUPS);
    for (const type of ['hash', 'cdb']) {
      line(`${type}: lookups/s, 100k entries, existing keys`, fmt(await lookupsPerSecond(`${type}:${small}`, hit, true)));
      line(`${type}: lookups/s, 100k entries, missing keys`, fmt(await lookupsPerSecond(`${type}:${small}`, miss, false)));
    }

    // 1M-entry builds with the real CLI.
    const big = join(dir, 'big');
    writeFileSync(big, sourceText(BIG));
    writeFileSync(join(dir, 'main.cf'), '');
    // Postfix waits while main.cf or the source is younger than a second: date them back.
    const past = new Date(Date.now() - 10_000);
    utimesSync(join(dir, 'main.cf'), past, past);
    utimesSync(big, past, past);
    const cli = join(ROOT, 'bin', 'sealpost.js');
    if (!existsSync(join(ROOT, 'dist', 'cli', 'sealpost.js'))) throw new Error('dist/ is missing: run "npm run build" first (npm run bench does)');
    for (const type of ['hash', 'cdb']) {
      const secs = timed(process.execPath, [cli, 'postmap', '-c', dir, `${type}:${big}`]);
      line(`sealpost postmap ${type}: 1M entries, wall time`, `${secs.toFixed(2)} s`);
    }
    const postmap = '/usr/sbin/postmap';
    if (existsSync(postmap)) {
      const secs = timed(postmap, ['-c', dir, `cdb:${big}`]);
      line('Postfix postmap cdb: 1M entries, wall time', `${secs.toFixed(2)} s`);
    } else {
      line('Postfix postmap cdb: 1M entries, wall time', 'skipped (/usr/sbin/postmap not installed)');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
