/**
 * check-tls.test.ts — the TLS checks of check/start/reload: an unknown
 * smtp_tls_security_level is an error naming file, line and the valid
 * values (also in a service's -o); policy table entries smtp(8) would refuse
 * are warnings in Postfix's words with file and line, for every table type
 * whose source is at hand; the relayhost trap is reported for the entries it
 * hides, not for the ones transport_maps routes on their own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfiguration } from '../../../src/daemon/check.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';

function setup(mainCf: string, masterCf = '127.0.0.1:2525 inet n - n - - smtpd\n') {
  const t = tempDir();
  const etc = join(t.dir, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'main.cf'), `queue_directory = ${t.dir}/q\ndata_directory = ${t.dir}/d\n${mainCf}`);
  writeFileSync(join(etc, 'master.cf'), masterCf);
  return { ...t, etc };
}

test('an unknown smtp_tls_security_level is an error with file, line and the valid values', async () => {
  const t = setup('smtp_tls_security_level = secur\n');
  try {
    const r = await checkConfiguration(t.etc);
    assert.deepEqual(r.errors, [
      `${t.etc}/main.cf, line 3: invalid tls security level: "secur" for parameter "smtp_tls_security_level": specify one of none, may, encrypt, fingerprint, dane, dane-only, verify, secure, or leave it empty for none`,
    ]);
    const cli = await sealpost(['check', '-c', t.etc]);
    assert.equal(cli.code, 1);
    assert.match(cli.stderr, /error: .*main\.cf, line 3: invalid tls security level: "secur"/);
  } finally {
    t.cleanup();
  }
});

test('a bad level in a delivery service\'s -o names master.cf; levels are case-insensitive; empty is fine', async () => {
  const t = setup('smtp_tls_security_level = Encrypt\n', '127.0.0.1:2525 inet n - n - - smtpd\nrelay unix - - n - - smtp -o smtp_tls_security_level=verfy\n');
  try {
    const r = await checkConfiguration(t.etc);
    assert.equal(r.errors.length, 1, r.errors.join('\n'));
    assert.match(r.errors[0]!, new RegExp(`^${t.etc}/master\\.cf, line 2: service "relay": invalid tls security level: "verfy"`));
  } finally {
    t.cleanup();
  }
  const e = setup('smtp_tls_security_level =\n');
  try {
    assert.deepEqual((await checkConfiguration(e.etc)).errors, []);
  } finally {
    e.cleanup();
  }
});

test('policy entries smtp(8) would refuse: Postfix\'s warning text with file and line, per table type', async () => {
  const t = setup(
    [
      'smtp_tls_policy_maps = hash:${config_directory}/tls_policy, texthash:${config_directory}/tp2,',
      '  pcre:${config_directory}/tp.pcre, inline:{ {x.example=encrypt ciphers=} }, static:{encrypt match=x}',
      '',
    ].join('\n'),
  );
  try {
    writeFileSync(join(t.etc, 'tls_policy'), '# comment\nexample.com secure\npartner.net  secur match=x\n[mx.example.org]:25 encrypt bogus=1\n');
    assert.equal((await sealpost(['postmap', '-c', t.etc, `hash:${t.etc}/tls_policy`])).code, 0);
    writeFileSync(join(t.etc, 'tp2'), 'b.example may\n  match=nexthop\n');
    writeFileSync(join(t.etc, 'tp.pcre'), '/\\.gov$/ secure servername=bad_name!\n/^(.*)$/ $1\n/x/ none ciphers=high\n');
    const r = await checkConfiguration(t.etc);
    assert.deepEqual(r.errors, []);
    const deferred = ' (mail to this next hop is deferred with "client TLS configuration problem" until the entry is fixed)';
    assert.deepEqual(r.warnings, [
      `${t.etc}/tls_policy, line 3: smtp_tls_policy_maps, next-hop destination "partner.net": invalid security level "secur"${deferred}`,
      `${t.etc}/tls_policy, line 4: smtp_tls_policy_maps, next-hop destination "[mx.example.org]:25": invalid attribute name: "bogus"${deferred}`,
      `${t.etc}/tp2, line 1: smtp_tls_policy_maps, next-hop destination "b.example": attribute "match" invalid at security level "may"${deferred}`,
      `${t.etc}/tp.pcre, line 1: smtp_tls_policy_maps, next-hop destination "/\\.gov$/": "servername=bad_name!" specifies an invalid hostname${deferred}`,
      `${t.etc}/tp.pcre, line 3: smtp_tls_policy_maps, next-hop destination "/x/": ignoring attribute "ciphers=high" with TLS disabled`,
      `inline:{ {x.example=encrypt ciphers=} }: smtp_tls_policy_maps, next-hop destination "x.example": attribute "ciphers" has empty value${deferred}`,
      `static:{encrypt match=x}: smtp_tls_policy_maps, next-hop destination "(every next hop)": attribute "match" invalid at security level "encrypt"${deferred}`,
    ]);
  } finally {
    t.cleanup();
  }
});

test('the relayhost trap: entries hidden behind the relayhost are reported, directly routed ones are not', async () => {
  const t = setup(
    [
      'relayhost = [relay.example.net]:587',
      'transport_maps = inline:{ direct.example=smtp: }',
      'mydestination = localhost',
      'smtp_tls_policy_maps = texthash:${config_directory}/tls_policy',
      '',
    ].join('\n'),
  );
  try {
    writeFileSync(join(t.etc, 'tls_policy'), 'example.com secure\ndirect.example encrypt\n[relay.example.net]:587 encrypt\n.sub.example verify\nlocalhost none\n');
    const r = await checkConfiguration(t.etc);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.warnings, [
      `${t.etc}/tls_policy, line 1: smtp_tls_policy_maps entry "example.com secure" is never used: mail for example.com goes to [relay.example.net]:587 (relayhost), ` +
        'and the policy table is looked up by next hop; route example.com on its own ("example.com  smtp:" in transport_maps) ' +
        'or give "[relay.example.net]:587" the policy it needs ("sealpost tls explain postmaster@example.com" shows the route)',
    ]);
  } finally {
    t.cleanup();
  }
  const direct = setup('smtp_tls_policy_maps = inline:{ example.com=secure }\n');
  try {
    assert.deepEqual((await checkConfiguration(direct.etc)).warnings, []);
  } finally {
    direct.cleanup();
  }
});
