/**
 * qshape.test.ts (differential) — `sealpost qshape` against Debian's
 * /usr/sbin/qshape on the same queue contents: the same five messages
 * (senders, recipient domains, ages) are put on hold in a throw-away Postfix
 * (header_checks HOLD; their arrival-time records then set back to the test's
 * ages) and in a sealpost spool, and both tools' output must be identical for
 * the default layout and for -s, -p -m 1, -t 2 -b 5, -l -t 10 -b 4 and -w 100.
 * The data avoid ties in (count, name length), where qshape's order follows
 * Perl's random hash order.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { createSpool } from '../../src/queue/spool.ts';
import { freePort } from '../../bench/relay.ts';
import { sealpost, tempDir } from '../harness/cli.ts';
import { startPostfixPeer, type PostfixPeer } from '../harness/postfix-daemon.ts';

interface Msg {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly ageSeconds: number;
}

const MESSAGES: readonly Msg[] = [
  { sender: 'a@x.example', recipients: ['u1@bank.example', 'u2@bank.example', 'U3@Bank.Example'], ageSeconds: 150 },
  { sender: '', recipients: ['u1@hospital.example', 'u2@hospital.example', 'u1@other.example'], ageSeconds: 420 },
  { sender: 'b@y.example', recipients: ['u4@bank.example', 'u5@bank.example', 'u6@bank.example'], ageSeconds: 1500 },
  { sender: 'c@x.example', recipients: ['u3@hospital.example', 'u4@hospital.example', 'u1@a.sub.example.org'], ageSeconds: 6000 },
  { sender: '', recipients: ['u2@a.sub.example.org', 'u3@a.sub.example.org', 'u1@b.sub.example.org', 'u2@b.sub.example.org'], ageSeconds: 180_000 },
];

const VARIANTS: ReadonlyArray<readonly string[]> = [[], ['-s'], ['-p', '-m', '1'], ['-t', '2', '-b', '5'], ['-l', '-t', '10', '-b', '4'], ['-w', '100']];

let peer: PostfixPeer;
let sp: { dir: string; cleanup: () => void };
let hc: { dir: string; cleanup: () => void };

/** Rewrite the seconds of a Postfix queue file's time record (the second record, after REC_TYPE_SIZE). */
function setArrival(file: string, seconds: number): void {
  const buf = readFileSync(file);
  let p = 0;
  const record = () => {
    const type = String.fromCharCode(buf[p]!);
    let len = 0;
    let shift = 0;
    let q = p + 1;
    for (;;) {
      const b = buf[q++]!;
      len |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    const start = q;
    p = q + len;
    return { type, start, len };
  };
  assert.equal(record().type, 'C');
  const t = record();
  assert.equal(t.type, 'T');
  const text = buf.subarray(t.start, t.start + t.len).toString('latin1');
  const old = text.split(' ')[0]!;
  assert.equal(String(seconds).length, old.length);
  buf.write(String(seconds), t.start, 'latin1');
  writeFileSync(file, buf);
}

function holdFiles(dir: string): string[] {
  return readdirSync(join(dir, 'queue', 'hold')).map((f) => join(dir, 'queue', 'hold', f));
}

before(async () => {
  hc = tempDir();
  writeFileSync(join(hc.dir, 'hold'), '/^Subject: m[0-9]/ HOLD\n');
  peer = await startPostfixPeer('127.0.0.1', await freePort(), [`header_checks = regexp:${hc.dir}/hold`]);
  MESSAGES.forEach((m, i) => {
    execFileSync('/usr/sbin/sendmail', ['-C', join(peer.dir, 'conf'), '-f', m.sender, '--', ...m.recipients], { input: `Subject: m${i}\n\nbody ${i}\n` });
  });
  for (let i = 0; holdFiles(peer.dir).length < MESSAGES.length; i++) {
    if (i > 300) throw new Error(`Postfix did not hold the messages:\n${peer.log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  execFileSync('/usr/sbin/postfix', ['-c', join(peer.dir, 'conf'), 'stop'], { stdio: 'ignore' });
  const now = Math.floor(Date.now() / 1000);
  for (const f of holdFiles(peer.dir)) {
    const i = Number(/Subject: m(\d)/.exec(readFileSync(f, 'latin1'))![1]);
    setArrival(f, now - MESSAGES[i]!.ageSeconds);
  }
  sp = tempDir();
  writeFileSync(join(sp.dir, 'main.cf'), `queue_directory = ${sp.dir}/queue\n`);
  const spool = await createSpool(join(sp.dir, 'queue'), { fsync: false });
  for (const m of MESSAGES) {
    const id = await spool.writeMessage({ arrivalTime: (now - m.ageSeconds) * 1000, sender: m.sender, recipients: m.recipients.map((address) => ({ address })) }, Buffer.from('Subject: x\r\n\r\nbody\r\n'));
    await spool.move(id, 'incoming', 'hold');
  }
});

after(() => {
  peer?.stop();
  sp?.cleanup();
  hc?.cleanup();
});

for (const args of VARIANTS) {
  test(`qshape ${[...args, 'hold'].join(' ')}: sealpost's layout is Postfix's`, async () => {
    const pf = spawnSync('/usr/sbin/qshape', ['-c', join(peer.dir, 'conf'), ...args, 'hold'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin', LANG: 'C' } });
    assert.equal(pf.status, 0, pf.stderr);
    const ours = await sealpost(['qshape', '-c', sp.dir, ...args, 'hold']);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, pf.stdout);
    assert.match(pf.stdout, /TOTAL/);
  });
}

test('the compared tables are not trivial: every age bucket used holds the test\'s messages', async () => {
  const ours = await sealpost(['qshape', '-c', sp.dir, 'hold']);
  const lines = ours.stdout.split('\n');
  assert.match(lines[0]!, /^\s+T\s+5\s+10\s+20\s+40\s+80\s+160\s+320\s+640\s+1280\s+1280\+$/);
  // 16 recipients: 3 in [0,5), 3 in [5,10), 3 in [20,40), 3 in [80,160), 4 in 1280+.
  assert.deepEqual(lines[1]!.trim().split(/\s+/), ['TOTAL', '16', '3', '3', '0', '3', '0', '3', '0', '0', '0', '4']);
  assert.deepEqual(lines[2]!.trim().split(/\s+/), ['bank.example', '6', '3', '0', '0', '3', '0', '0', '0', '0', '0', '0']);
});

test('bad input as Postfix reads it, with a warning: an unknown queue name, a -b that is not a number', async () => {
  for (const args of [['nosuchqueue'], ['-b', 'abc', 'hold']]) {
    const pf = spawnSync('/usr/sbin/qshape', ['-c', join(peer.dir, 'conf'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/bin', LANG: 'C' } });
    assert.equal(pf.status, 0, pf.stderr);
    const ours = await sealpost(['qshape', '-c', sp.dir, ...args]);
    assert.equal(ours.code, 0, ours.stderr);
    assert.equal(ours.stdout, pf.stdout, args.join(' '));
    // Postfix's qshape warns through Perl ("Can't stat ...", "isn't numeric"); ours names the place and the fix.
    assert.notEqual(pf.stderr, '');
  }
  const unknown = await sealpost(['qshape', '-c', sp.dir, 'nosuchqueue']);
  assert.match(unknown.stderr, new RegExp(`^sealpost/qshape: warning: cannot read ${sp.dir}/queue/nosuchqueue: no such queue directory \\(queue names: incoming active deferred hold maildrop, or an absolute path\\)\\n$`));
  const bad = await sealpost(['qshape', '-c', sp.dir, '-b', 'abc', 'hold']);
  assert.equal(bad.stderr, 'sealpost/qshape: warning: -b "abc" is not a number: read as 0\n');
});
