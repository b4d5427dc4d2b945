import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMasterCf } from '../../../src/config/master-cf.ts';
import { ListenerSet, listenAddresses, lookupServicesFile, resolvePort, serviceEndpoints } from '../../../src/daemon/services.ts';
import type { SmtpdContext, SmtpdListener } from '../../../src/intake/smtpd/server.ts';
import { ConfigError } from '../../../src/lib/errors.ts';

const SERVICES = 'smtp 25/tcp mail\nsubmission 587/tcp\nlmtp 24/tcp # comment\nfoo 9999/udp\n';
const v4 = { interfaces: ['all'], protocols: ['all'], hostHasIpv6: false };

test('ports: numbers, well-known names, /etc/services, unknown', () => {
  assert.equal(resolvePort('2525', () => ''), 2525);
  assert.equal(resolvePort('smtp', () => ''), 25);
  assert.equal(resolvePort('submission', () => ''), 587);
  assert.equal(resolvePort('submissions', () => ''), 465);
  assert.equal(resolvePort('smtps', () => ''), 465);
  assert.equal(resolvePort('lmtp', () => SERVICES), 24);
  assert.equal(resolvePort('foo', () => SERVICES), undefined, 'udp only');
  assert.equal(resolvePort('0', () => ''), undefined);
  assert.equal(resolvePort('70000', () => ''), undefined);
  assert.equal(lookupServicesFile(SERVICES, 'mail'), 25, 'aliases count');
});

test('inet_interfaces and inet_protocols → bind addresses', () => {
  assert.deepEqual(listenAddresses(v4), ['0.0.0.0']);
  assert.deepEqual(listenAddresses({ ...v4, hostHasIpv6: true }), ['::']);
  assert.deepEqual(listenAddresses({ interfaces: ['all'], protocols: ['ipv4'], hostHasIpv6: true }), ['0.0.0.0']);
  assert.deepEqual(listenAddresses({ interfaces: ['loopback-only'], protocols: ['all'], hostHasIpv6: true }), ['127.0.0.1', '::1']);
  assert.deepEqual(listenAddresses({ interfaces: ['192.0.2.1', '[2001:db8::1]'], protocols: ['all'], hostHasIpv6: true }), ['192.0.2.1', '2001:db8::1']);
  assert.throws(() => listenAddresses({ interfaces: ['mail.example.com'], protocols: ['all'] }), /"mail\.example\.com" is not an IP address/);
});

test('master.cf → endpoints: names, host:port, -o services, unsupported commands', () => {
  const text = [
    'smtp      inet  n - y - - smtpd',
    '127.0.0.1:10025 inet n - n - - smtpd',
    '[::1]:2525 inet n - n - - smtpd',
    'submission inet n - y - - smtpd -o smtpd_tls_security_level=encrypt',
    'pickup    unix  n - y 60 1 pickup',
    '2526      inet  n - y - 1 postscreen',
  ].join('\n');
  const services = parseMasterCf(text, '/etc/sealpost/master.cf');
  const { endpoints, warnings } = serviceEndpoints(services, v4, '/etc/sealpost/master.cf');
  assert.deepEqual(
    endpoints.map((e) => e.key),
    ['smtp@0.0.0.0:25', '127.0.0.1:10025@127.0.0.1:10025', '[::1]:2525@::1:2525', 'submission@0.0.0.0:587'],
  );
  assert.deepEqual(warnings, ['/etc/sealpost/master.cf, line 6: service "2526": command "postscreen" is not supported by sealpost; the service is not started']);
});

test('master.cf errors name the line', () => {
  const dup = parseMasterCf('smtp inet n - y - - smtpd\n25 inet n - y - - smtpd\n', 'm.cf');
  assert.throws(() => serviceEndpoints(dup, v4, 'm.cf'), (e: unknown) => e instanceof ConfigError && /^m\.cf, line 2: service "25": address 0\.0\.0\.0:25 is already used by service "smtp"/.test(e.message));
  const unknown = parseMasterCf('nosuchservice-xyz inet n - y - - smtpd\n', 'm.cf');
  assert.throws(() => serviceEndpoints(unknown, v4, 'm.cf'), /m\.cf, line 1: service "nosuchservice-xyz": unknown port or service name/);
});

test('ListenerSet: update kept, close removed, start new, report bind failures', async () => {
  const events: string[] = [];
  const fake = (key: string): SmtpdListener => ({
    address: { host: '127.0.0.1', port: 1 },
    update: () => void events.push(`update ${key}`),
    close: async () => void events.push(`close ${key}`),
  });
  const set = new ListenerSet(async (listen) => {
    if (listen.port === 9) throw Object.assign(new Error('x'), { code: 'EADDRINUSE' });
    events.push(`start ${listen.port}`);
    return fake(String(listen.port));
  });
  const services = parseMasterCf('127.0.0.1:1 inet n - n - - smtpd\n127.0.0.1:2 inet n - n - - smtpd\n127.0.0.1:9 inet n - n - - smtpd\n', 'm');
  const { endpoints } = serviceEndpoints(services, v4, 'm');
  const ctx = {} as SmtpdContext;
  const first = await set.apply([endpoints[0]!, endpoints[1]!].map((endpoint) => ({ endpoint, ctx })), { graceful: true, timeoutMs: 1 });
  assert.deepEqual(first.started, ['127.0.0.1:1@127.0.0.1:1', '127.0.0.1:2@127.0.0.1:2']);
  const second = await set.apply([endpoints[1]!, endpoints[2]!].map((endpoint) => ({ endpoint, ctx })), { graceful: true, timeoutMs: 1 });
  assert.deepEqual(second.closed, ['127.0.0.1:1@127.0.0.1:1']);
  assert.deepEqual(second.updated, ['127.0.0.1:2@127.0.0.1:2']);
  assert.deepEqual(second.failed, [{ key: '127.0.0.1:9@127.0.0.1:9', error: 'bind 127.0.0.1 port 9: Address already in use' }]);
  assert.deepEqual(events, ['start 1', 'start 2', 'close 1', 'update 2']);
  assert.deepEqual(set.keys(), ['127.0.0.1:2@127.0.0.1:2']);
});
