import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataReader, DotStuffer, dotStuff } from '../../../src/smtp/dot-stuff.ts';
import type { DataReaderOptions } from '../../../src/smtp/dot-stuff.ts';
import type { BareNewlineMode } from '../../../src/smtp/bare-newline.ts';

const b = (s: string) => Buffer.from(s, 'latin1');
const s = (x: Buffer) => x.toString('latin1');

// ---------------------------------------------------------------- sending side

test('dot-stuffing: leading dots doubled, bare LF → CRLF, terminator added', () => {
  const cases: Array<[string, string]> = [
    ['', '.\r\n'],
    ['a', 'a\r\n.\r\n'],
    ['a\r\n', 'a\r\n.\r\n'],
    ['.', '..\r\n.\r\n'],
    ['.\r\n', '..\r\n.\r\n'],
    ['.a\r\n..b\r\nc.d\r\n', '..a\r\n...b\r\nc.d\r\n.\r\n'],
    ['a\n.b\n', 'a\r\n..b\r\n.\r\n'],
    ['a\n\n.\n', 'a\r\n\r\n..\r\n.\r\n'],
    ['\r\n.\r\n', '\r\n..\r\n.\r\n'],
    ['x\r\n.\r\nMAIL FROM:<evil@x>\r\n', 'x\r\n..\r\nMAIL FROM:<evil@x>\r\n.\r\n'],
  ];
  for (const [input, want] of cases) assert.equal(s(dotStuff(b(input))), want, JSON.stringify(input));
});

test('bare CR policy: keep (default), space, crlf', () => {
  assert.equal(s(dotStuff(b('a\r'))), 'a\r\r\n.\r\n');
  assert.equal(s(dotStuff(b('\r.\r'))), '\r.\r\r\n.\r\n');
  assert.equal(s(dotStuff(b('\r.\r'), { bareCr: 'space' })), ' . \r\n.\r\n');
  assert.equal(s(dotStuff(b('\r.\r'), { bareCr: 'crlf' })), '\r\n..\r\n.\r\n');
  assert.equal(s(dotStuff(b('a\r\r\nb'), { bareCr: 'space' })), 'a \r\nb\r\n.\r\n');
});

test('dot-stuffing gives the same bytes at every chunk split', () => {
  const input = b('.x\r\n\n.\r\r\n.\r.\n..\rend\r');
  for (const bareCr of ['keep', 'space', 'crlf'] as const) {
    const whole = s(dotStuff(input, { bareCr }));
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        const st = new DotStuffer({ bareCr });
        const got = [st.push(input.subarray(0, i)), st.push(input.subarray(i, j)), st.push(input.subarray(j)), st.end()];
        assert.equal(s(Buffer.concat(got)), whole, `${bareCr} split ${i}/${j}`);
      }
    }
  }
});

test('line length limit: smtp_text_out() breaks a long line with CRLF SPACE, dots stuffed only at a line start', () => {
  const cases: Array<[string, number, string]> = [
    [`A: ${'b'.repeat(22)}\r\nnext\n`, 10, 'A: bbbbbbb\r\n bbbbbbbbb\r\n bbbbbb\r\nnext\r\n.\r\n'],
    ['0123456789abc', 10, '0123456789\r\n abc\r\n.\r\n'],
    // Exactly the limit: no break; one more octet: a continuation of one octet.
    ['0123456789\r\n0123456789x\r\n', 10, '0123456789\r\n0123456789\r\n x\r\n.\r\n'],
    // The stuffed dot does not count; a continuation that starts with "." is not stuffed.
    [`.${'a'.repeat(9)}.b`, 10, `..${'a'.repeat(9)}\r\n .b\r\n.\r\n`],
    [`${'a'.repeat(25)}`, 10, 'aaaaaaaaaa\r\n aaaaaaaaa\r\n aaaaaa\r\n.\r\n'],
    [`${'a'.repeat(25)}`, 0, `${'a'.repeat(25)}\r\n.\r\n`],
  ];
  for (const [input, limit, want] of cases) {
    const whole = s(dotStuff(b(input), { lineLimit: limit, bareCr: 'crlf' }));
    assert.equal(whole, want, `${JSON.stringify(input)} @${limit}`);
    for (const line of whole.split('\r\n')) assert.ok(limit === 0 || line.length <= limit + 1, line);
    // The same bytes at every split.
    for (let i = 0; i <= input.length; i++) {
      const st = new DotStuffer({ lineLimit: limit, bareCr: 'crlf' });
      assert.equal(s(Buffer.concat([st.push(b(input.slice(0, i))), st.push(b(input.slice(i))), st.end()])), want, `split ${i}`);
    }
  }
  const st = new DotStuffer({ lineLimit: 10 });
  st.push(b(`${'x'.repeat(35)}\r\nshort\r\n${'y'.repeat(11)}`));
  assert.equal(st.linesBroken, 4);
});

test('client output: a queue file with every smuggling shape never yields a bare CR or LF, nor a second end of data', () => {
  const shapes = ['\n.\n', '\n.\r\n', '\r.\r\n', '\r\n.\r', '\r\n.\n', '\n.\r', '\r.\n', '\r\r\n.\r\r\n'];
  for (const shape of shapes) {
    const content = `Subject: x\r\n\r\nbefore${shape}MAIL FROM:<evil@x>\r\nafter\r\n`;
    for (let i = 0; i <= content.length; i++) {
      const st = new DotStuffer({ bareCr: 'crlf', lineLimit: 998 });
      const wire = s(Buffer.concat([st.push(b(content.slice(0, i))), st.push(b(content.slice(i))), st.end()]));
      assert.equal(/\r(?!\n)|(?<!\r)\n/.test(wire), false, `bare CR/LF for ${JSON.stringify(shape)} split ${i}`);
      assert.equal(wire.indexOf('\r\n.\r\n'), wire.length - 5, `early end of data for ${JSON.stringify(shape)}`);
      assert.ok(!wire.startsWith('.\r\n'));
    }
  }
});

/** An independent reading of smtp_text_out() for the client's `crlf` policy, over a whole message. */
function oracle(text: string, limit: number): string {
  const lines = text.split(/\r\n|\r|\n/);
  const last = lines.pop()!;
  let out = '';
  for (const l of last === '' ? lines : [...lines, last]) {
    if (limit === 0) {
      out += `${l.startsWith('.') ? '.' : ''}${l}\r\n`;
      continue;
    }
    const first = l.slice(0, limit);
    out += `${first.startsWith('.') ? '.' : ''}${first}`;
    for (let rest = l.slice(limit); rest !== ''; rest = rest.slice(limit - 1)) out += `\r\n ${rest.slice(0, limit - 1)}`;
    out += '\r\n';
  }
  return `${out}.\r\n`;
}

test('random content, random chunking: the stuffer agrees with an independent whole-message reading', () => {
  let seed = 7;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  for (let round = 0; round < 3000; round++) {
    const len = rnd(40);
    let text = '';
    for (let k = 0; k < len; k++) text += 'a.\r\n'[rnd(4)];
    const limit = [0, 3, 5][rnd(3)]!;
    const st = new DotStuffer({ bareCr: 'crlf', lineLimit: limit });
    const parts: Buffer[] = [];
    for (let at = 0; at < text.length;) {
      const next = Math.min(text.length, at + 1 + rnd(8));
      parts.push(st.push(b(text.slice(at, next))));
      at = next;
    }
    parts.push(st.end());
    assert.equal(s(Buffer.concat(parts)), oracle(text, limit), `${JSON.stringify(text)} @${limit}`);
  }
});

test('an unchanged chunk is handed back without a copy', () => {
  const st = new DotStuffer({ lineLimit: 998 });
  const chunk = b('plain text in the middle of a line');
  st.push(b('x'));
  assert.equal(st.push(chunk), chunk);
});

test('DotStuffer refuses use after end()', () => {
  const st = new DotStuffer();
  st.end();
  assert.throws(() => st.push(b('x')));
  assert.throws(() => st.end());
});

// ---------------------------------------------------------------- receiving side: oracle

/**
 * Reference un-stuffer, written independently of the streaming state machine: split the
 * whole input at LF, end only at a "." line that ends in CRLF after a line that ended in CRLF.
 */
function reference(input: string): { data: string; done: boolean; rest: string; bareLf: number; bareCr: number; strayDots: number } {
  let data = '';
  let prevCrLf = true;
  let pos = 0;
  let bareLf = 0;
  let bareCr = 0;
  let strayDots = 0;
  for (;;) {
    const lf = input.indexOf('\n', pos);
    if (lf === -1) break;
    const raw = input.slice(pos, lf);
    pos = lf + 1;
    const crlf = raw.endsWith('\r');
    const body = crlf ? raw.slice(0, -1) : raw;
    if (!crlf) bareLf++;
    bareCr += body.split('\r').length - 1;
    if (body === '.' && crlf && prevCrLf) return { data, done: true, rest: input.slice(pos), bareLf, bareCr, strayDots };
    if (body === '.') strayDots++;
    data += (body.startsWith('.') ? body.slice(1) : body) + '\r\n';
    prevCrLf = crlf;
  }
  // An unfinished tail: only what the streaming reader can already emit is compared.
  return { data, done: false, rest: '', bareLf, bareCr, strayDots };
}

function runChunks(chunks: Buffer[], opts?: DataReaderOptions) {
  const r = new DataReader(opts);
  let data = '';
  let rest = '';
  let done = false;
  for (const c of chunks) {
    const out = r.push(c);
    data += s(out.data);
    rest += s(out.rest);
    done = out.done;
  }
  return { data, rest, done, reader: r };
}

function checkAllSplits(input: string): void {
  const want = reference(input);
  const buf = b(input);
  for (let i = 0; i <= buf.length; i++) {
    const got = runChunks([buf.subarray(0, i), buf.subarray(i)]);
    assert.equal(got.done, want.done, `${JSON.stringify(input)} split ${i}: done`);
    if (want.done) {
      assert.equal(got.data, want.data, `${JSON.stringify(input)} split ${i}: data`);
      assert.equal(got.rest, want.rest, `${JSON.stringify(input)} split ${i}: rest`);
      const f = got.reader.findings();
      assert.equal(f.bareLf, want.bareLf, `${JSON.stringify(input)} split ${i}: bareLf`);
      assert.equal(f.bareCr, want.bareCr, `${JSON.stringify(input)} split ${i}: bareCr`);
      assert.equal(f.strayDots, want.strayDots, `${JSON.stringify(input)} split ${i}: strayDots`);
    } else {
      // Everything up to the last LF has been emitted; the tail may still be held back.
      assert.ok(got.data.startsWith(want.data), `${JSON.stringify(input)} split ${i}: prefix`);
    }
  }
}

test('plain message, pipelined commands after the end of data are returned as rest', () => {
  const got = runChunks([b('Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n')]);
  assert.equal(got.done, true);
  assert.equal(got.data, 'Subject: x\r\n\r\nbody\r\n');
  assert.equal(got.rest, 'QUIT\r\n');
  assert.deepEqual(got.reader.findings(), { bareLf: 0, bareCr: 0, strayDots: 0, firstBareLfAt: undefined });
  assert.deepEqual(got.reader.verdict(), { action: 'accept' });
  // After done, further input is handed back untouched.
  assert.equal(s(got.reader.push(b('NOOP\r\n')).rest), 'NOOP\r\n');
});

test('empty message: the DATA command line supplies the first CRLF', () => {
  const got = runChunks([b('.\r\n')]);
  assert.equal(got.done, true);
  assert.equal(got.data, '');
});

test('dot un-stuffing', () => {
  const got = runChunks([b('..\r\n..x\r\n...\r\n.\r\n')]);
  assert.equal(got.data, '.\r\n.x\r\n..\r\n');
});

const SMUGGLING_VARIANTS = [
  '\n.\n', // <LF>.<LF>
  '\n.\r\n', // <LF>.<CR><LF> (the Postfix/Sendmail/Exim variant)
  '\r\n.\n', // <CR><LF>.<LF>
  '\r.\r', // <CR>.<CR>
  '\r.\r\n', // <CR>.<CR><LF>
  '\r\n.\r', // <CR><LF>.<CR>
  '\r\n.\r\r\n', // <CR><LF>.<CR><CR><LF>
  '\n.\r\r\n',
  '\r\n\x00.\r\n', // NUL before the dot
  '\r\n .\r\n', // space before the dot
  '\r\n.\x00\r\n',
];

test('no smuggling variant ends DATA, at any split point, in any mode', () => {
  for (const v of SMUGGLING_VARIANTS) {
    const input = `Subject: hi\r\n\r\nbody${v}MAIL FROM:<evil@example>\r\nRCPT TO:<victim@example>\r\nDATA\r\n\r\n.\r\nQUIT\r\n`;
    checkAllSplits(input);
    for (const mode of ['no', 'normalize', 'reject'] as BareNewlineMode[]) {
      const got = runChunks([b(input)], { mode });
      assert.equal(got.done, true, JSON.stringify(v));
      assert.ok(got.data.includes('MAIL FROM:<evil@example>\r\n'), `${JSON.stringify(v)} ${mode}: smuggled text stays content`);
      assert.equal(got.rest, 'QUIT\r\n', `${JSON.stringify(v)} ${mode}`);
    }
  }
});

test('byte-at-a-time feeding of every smuggling variant', () => {
  for (const v of SMUGGLING_VARIANTS) {
    const input = `x${v}y\r\n.\r\nNOOP\r\n`;
    const want = reference(input);
    const got = runChunks([...b(input)].map((c) => Buffer.from([c])));
    assert.equal(got.data, want.data, JSON.stringify(v));
    assert.equal(got.rest, want.rest, JSON.stringify(v));
  }
});

test('normalised content: bare LF becomes CRLF, bare CR stays, stray dot lines lose the dot', () => {
  const got = runChunks([b('a\n.\nb\r.\rc\r\n.\n.\r\n')]);
  // "a" LF; "." LF (stray) ; "b\r.\rc" CRLF; "." LF (stray); "." CRLF after a bare LF (stray) ... no end yet.
  assert.equal(got.done, false);
  assert.equal(got.data, 'a\r\n\r\nb\r.\rc\r\n\r\n\r\n');
  const f = got.reader.findings();
  assert.equal(f.bareLf, 3);
  assert.equal(f.bareCr, 2);
  assert.equal(f.strayDots, 3);
  assert.equal(f.firstBareLfAt, 1);
  assert.equal(s(got.reader.push(b('\r\n.\r\n')).data), '\r\n');
  assert.equal(got.reader.done, true);
});

test('smtpd_forbid_bare_newline verdicts', () => {
  const input = b('a\nb\r\n.\r\n');
  assert.deepEqual(runChunks([input], { mode: 'normalize' }).reader.verdict(), { action: 'accept' });
  assert.deepEqual(runChunks([input], { mode: 'no' }).reader.verdict(), { action: 'accept' });
  assert.deepEqual(runChunks([input], { mode: 'reject', myhostname: 'mx.example.com' }).reader.verdict(), {
    action: 'reject',
    reply: '550 5.5.2 mx.example.com Error: bare <LF> received',
    reason: 'bare <LF> received',
  });
  assert.equal(runChunks([input], { mode: 'reject', rejectCode: 521 }).reader.verdict().reply, '521 5.5.2 localhost Error: bare <LF> received');
  // A bare CR alone is not a bare newline.
  assert.deepEqual(runChunks([b('a\rb\r\n.\r\n')], { mode: 'reject' }).reader.verdict(), { action: 'accept' });
});

test('a DATA command that ended in bare LF does not supply the first CRLF', () => {
  const strict = runChunks([b('.\r\nx\r\n.\r\n')], { commandEndedWithBareLf: true });
  assert.equal(strict.done, true);
  assert.equal(strict.data, '\r\nx\r\n');
  assert.equal(strict.reader.findings().strayDots, 1);
  assert.equal(runChunks([b('.\r\n')], { commandEndedWithBareLf: true }).done, false);
});

test('exhaustive: every string over {x . CR LF} up to length 6, every split point, matches the oracle', () => {
  const alphabet = ['x', '.', '\r', '\n'];
  let inputs = [''];
  const all: string[] = [''];
  for (let len = 1; len <= 6; len++) {
    inputs = inputs.flatMap((p) => alphabet.map((c) => p + c));
    all.push(...inputs);
  }
  for (const body of all) {
    checkAllSplits(body); // may or may not contain an end of data by itself
    checkAllSplits(`${body}\r\n.\r\n`);
  }
});

test('long runs of text between line ends (the reader copies a line at once): random lines, every split, match the oracle', () => {
  let seed = 7;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const ends = ['\r\n', '\n', '\r', '\r\r\n'];
  for (let round = 0; round < 60; round++) {
    let body = '';
    for (let line = 0; line < 1 + rnd(6); line++) {
      if (rnd(4) === 0) body += '.';
      body += 'abcdefghij'.slice(0, rnd(11)).repeat(1 + rnd(3));
      body += ends[rnd(ends.length)];
    }
    checkAllSplits(body);
    checkAllSplits(`${body}\r\n.\r\n`);
  }
  // Lines that end only in bare LF, or only in bare CR, many to a chunk.
  checkAllSplits(`${'a line with bare LF\n'.repeat(50)}\r\n.\r\n`);
  checkAllSplits(`${'a line with bare CR\r'.repeat(50)}\r\n.\r\n`);
});

test('DataReader hands back a slice of the chunk, not a copy, while nothing changes', () => {
  const chunk = b('Subject: plain\r\n\r\na body line\r\nanother line\r\n');
  const out = new DataReader().push(chunk);
  assert.equal(out.done, false);
  assert.equal(out.data.buffer, chunk.buffer);
  assert.equal(out.data.byteOffset, chunk.byteOffset);
  assert.equal(s(out.data), s(chunk));
});

test('round trip: DataReader(DotStuffer(content)) is the content with CRLF line ends', () => {
  let seed = 42;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const alphabet = ['a', '.', '\r', '\n', '\r\n', '..', ' '];
  for (let n = 0; n < 500; n++) {
    let content = '';
    const len = rnd() % 30;
    for (let i = 0; i < len; i++) content += alphabet[rnd() % alphabet.length];
    const wire = dotStuff(b(content), { bareCr: 'crlf' });
    // Every bare LF and bare CR became CRLF; the last line is closed.
    let expected = content.replace(/\r\n|\r|\n/g, '\r\n');
    if (expected !== '' && !expected.endsWith('\r\n')) expected += '\r\n';
    const cut = rnd() % (wire.length + 1);
    const got = runChunks([wire.subarray(0, cut), wire.subarray(cut), b('QUIT\r\n')]);
    assert.equal(got.done, true, JSON.stringify(content));
    assert.equal(got.data, expected, JSON.stringify(content));
    assert.equal(got.rest, 'QUIT\r\n');
    assert.equal(got.reader.findings().bareLf, 0);
    assert.equal(got.reader.findings().bareCr, 0);
  }
});

test("golden: Postfix smtp-source's dot-stuffed DATA stream, both directions", async () => {
  const { readFileSync } = await import('node:fs');
  const wire = readFileSync(new URL('../../golden/smtp/smtp-source-data.in', import.meta.url));
  const content = readFileSync(new URL('../../golden/smtp/smtp-source-data.content', import.meta.url));
  // Sending: our stuffing of the LF file gives smtp-source's bytes exactly.
  assert.equal(s(dotStuff(content)), s(wire));
  // Receiving: the stream un-stuffs to the content with CRLF line ends, at every split point.
  const expected = s(content).replace(/\n/g, '\r\n');
  for (let i = 0; i <= wire.length; i++) {
    const got = runChunks([wire.subarray(0, i), wire.subarray(i)]);
    assert.equal(got.done, true);
    assert.equal(got.data, expected, `split ${i}`);
    assert.equal(got.rest, '');
  }
});
