/**
 * ciphers.test.ts — grades and exclusions → OpenSSL cipher strings that
 * Node accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecureContext } from 'node:tls';
import { cipherString, levelExclusions, parseGrade } from '../../../../src/delivery/tls/ciphers.ts';

const lists = {
  high: 'aNULL:-aNULL:HIGH:@STRENGTH',
  medium: 'aNULL:-aNULL:HIGH:MEDIUM:+RC4:@STRENGTH',
  null: 'eNULL:!aNULL',
};

test('grades: low and export are medium (Postfix 3.8)', () => {
  assert.equal(parseGrade('high'), 'high');
  assert.equal(parseGrade('MEDIUM'), 'medium');
  assert.equal(parseGrade('low'), 'medium');
  assert.equal(parseGrade('export'), 'medium');
  assert.equal(parseGrade('null'), 'null');
  assert.equal(parseGrade('strong'), undefined);
});

test('exclusions are appended as :!NAME; anonymous ciphers excluded at verifying levels', () => {
  assert.equal(cipherString({ grade: 'high', cipherlists: lists, exclude: ['RC4, MD5', '3DES:aNULL'] }), 'aNULL:-aNULL:HIGH:@STRENGTH:!RC4:!MD5:!3DES:!aNULL');
  assert.deepEqual(levelExclusions('may'), []);
  assert.deepEqual(levelExclusions('encrypt'), ['eNULL']);
  for (const l of ['fingerprint', 'verify', 'secure', 'dane'] as const) assert.deepEqual(levelExclusions(l), ['aNULL']);
});

test('errors in Postfix words', () => {
  assert.deepEqual(cipherString({ grade: 'strong', cipherlists: lists, exclude: [] }), { error: 'invalid cipher grade: "strong"' });
  assert.deepEqual(cipherString({ grade: 'high', cipherlists: lists, exclude: ['!RC4'] }), { error: `invalid unary '!+-@' in cipher exclusion: "!RC4"` });
});

test('the strings are accepted by Node/OpenSSL', () => {
  for (const grade of ['high', 'medium']) {
    const s = cipherString({ grade, cipherlists: lists, exclude: ['aNULL', 'eNULL'] });
    assert.equal(typeof s, 'string');
    assert.doesNotThrow(() => createSecureContext({ ciphers: s as string }));
  }
});
