import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../harness/cli.ts';
import { createSpool } from '../../../src/queue/spool.ts';

const CHILD = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url));

/** Run the writer until it has reported a few IDs, then SIGKILL it after a random delay. */
function runAndKill(dir: string, long: boolean): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dir, long ? 'long' : 'short'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let armed = false;
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (!armed && out.split('\n').length > 3) {
        armed = true;
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 25));
      }
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`writer exited without being killed: ${stderr}`));
      // Only complete lines were reported as written; a partial last line was not.
      const lines = out.split('\n');
      lines.pop();
      resolve(lines);
    });
  });
}

test('SIGKILL at random moments never loses or truncates a reported message', { timeout: 60_000 }, async () => {
  const { dir, cleanup } = tempDir();
  try {
    const rounds = 5;
    const workers = 4; // 20 kills in all, four at a time
    const reported: string[][] = Array.from({ length: workers }, () => []);
    for (let round = 0; round < rounds; round++) {
      const ids = await Promise.all(Array.from({ length: workers }, (_, w) => runAndKill(join(dir, `s${w}`), w % 2 === 1)));
      ids.forEach((l, w) => reported[w]!.push(...l));
      // After each kill, every reported ID is complete and parses.
      for (let w = 0; w < workers; w++) {
        const spool = await createSpool(join(dir, `s${w}`));
        for (const id of ids[w]!) {
          const { envelope, content } = await spool.readMessage('incoming', id);
          assert.equal(envelope.recipients.length, 2);
          assert.equal(content.length, 'Subject: crash test\n\n'.length + 2001);
        }
      }
    }
    for (let w = 0; w < workers; w++) {
      const spool = await createSpool(join(dir, `s${w}`));
      await spool.recover();
      const corrupt: string[] = [];
      const seen = new Set<string>();
      await spool.scan({ onCorrupt: (f) => corrupt.push(`${f.id}: ${f.error}`), onMessage: (e) => seen.add(e.id) });
      assert.deepEqual(corrupt, []);
      for (const id of reported[w]!) assert.ok(seen.has(id), `reported ${id} is in the queue`);
      // recover() removed every temporary file.
      assert.deepEqual(readdirSync(join(dir, `s${w}`, 'incoming')).filter((n) => n.startsWith('tmp.')), []);
      assert.ok(reported[w]!.length >= rounds * 3);
    }
  } finally {
    cleanup();
  }
});
