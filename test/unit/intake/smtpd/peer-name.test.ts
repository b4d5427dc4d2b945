import { test } from 'node:test';
import assert from 'node:assert/strict';
import { peerName, systemPeerResolver, type PeerResolver } from '../../../../src/intake/smtpd/peer-name.ts';

function resolver(reverse: Record<string, string>, forward: Record<string, string[] | string>): PeerResolver {
  return {
    reverse: async (a) => (a in reverse ? { ok: reverse[a]! } : { error: 'Name or service not known' }),
    forward: async (n) => {
      const f = forward[n];
      return f === undefined ? { error: 'Name or service not known' } : typeof f === 'string' ? { error: f } : { ok: f };
    },
  };
}

test('reverse name confirmed by a forward lookup; unknown otherwise, with Postfix warnings', async () => {
  const r = resolver(
    { '192.0.2.1': 'mail.example.com', '192.0.2.2': 'forged.example.com', '192.0.2.3': 'gone.example.com', '192.0.2.4': '192.0.2.4', '2001:db8::1': 'v6.example.com' },
    { 'mail.example.com': ['198.51.100.7', '192.0.2.1'], 'forged.example.com': ['198.51.100.9'], 'gone.example.com': 'Temporary failure in name resolution', 'v6.example.com': ['2001:DB8::1'] },
  );
  const warnings: string[] = [];
  const name = (a: string) => peerName(a, { enabled: true, resolver: r, warn: (w) => warnings.push(w) });
  assert.equal(await name('192.0.2.1'), 'mail.example.com');
  assert.equal(await name('::ffff:192.0.2.1'), 'mail.example.com');
  assert.equal(await name('2001:db8::1'), 'v6.example.com');
  assert.equal(await name('192.0.2.2'), 'unknown');
  assert.equal(await name('192.0.2.3'), 'unknown');
  assert.equal(await name('192.0.2.4'), 'unknown', 'a numeric name is no name');
  assert.equal(await name('192.0.2.9'), 'unknown', 'no reverse name');
  assert.deepEqual(warnings, [
    'hostname forged.example.com does not resolve to address 192.0.2.2',
    'hostname gone.example.com does not resolve to address 192.0.2.3: Temporary failure in name resolution',
  ]);
});

test('smtpd_peername_lookup = no, and a resolver that hangs: unknown', async () => {
  const never: PeerResolver = { reverse: () => new Promise(() => undefined), forward: () => new Promise(() => undefined) };
  assert.equal(await peerName('192.0.2.1', { enabled: false, resolver: resolver({ '192.0.2.1': 'x.example' }, { 'x.example': ['192.0.2.1'] }), warn: () => undefined }), 'unknown');
  assert.equal(await peerName('192.0.2.1', { enabled: true, resolver: never, timeoutMs: 20, warn: () => undefined }), 'unknown');
});

test('the system resolver: 127.0.0.1 is named as /etc/hosts names it (localhost on Debian)', async () => {
  // What the C library says for 127.0.0.1 is the expectation: the test checks the path, not the machine.
  const reverse = await systemPeerResolver.reverse('127.0.0.1');
  assert.ok('ok' in reverse, 'Debian lists 127.0.0.1 in /etc/hosts');
  const forward = await systemPeerResolver.forward(reverse.ok, 4);
  const expected = 'ok' in forward && forward.ok.includes('127.0.0.1') ? reverse.ok : 'unknown';
  assert.equal(await peerName('127.0.0.1', { enabled: true, warn: () => undefined }), expected);
});
