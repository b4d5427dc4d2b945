/**
 * sendmail-options.test.ts — the sendmail(1) command line as Postfix 3.11's
 * sendmail.c parses it: POSIX option order, -c ignored, -C, the special
 * arguments (-q, -V xy, -XV), -O with its main.cf switches, the 3.11 texts
 * that Debian's 3.7 words differently (so they are not in the diff test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configDirOfC, parseNotify, parseSendmailArgs, prescanConfigDir, SendmailFatal, senderAddress } from '../../../src/cli/sendmail-options.ts';

test('-c takes no argument: parsing stops at the first operand, which is a recipient', () => {
  const o = parseSendmailArgs(['-c', '/tmp/DIR', '-f', 'me@x', 'bob@y'], 'sendmail');
  assert.equal(o.mode, 'enqueue');
  assert.equal(o.sender, undefined);
  assert.deepEqual(o.operands, ['/tmp/DIR', '-f', 'me@x', 'bob@y']);
  const p = parseSendmailArgs(['-cif', 'me@x', '--', '-dash@y'], 'sendmail');
  assert.equal(p.sender, 'me@x');
  assert.equal(p.ignoreDots, true);
  assert.deepEqual(p.operands, ['-dash@y']);
});

test('-C names main.cf or its directory; the last -C wins; else MAIL_CONFIG', () => {
  assert.equal(configDirOfC('/etc/other/main.cf'), '/etc/other');
  assert.equal(configDirOfC('/etc/other'), '/etc/other');
  assert.equal(configDirOfC('main.cf'), '.');
  assert.equal(prescanConfigDir(['-C', '/a', '-t', '-C/b/main.cf', 'x@y', '-C', '/ignored'], {}), '/b');
  assert.equal(prescanConfigDir(['-q', '-C', '/a'], {}), '/a');
  assert.equal(prescanConfigDir(['x@y'], { MAIL_CONFIG: '/env' }), '/env');
  assert.equal(prescanConfigDir([], {}), undefined);
});

test('modes: program name, -bX, -q, -I; qtime outside daemon mode', () => {
  assert.equal(parseSendmailArgs([], 'mailq').mode, 'mailq');
  assert.equal(parseSendmailArgs([], 'newaliases').mode, 'newaliases');
  assert.equal(parseSendmailArgs(['-bp'], 'newaliases').mode, 'mailq');
  assert.equal(parseSendmailArgs(['-q'], 'sendmail').mode, 'flush');
  assert.equal(parseSendmailArgs(['-bs'], 'sendmail').mode, 'user-smtp');
  assert.equal(parseSendmailArgs(['-bl'], 'sendmail').mode, 'daemon');
  const d = parseSendmailArgs(['-bd', '-q'], 'sendmail');
  assert.equal(d.mode, 'daemon');
  assert.deepEqual(d.warnings, ['ignoring -q option in daemon mode']);
  assert.equal(parseSendmailArgs(['-qRexample.com'], 'sendmail').siteToFlush, 'example.com');
  assert.equal(parseSendmailArgs(['-qIABCDEF'], 'sendmail').idToFlush, 'ABCDEF');
  // -q30m: "exit 0 now", even with operands.
  assert.equal(parseSendmailArgs(['-q30m', 'x@y'], 'sendmail').queueInterval, '30m');
});

test('-O requiretls / smtputf8 follow main.cf (Postfix 3.11 texts)', () => {
  const on = { requiretlsEnable: true, smtputf8Enable: true, verpFilter: '-=+', verpDefault: '+=' };
  const a = parseSendmailArgs(['-O', 'RequireTLS=yes', '-O', 'smtputf8=No', '-O', 'other=1', 'x@y'], 'sendmail', on);
  assert.equal(a.requireTls, true);
  assert.equal(a.smtputf8, false);
  assert.deepEqual(a.warnings, []);
  const b = parseSendmailArgs(['-O', 'requiretls=maybe', '-O', 'requiretls', 'x@y'], 'sendmail', on);
  assert.equal(b.requireTls, undefined);
  assert.deepEqual(b.warnings, ["bad -O option: 'requiretls=maybe' -- ignored", "bad -O option: 'requiretls' -- ignored"]);
  const off = { ...on, requiretlsEnable: false, smtputf8Enable: false };
  const c = parseSendmailArgs(['-O', 'requiretls=yes', '-O', 'smtputf8=yes', 'x@y'], 'sendmail', off);
  assert.equal(c.requireTls, undefined);
  assert.deepEqual(c.warnings, [
    "Ignoring option '-O requiretls=yes, because the configuration is 'requiretls_enable = no'",
    "'-O smtputf8=yes' was requested, but the configuration is 'smtputf8_enable = no'",
  ]);
});

test('-N, -R, -V: Postfix 3.11 checks and warnings', () => {
  const w: string[] = [];
  assert.deepEqual(parseNotify('success, DELAY,failure', w), ['SUCCESS', 'DELAY', 'FAILURE']);
  assert.deepEqual(parseNotify('never', w), ['NEVER']);
  assert.equal(parseNotify('never,success', w), undefined);
  assert.deepEqual(w, []);
  const o = parseSendmailArgs(['-N', 'never,success', '-R', 'Hdrs', '-V', `${'e'.repeat(101)}`, 'x@y'], 'sendmail');
  assert.equal(o.notify, undefined);
  assert.equal(o.ret, 'HDRS');
  assert.equal(o.envid, undefined);
  assert.deepEqual(o.warnings, ["bad -N option value: 'never,success' -- ignored", 'too long -V option value -- ignored']);
  assert.deepEqual(parseSendmailArgs(['-V', 'a\tb', 'x@y'], 'sendmail').warnings, ['bad syntax in -V option value -- ignored']);
  assert.equal(parseSendmailArgs(['-V', 'env-1', 'x@y'], 'sendmail').envid, 'env-1');
});

test('-V xy and -Vxy are the old VERP spellings; -XV sets VERP', () => {
  const o = parseSendmailArgs(['-V', '+=', 'x@y'], 'sendmail');
  assert.equal(o.verp, '+=');
  assert.deepEqual(o.operands, ['+=', 'x@y']);
  assert.deepEqual(o.warnings, ['option -V is deprecated with Postfix 2.3; specify -XV instead']);
  assert.equal(parseSendmailArgs(['-V-=', 'x@y'], 'sendmail').verp, '-=');
  assert.equal(parseSendmailArgs(['-XV', 'x@y'], 'sendmail').verp, '+=');
});

test('fatal errors: Postfix texts, exit 75, getopt line first, earlier warnings kept', () => {
  const fatal = (args: string[]): SendmailFatal => {
    try {
      parseSendmailArgs(args, 'sendmail');
    } catch (err) {
      assert.ok(err instanceof SendmailFatal);
      assert.equal(err.exitCode, 75);
      return err;
    }
    assert.fail(`no fatal for ${args.join(' ')}`);
  };
  assert.equal(fatal(['-z']).before, "invalid option -- 'z'");
  assert.equal(fatal(['-z']).message, 'usage: sendmail [options]');
  assert.equal(fatal(['-tf']).before, "option requires an argument -- 'f'");
  assert.equal(fatal(['-n']).message, '-n option not supported');
  assert.equal(fatal(['-bv', '-t', 'x@y']).message, '-t option cannot be used with -bv');
  assert.equal(fatal(['-bs', 'x@y']).message, 'stand-alone mode requires no recipient');
  const w = fatal(['-R', 'x', '-n']);
  assert.deepEqual(w.warnings, ['bad -R option value -- ignored']);
});

test('-f: the first address of the list; more than one is malformed', () => {
  assert.deepEqual(senderAddress('<>'), { address: '', malformed: false });
  assert.deepEqual(senderAddress('Me <me@x>'), { address: 'me@x', malformed: false });
  assert.deepEqual(senderAddress('a@x, b@x'), { address: 'a@x', malformed: true });
});
