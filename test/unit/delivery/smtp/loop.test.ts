import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../../src/config/load.ts';
import { checkPort, ehloLoop, greetingWarning, isSelf, loopSettings } from '../../../../src/delivery/smtp/loop.ts';
import { tempDir } from '../../../harness/cli.ts';

function settingsFor(mainCf: string, masterCf: string, local: string[]) {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), mainCf);
    writeFileSync(join(t.dir, 'master.cf'), masterCf);
    return loopSettings(loadConfig({ configDir: t.dir }), local);
  } finally {
    t.cleanup();
  }
}

test('listeners from master.cf: explicit addresses, inet_interfaces for a bare port, service names', () => {
  const s = settingsFor('myhostname = MX.Example.ORG\ninet_interfaces = 127.0.0.1, 192.0.2.50\nproxy_interfaces = 198.51.100.7\n',
    'smtp inet n - n - - smtpd\n127.0.0.3:2525 inet n - n - - smtpd\nsubmission inet n - n - - smtpd\nsmtp unix - - n - - smtp\n10026 inet n - n - - postscreen\n',
    ['192.0.2.50']);
  assert.equal(s.myhostname, 'mx.example.org');
  assert.deepEqual(s.listeners, [
    { host: '127.0.0.1', port: 25 }, { host: '192.0.2.50', port: 25 }, { host: '127.0.0.3', port: 2525 }, { host: '127.0.0.1', port: 587 }, { host: '192.0.2.50', port: 587 },
  ]);
  assert.equal(isSelf(s, '127.0.0.1', 25), true);
  assert.equal(isSelf(s, '::ffff:192.0.2.50', 587), true);
  assert.equal(isSelf(s, '127.0.0.3', 2525), true);
  assert.equal(isSelf(s, '127.0.0.3', 25), false);
  assert.equal(isSelf(s, '127.0.0.1', 2525), false);
  // postscreen is not run by sealpost: nobody listens on 10026.
  assert.equal(isSelf(s, '127.0.0.1', 10026), false);
  // proxy_interfaces: port 25 only (Postfix's rule).
  assert.equal(isSelf(s, '198.51.100.7', 25), true);
  assert.equal(isSelf(s, '198.51.100.7', 587), false);
});

test('a wildcard listener (inet_interfaces = all) is every address of the machine, all of 127/8 included', () => {
  const s = settingsFor('inet_interfaces = all\n', 'smtp inet n - n - - smtpd\n', ['192.0.2.50', 'fd00::2']);
  for (const a of ['127.0.0.1', '127.9.8.7', '::1', '192.0.2.50', 'fd00::2']) assert.equal(isSelf(s, a, 25), true, a);
  for (const a of ['192.0.2.51', '2001:db8::1']) assert.equal(isSelf(s, a, 25), false, a);
  assert.equal(isSelf(s, '127.0.0.1', 26), false);
  const v4 = settingsFor('', '0.0.0.0:25 inet n - n - - smtpd\n', []);
  assert.equal(isSelf(v4, '127.0.0.1', 25), true);
  assert.equal(isSelf(v4, '::1', 25), false);
});

test('EHLO naming myhostname: 5.4.6 at a best MX, 4.4.6 at a backup, on port 25 and on our own ports only', () => {
  const s = settingsFor('myhostname = mx.example.org\ninet_interfaces = 127.0.0.1\n', '2525 inet n - n - - smtpd\n', []);
  assert.equal(checkPort(s, 25), true);
  assert.equal(checkPort(s, 2525), true);
  assert.equal(checkPort(s, 587), false);
  const best = ehloLoop(s, 'MX.example.org', { port: 25 }, '[relay.example]', 'relay.example[192.0.2.9]:25', 'relay.example[192.0.2.9]:25');
  assert.deepEqual(best, {
    warning: 'host relay.example[192.0.2.9]:25 replied to HELO/EHLO with my own hostname mx.example.org',
    trouble: { scope: 'site', dsn: '5.4.6', reason: 'mail for [relay.example] loops back to myself', relay: 'relay.example[192.0.2.9]:25', throttle: true },
  });
  assert.equal(ehloLoop(s, 'mx.example.org', { port: 25, bestMx: false }, 'example.com', 'r', 'r')?.trouble.dsn, '4.4.6');
  assert.equal(ehloLoop(s, 'mx.example.org', { port: 587 }, 'example.com', 'r', 'r'), undefined);
  assert.equal(ehloLoop(s, 'other.example.org', { port: 25 }, 'example.com', 'r', 'r'), undefined);
  assert.equal(greetingWarning(s, 'mx.example.org ESMTP ready', 'h[1.2.3.4]:2525', 2525), 'host h[1.2.3.4]:2525 greeted me with my own hostname mx.example.org');
  assert.equal(greetingWarning(s, 'mx.example.org ESMTP ready', 'h[1.2.3.4]:587', 587), undefined);
});
