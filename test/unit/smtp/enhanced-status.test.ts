import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultEnhancedStatus,
  enhancedMatchesReply,
  enhancedStatusLength,
  formatEnhancedStatus,
  isValidEnhancedStatus,
  parseEnhancedStatus,
} from '../../../src/smtp/enhanced-status.ts';

test('valid codes: class 2/4/5, subject and detail of 1 to 3 digits', () => {
  for (const c of ['2.0.0', '4.7.1', '5.1.10', '5.7.27', '2.999.999', '4.0.000', '5.10.1']) {
    assert.equal(isValidEnhancedStatus(c), true, c);
  }
  assert.deepEqual(parseEnhancedStatus('5.7.27'), { klass: 5, subject: 7, detail: 27 });
  assert.deepEqual(parseEnhancedStatus('2.999.999'), { klass: 2, subject: 999, detail: 999 });
  assert.equal(formatEnhancedStatus({ klass: 4, subject: 4, detail: 2 }), '4.4.2');
});

test('invalid codes are refused', () => {
  for (const c of ['', '3.0.0', '1.0.0', '6.0.0', '0.0.0', '2.0', '2..0', '2.0.', '2.1000.0', '2.0.1000', '5.a.1', '5.1.1x', ' 5.1.1', '5.1.1 ', '55.1.1', '5-1-1', '5.1.-1']) {
    assert.equal(isValidEnhancedStatus(c), false, JSON.stringify(c));
    assert.equal(parseEnhancedStatus(c), undefined, JSON.stringify(c));
  }
});

test('enhancedStatusLength finds a code at the start of reply text, as dsn_valid()', () => {
  assert.equal(enhancedStatusLength('2.0.0 Ok'), 5);
  assert.equal(enhancedStatusLength('5.1.10 <x>: no'), 6);
  assert.equal(enhancedStatusLength('4.7.1\tTry later'), 5);
  assert.equal(enhancedStatusLength('2.0.0'), 5);
  assert.equal(enhancedStatusLength('2.0.0: Ok'), 0); // must be followed by white space or end
  assert.equal(enhancedStatusLength('2.0.0.1 x'), 0);
  assert.equal(enhancedStatusLength('Ok 2.0.0'), 0);
  assert.equal(enhancedStatusLength('mx.example.com ESMTP'), 0);
  assert.equal(enhancedStatusLength('8BITMIME'), 0);
});

test('default enhanced code from the basic code (Postfix: 2.0.0, 4.0.0, 5.0.0)', () => {
  assert.equal(defaultEnhancedStatus(250), '2.0.0');
  assert.equal(defaultEnhancedStatus(221), '2.0.0');
  assert.equal(defaultEnhancedStatus(421), '4.0.0');
  assert.equal(defaultEnhancedStatus(454), '4.0.0');
  assert.equal(defaultEnhancedStatus(550), '5.0.0');
  assert.equal(defaultEnhancedStatus(354), undefined);
  assert.equal(defaultEnhancedStatus(100), undefined);
});

test('class must agree with the reply code', () => {
  assert.equal(enhancedMatchesReply('5.1.1', 550), true);
  assert.equal(enhancedMatchesReply('4.1.1', 550), false);
  assert.equal(enhancedMatchesReply('2.0.0', 250), true);
});
