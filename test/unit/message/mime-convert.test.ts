/**
 * mime-convert.ts and mime-header.ts: Postfix's mime_state(3) 8-bit → 7-bit conversion,
 * byte by byte (test/diff/mime-downgrade.test.ts compares with Debian's Postfix itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downgradeMime, MimeDowngrade } from '../../../src/message/mime-convert.ts';
import { parseContentType, parseTransferEncoding } from '../../../src/message/mime-header.ts';

const crlf = (lines: readonly string[]) => Buffer.from(lines.join('\r\n'), 'latin1');
const conv = (lines: readonly string[]) => downgradeMime(crlf(lines)).toString('latin1');

function inPieces(content: Buffer, step: number): Buffer {
  const m = new MimeDowngrade();
  const out: Buffer[] = [];
  for (let i = 0; i < content.length; i += step) out.push(m.push(content.subarray(i, i + step)));
  out.push(m.end());
  return Buffer.concat(out);
}

test('a declared 8bit leaf: its field replaced at the end of the header, the body quoted-printable', () => {
  assert.equal(
    conv(['Subject: x', 'Content-Transfer-Encoding: 8bit', 'X-After: y', '', 'caf\xe9 = ok', '']),
    ['Subject: x', 'X-After: y', 'Content-Transfer-Encoding: quoted-printable', '', 'caf=E9 =3D ok', ''].join('\r\n'),
  );
  assert.equal(conv(['Content-Transfer-Encoding: BINARY', '', '\x80', '']), 'Content-Transfer-Encoding: quoted-printable\r\n\r\n=80\r\n');
});

test('undeclared or 7bit-domain content is left alone, 8-bit bytes and all', () => {
  const plain = ['Subject: x', '', 'caf\xe9', ''];
  assert.equal(conv(plain), plain.join('\r\n'));
  const qp = ['Content-Transfer-Encoding: quoted-printable', '', 'caf\xe9', ''];
  assert.equal(conv(qp), qp.join('\r\n'));
  const unknown = ['Content-Transfer-Encoding: x-uuencode', '', '\xe9', ''];
  assert.equal(conv(unknown), unknown.join('\r\n'));
});

test('quoted-printable lines: soft breaks after 72 characters (at most 76), trailing blanks encoded, CR inside a line', () => {
  const out = conv(['Content-Transfer-Encoding: 8bit', '', 'a'.repeat(200), `${'b'.repeat(72)}\xff\xff`, 'tab\t', 'space ', 'x\ry', '', '']);
  const lines = out.split('\r\n');
  assert.ok(lines.every((l) => l.length <= 76), 'no line over 76');
  assert.deepEqual(lines.slice(2, 5), [`${'a'.repeat(73)}=`, `${'a'.repeat(73)}=`, 'a'.repeat(54)]);
  assert.deepEqual(lines.slice(5, 7), [`${'b'.repeat(72)}=FF=`, '=FF']);
  assert.deepEqual(lines.slice(7, 11), ['tab=09', 'space=20', 'x=0Dy', '']);
});

test('multipart: the top gets 7bit, each declared part its own conversion, boundaries and prologue untouched', () => {
  const out = conv([
    'Content-Type: multipart/mixed; boundary="b1"',
    'Content-Transfer-Encoding: 8bit',
    '',
    'prologue \xe9',
    '--b1',
    'Content-Transfer-Encoding: 8bit',
    '',
    '\xe9',
    '--b1 trailing text is ignored',
    '',
    'undeclared \xe9',
    '--b1--',
    'epilogue \xe9',
    '',
  ]);
  assert.equal(
    out,
    [
      'Content-Type: multipart/mixed; boundary="b1"',
      'Content-Transfer-Encoding: 7bit',
      '',
      'prologue \xe9',
      '--b1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '=E9',
      '--b1 trailing text is ignored',
      '',
      'undeclared \xe9',
      '--b1--',
      'epilogue \xe9',
      '',
    ].join('\r\n'),
  );
});

test('nested multiparts: an outer boundary closes the inner ones; digest parts default to message/rfc822', () => {
  const out = conv([
    'Content-Type: multipart/mixed; boundary=outer',
    '',
    '--outer',
    'Content-Type: multipart/digest; boundary=inner',
    '',
    '--inner',
    '',
    'Subject: digest part',
    'Content-Transfer-Encoding: 8bit',
    '',
    '\xe9',
    '--outer',
    'Content-Transfer-Encoding: 8bit',
    '',
    '\xe9',
    '--outer--',
    '',
  ]);
  assert.match(out, /--inner\r\n\r\nSubject: digest part\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--outer\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n--outer--\r\n$/);
});

test('message/rfc822 gets 7bit and its own header block is parsed; message/global is encoded whole; message/partial keeps Postfix\'s quirk', () => {
  assert.equal(
    conv(['Content-Type: message/rfc822', 'Content-Transfer-Encoding: 8bit', '', 'Subject: \xe9', 'Content-Transfer-Encoding: 8bit', '', '\xe9', '']),
    ['Content-Type: message/rfc822', 'Content-Transfer-Encoding: 7bit', '', 'Subject: \xe9', 'Content-Transfer-Encoding: quoted-printable', '', '=E9', ''].join('\r\n'),
  );
  assert.equal(
    conv(['Content-Type: message/global', 'Content-Transfer-Encoding: 8bit', '', 'Subject: \xe9', '', '\xe9', '']),
    ['Content-Type: message/global', 'Content-Transfer-Encoding: quoted-printable', '', 'Subject: =E9', '', '=E9', ''].join('\r\n'),
  );
  assert.equal(conv(['Content-Type: message/partial', 'Content-Transfer-Encoding: 8bit', '', '\xe9', '']), 'Content-Type: message/partial\r\nContent-Transfer-Encoding: 7bit\r\n\r\n=E9\r\n');
});

test('a primary header ended by a non-header line gets an empty line; the output always ends with a line end', () => {
  assert.equal(conv(['Content-Transfer-Encoding: 8bit', 'not a header \xe9', '']), 'Content-Transfer-Encoding: quoted-printable\r\n\r\nnot a header =E9\r\n');
  assert.equal(conv(['Content-Transfer-Encoding: 8bit', '', 'no final line end \xe9']), 'Content-Transfer-Encoding: quoted-printable\r\n\r\nno final line end =E9\r\n');
  assert.equal(conv(['Subject: header only', 'Content-Transfer-Encoding: 8bit']), 'Subject: header only\r\nContent-Transfer-Encoding: quoted-printable\r\n');
  assert.equal(conv(['Subject: raw', '', 'no line end']), 'Subject: raw\r\n\r\nno line end\r\n');
  assert.equal(downgradeMime(Buffer.alloc(0)).length, 0);
});

test('folded fields and the obsolete "name :" form are recognised; other fields pass through byte for byte', () => {
  assert.equal(
    conv(['Content-Type: multipart/mixed;', '\tboundary="folded"', 'Content-Transfer-Encoding :', ' 8bit', '', '--folded', 'Content-Transfer-Encoding: 8bit', '', '\xe9', '--folded--', '']),
    ['Content-Type: multipart/mixed;', '\tboundary="folded"', 'Content-Transfer-Encoding: 7bit', '', '--folded', 'Content-Transfer-Encoding: quoted-printable', '', '=E9', '--folded--', ''].join('\r\n'),
  );
});

test('the same output whatever the chunking (split CRLFs, long lines, boundaries across pieces)', () => {
  const content = crlf([
    'Content-Type: multipart/mixed; boundary="bb"',
    'Content-Transfer-Encoding: 8bit',
    '',
    '--bb',
    'Content-Transfer-Encoding: 8bit',
    '',
    `${'\xe9'.repeat(3000)} end `,
    'x\ry',
    '--bb',
    '',
    'z'.repeat(5000),
    '--bb--',
    'tail',
  ]);
  const whole = downgradeMime(content);
  for (const step of [1, 2, 3, 5, 64, 4096]) assert.deepEqual(inPieces(content, step), whole, `pieces of ${step}`);
});

test('limits: a header field over header_size_limit passes unchanged; boundaries compared up to mime_boundary_length_limit', () => {
  const huge = `X-Huge: ${'h'.repeat(300)}`;
  assert.equal(downgradeMime(crlf([huge, 'Content-Transfer-Encoding: 8bit', '', '\xe9', '']), { headerSizeLimit: 100 }).toString('latin1'), `${huge}\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n`);
  const out = downgradeMime(crlf(['Content-Type: multipart/mixed; boundary=abcdefgh', '', '--abcdXX', 'Content-Transfer-Encoding: 8bit', '', '\xe9', '']), { boundaryLengthLimit: 4 }).toString('latin1');
  assert.match(out, /--abcdXX\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=E9\r\n$/);
});

test('mime-header: Content-Type and Content-Transfer-Encoding as header_token() reads them', () => {
  assert.deepEqual(parseContentType(' multipart/mixed; boundary="a;b" (comment); boundary=second'), { kind: 'multipart', digest: false, boundaries: ['a;b', 'second'] });
  assert.deepEqual(parseContentType('Multipart/Digest; Boundary=x'), { kind: 'multipart', digest: true, boundaries: ['x'] });
  assert.deepEqual(parseContentType('message/rfc822'), { kind: 'message', subtype: 'rfc822' });
  assert.deepEqual(parseContentType('message/x-other'), { kind: 'message', subtype: 'other' });
  assert.deepEqual(parseContentType('TEXT/html; charset=utf-8'), { kind: 'text' });
  assert.deepEqual(parseContentType('image/png'), { kind: 'unchanged' });
  assert.deepEqual(parseContentType('  '), { kind: 'other' });
  assert.deepEqual(parseTransferEncoding(' (c) 8BIT'), { encoding: '8bit', domain: '8bit' });
  assert.deepEqual(parseTransferEncoding('base64'), { encoding: 'base64', domain: '7bit' });
  assert.equal(parseTransferEncoding('"8bit"'), undefined);
  assert.equal(parseTransferEncoding('x-token'), undefined);
});
