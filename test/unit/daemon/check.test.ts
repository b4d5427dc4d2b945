import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfiguration, firstError, looksLikeTable } from '../../../src/daemon/check.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';

function setup(mainCf: string, masterCf = '127.0.0.1:2525 inet n - n - - smtpd\n') {
  const t = tempDir();
  const etc = join(t.dir, 'etc');
  mkdirSync(etc);
  writeFileSync(join(etc, 'main.cf'), `queue_directory = ${t.dir}/q\ndata_directory = ${t.dir}/d\n${mainCf}`);
  writeFileSync(join(etc, 'master.cf'), masterCf);
  return { ...t, etc };
}

test('mixed lists: which entries are tables', () => {
  assert.equal(looksLikeTable('hash:/etc/sealpost/relay'), true);
  assert.equal(looksLikeTable('cdb:/x'), true);
  assert.equal(looksLikeTable('cidr:/etc/sealpost/nets'), true);
  assert.equal(looksLikeTable('127.0.0.0/8'), false);
  assert.equal(looksLikeTable('[::1]/128'), false);
  assert.equal(looksLikeTable('fe80::1/64'), false);
  assert.equal(looksLikeTable('example.com'), false);
});

test('a clean configuration with tables: no errors, each table listed once with its users', async () => {
  const t = setup('smtp_tls_policy_maps = texthash:${config_directory}/tls_policy\ntransport_maps = inline:{example.com=smtp:}\nmynetworks = 127.0.0.0/8, cidr:${config_directory}/nets\n');
  try {
    writeFileSync(join(t.etc, 'tls_policy'), 'example.com encrypt\n');
    writeFileSync(join(t.etc, 'nets'), '192.0.2.0/24 OK\n');
    const r = await checkConfiguration(t.etc, { directories: true });
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.tables.map((x) => [x.spec, x.usedBy]),
      [
        [`texthash:${t.etc}/tls_policy`, ['smtp_tls_policy_maps']],
        ['inline:{example.com=smtp:}', ['transport_maps']],
        [`cidr:${t.etc}/nets`, ['mynetworks']],
      ],
    );
    assert.deepEqual(r.endpoints.map((e) => e.key), ['127.0.0.1:2525@127.0.0.1:2525']);
    assert.deepEqual(r.directories.map((d) => d.state), ['missing', 'missing']);
    assert.equal(firstError(r), undefined);
  } finally {
    t.cleanup();
  }
});

test('errors: a missing table file names the parameter and line; a bad -o value names master.cf', async () => {
  const t = setup('relayhost =\nsmtp_tls_policy_maps = hash:/nonexistent/tls_policy\n', '127.0.0.1:2525 inet n - n - - smtpd -o smtpd_timeout=banana\n');
  try {
    const r = await checkConfiguration(t.etc);
    assert.equal(r.errors.length, 2, r.errors.join('\n'));
    assert.match(r.errors.find((e) => e.includes('banana'))!, new RegExp(`^${t.etc}/master\\.cf, line 1: service "127\\.0\\.0\\.1:2525": .*smtpd_timeout`));
    assert.match(r.errors.find((e) => e.includes('tls_policy'))!, new RegExp(`^${t.etc}/main\\.cf, line 4: smtp_tls_policy_maps: .*/nonexistent/tls_policy`));
    assert.match(firstError(r)!.message, /\(and 1 more: run "sealpost check"\)$/);
  } finally {
    t.cleanup();
  }
});

test('sealpost check: exit status, warnings and the -v summary', async () => {
  const t = setup('smtp_tls_security_level = encrypt\nbogus_parameter = 1\n');
  try {
    const ok = await sealpost(['check', '-v', '-c', t.etc]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /^sealpost\/check: warning: .*main\.cf, line 4: unused parameter: bogus_parameter=1$/m);
    assert.match(ok.stdout, new RegExp(`^config directory: ${t.etc}$`, 'm'));
    assert.match(ok.stdout, /^main\.cf: .* \(found\)$/m);
    assert.match(ok.stdout, /^smtp_tls_security_level = encrypt$/m);
    assert.match(ok.stdout, /^listener: 127\.0\.0\.1:2525 \(smtpd; master\.cf line 1\)$/m);
    assert.match(ok.stdout, /^daemon: not running$/m);
    assert.match(ok.stdout, /^result: OK, 3 warnings$/m);
    writeFileSync(join(t.etc, 'main.cf'), 'transport_maps = nosuchtype:/x\n');
    const bad = await sealpost(['check', '-c', t.etc]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^sealpost\/check: error: .*main\.cf, line 1: transport_maps: unsupported dictionary type: nosuchtype/m);
    assert.equal(bad.stdout, '');
  } finally {
    t.cleanup();
  }
});

test('relayhost and smtp_fallback_relay entries the SMTP client cannot parse are warned about with file, line and what is wrong', async () => {
  const { etc, cleanup } = setup('relayhost = [unterminated\nsmtp_fallback_relay = good.example, [192.0.2.1]:99999, [ipv6:2001:db8::1]:587\n');
  try {
    const report = await checkConfiguration(etc);
    assert.deepEqual(report.errors, []);
    const hops = report.warnings.filter((w) => /relayhost|smtp_fallback_relay/.test(w));
    assert.deepEqual(hops, [
      `${etc}/main.cf, line 3: relayhost: next-hop destination "[unterminated" has "[" without "]"; mail for it will be deferred until this is fixed`,
      `${etc}/main.cf, line 4: smtp_fallback_relay: next-hop destination "[192.0.2.1]:99999": port 99999 is out of range 1..65535; mail for it will be deferred until this is fixed`,
    ]);
  } finally {
    cleanup();
  }
});

test('a default_transport or relay_transport next hop of an SMTP service that does not parse is warned about; error: texts are not next hops', async () => {
  const { etc, cleanup } = setup('default_transport = smtp:[192.0.2.1]:0\nrelay_transport = error:mail for [relay] is not accepted\n', '127.0.0.1:2525 inet n - n - - smtpd\nsmtp unix - - n - - smtp\nerror unix - - n - - error\n');
  try {
    const report = await checkConfiguration(etc);
    const hops = report.warnings.filter((w) => /_transport:/.test(w));
    assert.deepEqual(hops, [`${etc}/main.cf, line 3: default_transport: next-hop destination "[192.0.2.1]:0": port 0 is out of range 1..65535; mail for it will be deferred until this is fixed`]);
  } finally {
    cleanup();
  }
});
