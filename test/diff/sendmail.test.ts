/**
 * sendmail.test.ts (differential) — sealpost's sendmail command line against
 * Debian's /usr/sbin/sendmail (Postfix 3.7) on the same arguments and input:
 * the exit status, the warning and fatal lines, and for a queued message the
 * envelope sender and the recipients exactly as given (Postfix's postdrop
 * writes them raw; sealpost's maildrop keeps the raw form as origAddress, and
 * `append_at_myorigin = no` keeps both unqualified).
 *
 * Postfix side: a throw-away configuration and queue (maildrop owned by group
 * postdrop, mode 1730, no daemon); each queued file is read with postcat.
 * Where Postfix 3.11 changed a text that 3.7 prints, the case is not here but
 * in test/unit/cli/sendmail-options.test.ts with the 3.11 text.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { postfixTool, sealpost, tempDir } from '../harness/cli.ts';
import { openSpool } from '../../src/queue/spool.ts';

let dir: string;
let cleanup: () => void;
let pfConf: string;
let pfQueue: string;
let ourConf: string;
let ourQueue: string;

function writeSettled(path: string, text: string): void {
  writeFileSync(path, text);
  const past = new Date(Date.now() - 60_000);
  utimesSync(path, past, past);
}

before(() => {
  postfixTool('sendmail');
  const t = tempDir('sealpost-diff-sendmail-');
  dir = t.dir;
  cleanup = t.cleanup;
  chmodSync(dir, 0o755);
  pfConf = join(dir, 'pf-conf');
  pfQueue = join(dir, 'pf-queue');
  mkdirSync(pfConf);
  mkdirSync(join(pfQueue, 'maildrop'), { recursive: true });
  mkdirSync(join(pfQueue, 'public'));
  const gid = Number(execFileSync('getent', ['group', 'postdrop'], { encoding: 'utf8' }).split(':')[2]);
  chownSync(join(pfQueue, 'maildrop'), 0, gid);
  chmodSync(join(pfQueue, 'maildrop'), 0o1730);
  writeSettled(
    join(pfConf, 'main.cf'),
    [`compatibility_level = 3.6`, `queue_directory = ${pfQueue}`, `data_directory = ${dir}/pf-data`, `maillog_file_prefixes = ${dir}`, `maillog_file = ${dir}/pf-log`, ''].join('\n'),
  );
  ourConf = join(dir, 'our-conf');
  ourQueue = join(dir, 'our-queue');
  mkdirSync(ourConf);
  writeFileSync(join(ourConf, 'main.cf'), `queue_directory = ${ourQueue}\nappend_at_myorigin = no\n`);
});

after(() => cleanup?.());

interface Outcome {
  readonly code: number;
  /** Warning and fatal lines without the program prefix, each once (Postfix's getopt complains twice). */
  readonly lines: string[];
  readonly sender?: string;
  readonly recipients?: string[];
}

function normalise(stderr: string): string[] {
  const lines = stderr
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('postdrop: ')) // no pickup service in the throw-away queue
    .map((l) => l.replace(/^sendmail: /, ''));
  return [...new Set(lines)];
}

function postfixSendmail(args: readonly string[], stdin: string): Outcome {
  const r = spawnSync('/usr/sbin/sendmail', args, { input: stdin, encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/bin', MAIL_CONFIG: pfConf, LANG: 'C' } });
  const files = readdirSync(join(pfQueue, 'maildrop'));
  const base: Outcome = { code: r.status ?? -1, lines: normalise(r.stderr) };
  if (files.length === 0) return base;
  assert.equal(files.length, 1);
  const path = join(pfQueue, 'maildrop', files[0]!);
  const text = execFileSync(postfixTool('postcat'), ['-c', pfConf, '-e', path], { encoding: 'utf8' });
  rmSync(path);
  const sender = /^sender: (.*)$/m.exec(text)?.[1] ?? '';
  const recipients = [...text.matchAll(/^recipient: (.*)$/gm)].map((m) => m[1]!);
  return { ...base, sender, recipients };
}

async function ourSendmail(args: readonly string[], stdin: string): Promise<Outcome> {
  const r = await sealpost(args, { argv0: 'sendmail', stdin, env: { PATH: process.env.PATH, MAIL_CONFIG: ourConf } });
  const base: Outcome = { code: r.code, lines: normalise(r.stderr) };
  let spool;
  try {
    spool = openSpool(ourQueue);
  } catch {
    return base;
  }
  const ids = spool.list('maildrop');
  if (ids.length === 0) return base;
  assert.equal(ids.length, 1);
  const { envelope } = await spool.readMessage('maildrop', ids[0]!);
  rmSync(join(ourQueue, 'maildrop', ids[0]!));
  return { ...base, sender: envelope.sender, recipients: envelope.recipients.map((x) => x.origAddress ?? x.address) };
}

const MESSAGE = 'Subject: diff\nTo: hdr@example.net\n\nbody\n';

const CASES: ReadonlyArray<readonly string[]> = [
  // -c takes no argument and is ignored: DIR and everything after it are recipients.
  ['-c', '/tmp/DIR', '-f', 'me@example.org', 'bob@example.com'],
  ['-f', 'me@example.org', 'bob@example.com', 'carol@example.com'],
  ['-f', 'Me <me@example.org>', '-F', 'Me Myself', '--', '-dash@example.com'],
  ['-f', '<>', '-oi', 'bob@example.com'],
  ['-ti', '-fme@example.org', 'cc@example.com'],
  ['-A', 'x', '-U', '-m', '-G', '-L', 'label', '-h', '5', '-o7', '-o8', '-om', '-e', 'x', '-p', 'x', 'bob@example.com'],
  ['-o', 'x', 'value', 'bob@example.com'],
  ['-R', 'bogus', 'bob@example.com'],
  ['-N', 'never', '-R', 'hdrs', 'bob@example.com'],
  ['-B', '8BITMIME', '-i', 'bob@example.com'],
  ['-z'],
  ['-f'],
  ['-n', 'bob@example.com'],
  ['-B', '8bitmime', 'bob@example.com'],
  ['-X', '/tmp/log', 'bob@example.com'],
  ['-q5m'],
  ['-qZ'],
  ['-qR'],
  ['-qI'],
  ['-bz'],
  ['-bh'],
  ['-bi'],
  ['-I'],
  ['-t', '-bp'],
  ['-bp', 'bob@example.com'],
  ['-q', 'bob@example.com'],
  ['-bd', 'bob@example.com'],
  ['-bs', 'bob@example.com'],
  ['-bi', 'bob@example.com'],
  ['-oA'],
  ['-Vab', 'bob@example.com'],
  ['-qRsite', 'bob@example.com'],
  ['-qIABCDEF', 'bob@example.com'],
  ['-t', '-bd'],
  [],
];

test('sendmail options: the same exit status, messages and envelope as Debian\'s sendmail', async () => {
  for (const args of CASES) {
    const theirs = postfixSendmail(args, MESSAGE);
    const ours = await ourSendmail(args, MESSAGE);
    assert.deepEqual(ours, theirs, `sendmail ${args.join(' ')}`);
  }
});
