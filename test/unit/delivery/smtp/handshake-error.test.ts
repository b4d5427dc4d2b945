/**
 * handshake-error.test.ts — tls_client.c's `SSL_connect error to ...` lines
 * from what Node says about a failed handshake: Node's own errors (taken
 * from a real handshake against a server that answers with plain text), the
 * errno and end-of-stream forms, and the timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { opensslProblems, sslConnectErrorLines } from '../../../../src/delivery/smtp/handshake-error.ts';

const RELAY = 'mx.example[192.0.2.1]:25';

test('OpenSSL errors (Node ERR_print_errors form): "-1", then one `TLS library problem` per error in Postfix\'s form', () => {
  const error = Object.assign(new Error('80AC2CED9F7F0000:error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 70\n'), {
    code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', library: 'SSL routines', reason: 'tlsv1 alert protocol version',
  });
  assert.deepEqual(sslConnectErrorLines(RELAY, { kind: 'error', error }), [
    'SSL_connect error to mx.example[192.0.2.1]:25: -1',
    'warning: TLS library problem: error:0A00042E:SSL routines::tlsv1 alert protocol version:../ssl/record/rec_layer_s3.c:1601:SSL alert number 70:',
  ]);
  // Without data: "%s:%s:%d:" (tls_misc.c tls_print_errors()); several errors in queue order.
  assert.deepEqual(opensslProblems('1:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record/ssl3_record.c:350:\n2:error:0A000126:SSL routines::unexpected eof while reading:../ssl/record/rec_layer_s3.c:308:\n'), [
    'TLS library problem: error:0A00010B:SSL routines::wrong version number:../ssl/record/ssl3_record.c:350:',
    'TLS library problem: error:0A000126:SSL routines::unexpected eof while reading:../ssl/record/rec_layer_s3.c:308:',
  ]);
  // An OpenSSL error whose message Node worded itself.
  assert.deepEqual(sslConnectErrorLines(RELAY, { kind: 'error', error: Object.assign(new Error('no ciphers available'), { code: 'ERR_SSL_NO_CIPHERS_AVAILABLE' }) }), [
    'SSL_connect error to mx.example[192.0.2.1]:25: -1',
    'warning: TLS library problem: no ciphers available',
  ]);
});

test('a failed system call is its strerror text; an end of stream is "lost connection"; the timeout is "Connection timed out"', () => {
  const sys = (code: string, syscall: string) => Object.assign(new Error(`${syscall} ${code}`), { code, syscall });
  assert.deepEqual(sslConnectErrorLines(RELAY, { kind: 'error', error: sys('ECONNRESET', 'read') }), ['SSL_connect error to mx.example[192.0.2.1]:25: Connection reset by peer']);
  assert.deepEqual(sslConnectErrorLines(RELAY, { kind: 'error', error: sys('EPIPE', 'write') }), ['SSL_connect error to mx.example[192.0.2.1]:25: Broken pipe']);
  // Node's own end-of-stream error during the handshake (a close, and a reset as Node reports it).
  const eof = Object.assign(new Error('Client network socket disconnected before secure TLS connection was established'), { code: 'ECONNRESET' });
  assert.deepEqual(sslConnectErrorLines(RELAY, { kind: 'error', error: eof }), ['SSL_connect error to mx.example[192.0.2.1]:25: lost connection']);
  assert.deepEqual(sslConnectErrorLines(RELAY, { kind: 'timeout' }), ['SSL_connect error to mx.example[192.0.2.1]:25: Connection timed out']);
});

test('a real handshake against a server that answers in plain text: Node\'s error becomes OpenSSL\'s "wrong version number"', async () => {
  const server = createServer((s) => {
    s.once('data', () => s.write('garbage\r\n'));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const error = await new Promise<unknown>((resolve) => {
      const ts = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      ts.once('error', (e) => {
        ts.destroy();
        resolve(e);
      });
      ts.once('secureConnect', () => resolve(undefined));
    });
    const lines = sslConnectErrorLines(RELAY, { kind: 'error', error });
    assert.equal(lines[0], 'SSL_connect error to mx.example[192.0.2.1]:25: -1');
    assert.match(lines[1] ?? '', /^warning: TLS library problem: error:0A00010B:SSL routines::wrong version number:\.\.\/ssl\/record\/ssl3_record\.c:\d+:$/);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
