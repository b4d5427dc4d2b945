import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authorized, checkAccess, isLoopback, parseAuthFile, parseListen } from '../../../../src/reports/http/access.ts';

test('parseListen: off when empty, a bare port is loopback, host and [v6] forms, bad values name the parameter', () => {
  assert.equal(parseListen(''), undefined);
  assert.deepEqual(parseListen('9154'), { host: '127.0.0.1', port: 9154 });
  assert.deepEqual(parseListen('0.0.0.0:9100'), { host: '0.0.0.0', port: 9100 });
  assert.deepEqual(parseListen('[::1]:9154'), { host: '::1', port: 9154 });
  assert.deepEqual(parseListen('localhost'), { host: 'localhost', port: 9154 });
  assert.throws(() => parseListen('a:b:c'), /^UserError: bad sealpost_http_listen value "a:b:c": use PORT, HOST:PORT or \[IPv6\]:PORT/);
  assert.throws(() => parseListen('127.0.0.1:70000'), /bad port in sealpost_http_listen/);
});

test('loopback addresses need nothing; any other address needs credentials and TLS', () => {
  for (const h of ['127.0.0.1', '127.3.4.5', '::1', 'localhost', '::ffff:127.0.0.1']) assert.ok(isLoopback(h), h);
  for (const h of ['0.0.0.0', '::', '192.0.2.1', 'mx.example.com']) assert.ok(!isLoopback(h), h);
  assert.doesNotThrow(() => checkAccess({ host: '127.0.0.1', port: 1 }, false, false));
  assert.throws(() => checkAccess({ host: '192.0.2.1', port: 9154 }, true, false), /set sealpost_http_tls_cert_file and sealpost_http_tls_key_file/);
  assert.throws(() => checkAccess({ host: '192.0.2.1', port: 9154 }, false, true), /set sealpost_http_auth_file \(/);
  assert.doesNotThrow(() => checkAccess({ host: '192.0.2.1', port: 9154 }, true, true));
});

test('the auth file holds user:password lines and bearer tokens; checks are exact', () => {
  const c = parseAuthFile('# comment\n\nadmin:pa:ss\ntok-123\n', '/etc/sealpost/http_auth');
  assert.deepEqual(c, { basic: [{ user: 'admin', password: 'pa:ss' }], tokens: ['tok-123'] });
  const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  assert.ok(authorized(basic('admin', 'pa:ss'), c));
  assert.ok(!authorized(basic('admin', 'pa:s'), c));
  assert.ok(!authorized(basic('Admin', 'pa:ss'), c));
  assert.ok(authorized('Bearer tok-123', c));
  assert.ok(!authorized('Bearer tok-12', c));
  assert.ok(!authorized(undefined, c));
  assert.ok(!authorized('Digest x', c));
  assert.throws(() => parseAuthFile('# nothing\n', 'f'), /^UserError: f holds no credentials/);
  assert.throws(() => parseAuthFile('two words\n', 'f'), /^UserError: f, line 1: expected "user:password" or a token without blanks/);
});
