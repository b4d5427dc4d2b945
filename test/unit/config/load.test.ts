/**
 * Unit tests for load.ts: config directory resolution, defaults, overrides, typed getters, warnings and load-time errors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deprecations, expandValue, loadConfig, resolveConfigDir } from '../../../src/config/load.ts';
import { DEFAULT_CONFIG_DIR } from '../../../src/config/types.ts';
import { paramSpec } from '../../../src/config/params.ts';
import { ConfigError } from '../../../src/lib/errors.ts';
import { tempDir } from '../../harness/cli.ts';

function withMain(text: string | undefined, fn: (dir: string) => void): void {
  const { dir, cleanup } = tempDir();
  try {
    if (text !== undefined) writeFileSync(join(dir, 'main.cf'), text);
    fn(dir);
  } finally {
    cleanup();
  }
}

test('resolveConfigDir: -c wins, then MAIL_CONFIG, then the default', () => {
  assert.equal(resolveConfigDir('/a', { MAIL_CONFIG: '/b' }), '/a');
  assert.equal(resolveConfigDir(undefined, { MAIL_CONFIG: '/b' }), '/b');
  assert.equal(resolveConfigDir(undefined, {}), DEFAULT_CONFIG_DIR);
});

test('no main.cf: built-in defaults at compatibility level 3.11 (TLS may, no open relay)', () => {
  withMain(undefined, (dir) => {
    const c = loadConfig({ configDir: dir });
    assert.equal(c.hasMainCf, false);
    assert.equal(c.get('compatibility_level'), '3.11');
    assert.equal(c.get('smtp_tls_security_level'), 'may');
    assert.deepEqual(c.getList('smtpd_relay_restrictions'), ['permit_mynetworks', 'permit_sasl_authenticated', 'defer_unauth_destination']);
    assert.equal(c.get('mynetworks_style'), 'host');
    assert.equal(c.get('smtpd_forbid_bare_newline'), 'normalize');
    assert.equal(c.get('config_directory'), dir);
    assert.equal(c.get('queue_directory'), '/var/spool/sealpost');
    assert.equal(c.get('sealpost_maillog_format'), 'postfix');
    assert.equal(c.raw('no_such_param'), undefined);
    assert.equal(c.get('no_such_param'), '');
  });
});

test('main.cf values, $name expansion, overrides win, typed getters with default units', () => {
  withMain('compatibility_level = 3.6\nmyhostname = mx.example.com\nmaximal_queue_lifetime = 2\ndelay_warning_time = 30m\nsmtp_tls_loglevel = 1\nmessage_size_limit = 1000\nsmtp_use_tls = YES\nrelayhost = [$myhostname]:587, backup\n', (dir) => {
    const c = loadConfig({ configDir: dir, overrides: { smtp_tls_loglevel: '2' } });
    assert.equal(c.hasMainCf, true);
    assert.equal(c.get('smtp_tls_security_level'), '');
    assert.equal(c.get('mydomain'), 'example.com');
    assert.equal(c.getTime('maximal_queue_lifetime'), 2 * 86400);
    assert.equal(c.getTime('delay_warning_time'), 1800);
    assert.equal(c.getTime('minimal_backoff_time'), 300);
    assert.equal(c.getInt('smtp_tls_loglevel'), 2);
    assert.equal(c.getSize('message_size_limit'), 1000);
    assert.equal(c.getBool('smtp_use_tls'), true);
    assert.equal(c.isSet('relayhost'), true);
    assert.deepEqual(c.getList('relayhost'), ['[mx.example.com]:587', 'backup']);
    // Postfix 3.11's default (mail_params.h), with ${domain_to_ascii{$mydomain}} expanded.
    assert.deepEqual(c.getList('smtp_requiretls_policy'), [
      'inline:{{example.com=opportunistic}, {.example.com=opportunistic}, {localhost=opportunistic}}',
      'cidr:{{0.0.0.0/0 opportunistic}, {::/0 opportunistic}}',
      'enforce',
    ]);
    assert.equal(expandValue(c, 'host=$myhostname ${relayhost?set}'), 'host=mx.example.com set');
    assert.deepEqual(deprecations(c), [`${dir}/main.cf, line 7: support for parameter "smtp_use_tls" will be removed; instead, specify "smtp_tls_security_level = may"`]);
  });
});

test('bad typed values are ConfigErrors naming file, line, parameter and the accepted forms', () => {
  const cases: Array<[string, string]> = [
    ['maximal_queue_lifetime = 5x', 'bad time value "5x" for parameter "maximal_queue_lifetime": use a number with an optional unit s, m, h, d or w'],
    ['smtp_tls_note_starttls_offer = maybe', 'bad boolean value "maybe" for parameter "smtp_tls_note_starttls_offer": use yes or no'],
    ['smtp_mx_address_limit = five', 'bad integer value "five" for parameter "smtp_mx_address_limit": use a whole number'],
    ['sealpost_maillog_format = xml', 'bad value "xml" for parameter "sealpost_maillog_format": use one of postfix, json'],
  ];
  for (const [line, msg] of cases) {
    withMain(`# first\n${line}\n`, (dir) => {
      assert.throws(() => loadConfig({ configDir: dir }), (e: unknown) => e instanceof ConfigError && e.message === `${dir}/main.cf, line 2: ${msg}`, line);
      assert.doesNotThrow(() => loadConfig({ configDir: dir, strictValues: false }));
    });
  }
});

test('loops and truncated references are refused at load time', () => {
  withMain('relayhost = $smtp_helo_name\nsmtp_helo_name = $relayhost\n', (dir) => {
    assert.throws(() => loadConfig({ configDir: dir }), (e: unknown) => e instanceof ConfigError && /main\.cf, line 1: bad value for parameter "relayhost": unreasonable macro call nesting/.test(e.message));
  });
  withMain('fallback_relay = ${foo\n', (dir) => {
    assert.throws(() => loadConfig({ configDir: dir }), (e: unknown) => e instanceof ConfigError && /line 1: bad value for parameter "fallback_relay": truncated macro reference/.test(e.message));
  });
});

test('warnings: unused and undefined names, duplicates, with file and line; user-defined names are fine', () => {
  withMain('foo = bar\nmine = x\nrelayhost = b\nrelayhost = $mine $nothere\n', (dir) => {
    const warnings: string[] = [];
    loadConfig({ configDir: dir, warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings.sort(), [
      `${dir}/main.cf, line 1: unused parameter: foo=bar`,
      `${dir}/main.cf, line 4: overriding earlier entry: relayhost=b`,
      `${dir}/main.cf, line 4: undefined parameter: nothere`,
    ]);
  });
  withMain('relayhost = $nothere\n', (dir) => {
    const warnings: string[] = [];
    loadConfig({ configDir: dir, warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, [`${dir}/main.cf, line 1: undefined parameter: nothere`]);
  });
});

test('a missing configuration directory is a clear ConfigError', () => {
  assert.throws(() => loadConfig({ configDir: '/nonexistent/sealpost' }), (e: unknown) => e instanceof ConfigError && /does not exist: create it/.test(e.message));
});

test('the registry is built once and shared by every load (no wall-clock assertion)', () => {
  withMain('myhostname = a.example\n', (dir) => {
    const a = loadConfig({ configDir: dir });
    const b = loadConfig({ configDir: dir });
    assert.equal(a.spec('smtp_tls_security_level'), b.spec('smtp_tls_security_level'));
    assert.equal(paramSpec('smtp_tls_security_level'), a.spec('smtp_tls_security_level'));
    assert.equal(b.get('myhostname'), 'a.example');
  });
});

