/**
 * progress.test.ts — lib/progress.ts on a fake terminal, then the commands
 * that use it under a real pseudo-terminal (`script` from util-linux): postmap
 * of a big table, postsuper -d ALL and mailq with its listing in a file show
 * progress on the terminal; the same commands with their output in pipes show none.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { progress } from '../../../src/lib/progress.ts';
import { createSpool } from '../../../src/queue/spool.ts';
import { tempDir } from '../../harness/cli.ts';

function fakeTty(isTTY: boolean): { isTTY: boolean; out: string[]; write: (s: string) => boolean } {
  const out: string[] = [];
  return { isTTY, out, write: (s: string) => (out.push(s), true) };
}

test('progress draws on a terminal only, not before the delay, at most once per interval, and erases its line', () => {
  let now = 0;
  const tty = fakeTty(true);
  const p = progress(tty, { label: 'postmap hash:big', unit: 'lines', total: 1000, delayMs: 300, intervalMs: 100, now: () => now });
  p.tick(256); // before the delay
  assert.deepEqual(tty.out, []);
  now = 350;
  p.tick(256);
  now = 400; // within the interval
  p.tick(2);
  now = 500;
  p.tick(230);
  p.done();
  assert.deepEqual(tty.out, ['\r\x1b[Kpostmap hash:big: 512 of 1,000 (51%) lines', '\r\x1b[Kpostmap hash:big: 744 of 1,000 (74%) lines', '\r\x1b[K']);
  const pipe = fakeTty(false);
  let totalAsked = false;
  const q = progress(pipe, { label: 'x', unit: 'lines', total: () => ((totalAsked = true), 1), delayMs: 0, intervalMs: 0, now: () => (now += 1000) });
  for (let i = 0; i < 1000; i++) q.tick();
  q.done();
  assert.deepEqual(pipe.out, []);
  assert.equal(totalAsked, false, 'the total is not even computed off a terminal');
});

const RUN = `import('${join(process.cwd(), 'src/cli/sealpost.ts')}').then(async (m) => { process.exitCode = await m.run('sealpost', process.argv.slice(1)); })`;

/** Run a sealpost command line in a shell, under a pseudo-terminal or not. */
function shell(cmdline: string, pty: boolean): { out: string; code: number } {
  const env = { ...process.env, SEALPOST_PROGRESS_DELAY_MS: '0' };
  if (!pty) {
    const r = spawnSync('/bin/sh', ['-c', cmdline], { env, encoding: 'utf8' });
    return { out: r.stdout + r.stderr, code: r.status ?? -1 };
  }
  const r = spawnSync('script', ['-qfec', cmdline, '/dev/null'], { env, encoding: 'utf8' });
  return { out: r.stdout, code: r.status ?? -1 };
}

function sp(args: string): string {
  return `${process.execPath} --import tsx -e "${RUN}" ${args}`;
}

test('postmap, postsuper -d ALL and mailq show progress on a terminal and stay silent in pipes', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), `queue_directory = ${t.dir}/queue\n`);
    const lines = Array.from({ length: 3000 }, (_, i) => `key${i}.example value${i}`).join('\n') + '\n';
    writeFileSync(join(t.dir, 'big'), lines);
    const onTty = shell(sp(`postmap -c ${t.dir} hash:${t.dir}/big`), true);
    assert.equal(onTty.code, 0, onTty.out);
    assert.match(onTty.out, new RegExp(`\\r\\x1b\\[Kpostmap hash:${t.dir}/big: \\d[\\d,]* of 3,000 \\(\\d+%\\) lines`));
    assert.ok(onTty.out.includes('\r\x1b[K'), 'the line is erased at the end');
    const piped = shell(sp(`postmap -c ${t.dir} hash:${t.dir}/big`) + ' 2>&1 | cat', false);
    assert.equal(piped.out, '');

    const spool = await createSpool(join(t.dir, 'queue'), { fsync: false });
    const fill = async () => {
      for (let i = 0; i < 600; i++) await spool.writeMessage({ arrivalTime: Date.now(), sender: 's@x.example', recipients: [{ address: `r${i}@y.example` }] }, Buffer.from('Subject: x\r\n\r\nb\r\n'));
    };
    await fill();
    const listed = shell(`${sp(`mailq -c ${t.dir}`)} > ${t.dir}/mailq.out`, true);
    assert.equal(listed.code, 0, listed.out);
    assert.match(listed.out, /\r\x1b\[Kmailq: \d+ of 600 \(\d+%\) messages/);
    assert.match(readFileSync(join(t.dir, 'mailq.out'), 'utf8'), /-- \d+ Kbytes in 600 Requests\.\n$/);
    const quiet = shell(`${sp(`mailq -c ${t.dir}`)} 2>${t.dir}/mailq.err >/dev/null; cat ${t.dir}/mailq.err`, false);
    assert.equal(quiet.out, '');

    const del = shell(sp(`postsuper -c ${t.dir} -d ALL`), true);
    assert.equal(del.code, 0, del.out);
    assert.match(del.out, /\r\x1b\[Kpostsuper -d ALL: (256|512) of 600 \(\d+%\) messages/);
    assert.match(del.out, /\r\x1b\[Ksealpost\/postsuper: Deleted: 600 messages\r?\n$/);
    await fill();
    const delPiped = shell(sp(`postsuper -c ${t.dir} -d ALL`) + ' 2>&1 | cat', false);
    assert.equal(delPiped.out, 'sealpost/postsuper: Deleted: 600 messages\n');
  } finally {
    t.cleanup();
  }
});
