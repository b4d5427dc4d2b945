/**
 * Unit tests for master-cf.ts: service lines, -o normalisation, postconf -M layout, field errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_MASTER_CF, formatMasterEntry, parseMasterCf, splitQuoted } from '../../../src/config/master-cf.ts';
import { ConfigError } from '../../../src/lib/errors.ts';

const TEXT = [
  '# comment',
  'smtp      inet  n       -       y       -       -       smtpd',
  'submission inet n       -       y       -       -       smtpd',
  '  -o syslog_name=postfix/submission',
  '  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }',
  '127.0.0.1:10025 inet n - n - - smtpd -oa=b',
  '[::1]:2525 inet n - n - - smtpd -vo z=w { arg with space } -o not=override',
  'pickup    unix  n       -       y       60      1       pickup',
  '',
].join('\n');

test('services, endpoints, normalised -o overrides and grouped arguments', () => {
  const s = parseMasterCf(TEXT, '/m');
  assert.deepEqual(s.map((x) => [x.name, x.host, x.service, x.type, x.command, x.line]), [
    ['smtp', undefined, 'smtp', 'inet', 'smtpd', 2],
    ['submission', undefined, 'submission', 'inet', 'smtpd', 3],
    ['127.0.0.1:10025', '127.0.0.1', '10025', 'inet', 'smtpd', 6],
    ['[::1]:2525', '::1', '2525', 'inet', 'smtpd', 7],
    ['pickup', undefined, 'pickup', 'unix', 'pickup', 8],
  ]);
  assert.deepEqual(s[1]!.overrides, [['syslog_name', 'postfix/submission'], ['smtpd_client_restrictions', 'permit_sasl_authenticated, reject']]);
  assert.deepEqual(s[2]!.args, ['-o', 'a=b']);
  assert.deepEqual(s[3]!.args, ['-v', '-o', 'z=w', 'arg with space', '-o', 'not=override']);
  assert.deepEqual(s[3]!.overrides, [['z', 'w']]);
  assert.equal(s[4]!.wakeup, '60');
  assert.deepEqual(splitQuoted('a {b c} d{e f}g'), ['a', '{b c}', 'd{e f}g']);
});

test('postconf -M layout: columns, -o on the same line; -Mf folds each -o', () => {
  const [smtp, sub] = parseMasterCf(TEXT, '/m');
  assert.equal(formatMasterEntry(smtp!, false), 'smtp       inet  n       -       y       -       -       smtpd\n');
  assert.equal(
    formatMasterEntry(sub!, true),
    'submission inet  n       -       y       -       -       smtpd\n    -o syslog_name=postfix/submission\n    -o {smtpd_client_restrictions=permit_sasl_authenticated, reject}\n',
  );
});

test('field errors name file and line', () => {
  const cases: Array<[string, RegExp]> = [
    ['smtp inet n - y - -\n', /^\/m, line 1: bad field count$/],
    ['smtp tcp n - y - - smtpd\n', /invalid type field "tcp"/],
    ['smtp inet x - y - - smtpd\n', /invalid private field "x"/],
    ['smtp inet n - y soon - smtpd\n', /invalid wakeup field "soon"/],
    ['smtp inet n - y - many smtpd\n', /invalid maxproc field "many"/],
    ['smtp inet n - y - - smtpd -o noequals\n', /missing '=' after attribute name/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseMasterCf(text, '/m'), (e: unknown) => e instanceof ConfigError && re.test(e.message), text);
});

test('the embedded master.cf has one smtp listener and the delivery agents; submission and submissions are commented out', () => {
  const s = parseMasterCf(DEFAULT_MASTER_CF, '/m');
  assert.deepEqual(
    s.map((x) => `${x.name}/${x.type}/${x.command}`),
    ['smtp/inet/smtpd', 'smtp/unix/smtp', 'relay/unix/smtp', 'error/unix/error', 'retry/unix/error', 'discard/unix/discard'],
  );
  assert.deepEqual(s.find((x) => x.name === 'relay')?.overrides, [['syslog_name', 'sealpost/$service_name']]);
  assert.match(DEFAULT_MASTER_CF, /^#submission inet/m);
  assert.match(DEFAULT_MASTER_CF, /^#submissions +inet/m);
});
