import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodePlain, hashPassword, parsePasswordFile, strictBase64, verifyHash } from '../../../../src/intake/smtpd/sasl.ts';

test('hashPassword/verifyHash: scrypt, no plaintext stored, wrong password refused', async () => {
  const h = await hashPassword('pw');
  assert.match(h, /^scrypt\$16384\$8\$1\$/);
  assert.ok(!h.includes('pw$'));
  assert.equal(await verifyHash(h, 'pw'), true);
  assert.equal(await verifyHash(h, 'pW'), false);
});

test('parsePasswordFile: comments, and a bad line named by file and line', () => {
  assert.deepEqual(parsePasswordFile('# c\n\nbob:scrypt$1$1$1$AA==$AA==\n', 'f').map((e) => [e.user, e.line]), [['bob', 3]]);
  assert.throws(() => parsePasswordFile('bob:plaintext\n', '/etc/sealpost/sasl_passwd'), /\/etc\/sealpost\/sasl_passwd, line 1: expected/);
});

test('decodePlain and strictBase64 (RFC 4616, RFC 4648)', () => {
  assert.deepEqual(decodePlain(Buffer.from('\0alice\0pw')), { authzid: '', user: 'alice', password: 'pw' });
  assert.equal(decodePlain(Buffer.from('alice\0pw')), undefined);
  assert.equal(strictBase64('AGFsaWNlAHB3')!.toString(), '\0alice\0pw');
  assert.equal(strictBase64('not base64!'), undefined);
  assert.equal(strictBase64('YWI=')!.toString(), 'ab');
});
