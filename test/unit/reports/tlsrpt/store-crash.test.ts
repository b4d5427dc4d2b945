/**
 * The TLS-RPT store survives SIGKILL: a child process records sessions in a
 * loop (compacting often); the test kills it at a random moment, three times
 * over the same directory, and checks that the counts recovered from disk are
 * exactly what the child acknowledged as written — none lost, none doubled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../../harness/cli.ts';
import { readPeriods } from '../../../../src/reports/tlsrpt/journal.ts';

const child = join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures', 'recorder-child.ts');

interface Run { acked: number; inFlight: number }

function runAndKill(dir: string, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    p.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!timer && out.includes('ready\n')) timer = setTimeout(() => p.kill('SIGKILL'), killAfterMs);
    });
    p.stderr.on('data', (c: Buffer) => (err += c.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited ${code}: ${err}`));
      let acked = 0;
      let inFlight = 0;
      for (const line of out.split('\n')) {
        const a = /^ack (\d+)$/.exec(line);
        const f = /^flushing (\d+)$/.exec(line);
        if (a) {
          acked = Number(a[1]);
          inFlight = 0;
        } else if (f) inFlight = Number(f[1]);
      }
      resolve({ acked, inFlight });
    });
  });
}

async function recovered(dir: string): Promise<{ sessions: number; success: number; failure: number }> {
  const periods = await readPeriods(dir);
  let success = 0;
  let failure = 0;
  for (const p of periods) for (const t of p.total.byPolicy.values()) {
    success += t.success;
    failure += t.failure;
    assert.equal([...t.details.values()].reduce((a, d) => a + d.count, 0), t.failure);
  }
  return { sessions: success + failure, success, failure };
}

test('SIGKILL while recording and compacting: recovered counts equal the acknowledged ones', { timeout: 120_000 }, async () => {
  const t = tempDir();
  try {
    let before = 0;
    for (const delay of [300 + Math.floor(Math.random() * 400), 150 + Math.floor(Math.random() * 300), 500]) {
      const run = await runAndKill(t.dir, delay);
      assert.ok(run.acked > 0, 'the child wrote something before it was killed');
      const got = await recovered(t.dir);
      const acknowledged = before + run.acked;
      // A batch whose write completed just before the kill, but whose "ack" line was not printed yet, is durable too.
      assert.ok(got.sessions === acknowledged || got.sessions === acknowledged + run.inFlight,
        `recovered ${got.sessions}, acknowledged ${acknowledged} (+${run.inFlight} in flight)`);
      before = got.sessions;
    }
  } finally {
    t.cleanup();
  }
});
