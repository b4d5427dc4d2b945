import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_BARE_NEWLINE_MODE,
  bareLfReply,
  bareNewlineAction,
  parseBareNewlineMode,
} from '../../../src/smtp/bare-newline.ts';

test('parseBareNewlineMode: postconf(5) values, case-insensitive, yes is an alias for normalize', () => {
  assert.equal(parseBareNewlineMode('no'), 'no');
  assert.equal(parseBareNewlineMode('Normalize'), 'normalize');
  assert.equal(parseBareNewlineMode('YES'), 'normalize');
  assert.equal(parseBareNewlineMode(' reject '), 'reject');
  assert.equal(parseBareNewlineMode('maybe'), undefined);
  assert.equal(parseBareNewlineMode(''), undefined);
  assert.equal(DEFAULT_BARE_NEWLINE_MODE, 'normalize');
});

test('command lines: only reject mode refuses a bare LF', () => {
  assert.equal(bareNewlineAction('reject', { bareLf: true }), 'reject');
  assert.equal(bareNewlineAction('reject', { bareLf: false }), 'accept');
  assert.equal(bareNewlineAction('normalize', { bareLf: true }), 'accept');
  assert.equal(bareNewlineAction('no', { bareLf: true }), 'accept');
});

test("Postfix's reply text, with smtpd_forbid_bare_newline_reject_code", () => {
  assert.equal(bareLfReply('mx.example.com'), '550 5.5.2 mx.example.com Error: bare <LF> received');
  assert.equal(bareLfReply('mx', 521), '521 5.5.2 mx Error: bare <LF> received');
});
