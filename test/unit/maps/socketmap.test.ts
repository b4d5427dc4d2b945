/**
 * socketmap.test.ts — the socketmap: client against real servers on
 * 127.0.0.1 (ephemeral port) and on a unix socket in a temp dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { parseSocketmapName, parseSocketmapReply, socketmapType } from '../../../src/maps/socketmap.ts';
import { encodeNetstring, NetstringDecoder } from '../../../src/maps/netstring.ts';
import { ConfigError } from '../../../src/lib/errors.ts';
import type { LookupTable } from '../../../src/maps/types.ts';
import { tempDir } from '../../harness/cli.ts';

interface FakeServer {
  readonly server: Server;
  readonly requests: string[];
  connections: number;
  readonly sockets: Set<Socket>;
}

/** A scripted socketmap server: the key decides the reply. */
function fakeServer(): FakeServer {
  const state: FakeServer = { server: createServer(), requests: [], connections: 0, sockets: new Set() };
  state.server.on('connection', (sock) => {
    state.connections++;
    state.sockets.add(sock);
    sock.on('close', () => state.sockets.delete(sock));
    sock.on('error', () => {});
    const dec = new NetstringDecoder(10000);
    sock.on('data', (chunk) => {
      dec.push(chunk);
      for (let f = dec.next(); f; f = dec.next()) {
        const req = f.toString();
        state.requests.push(req);
        const [name, key] = [req.slice(0, req.indexOf(' ')), req.slice(req.indexOf(' ') + 1)];
        const send = (s: string): void => void sock.write(encodeNetstring(s));
        if (name !== 'postfix') send('PERM unknown map');
        else if (key === 'dismail.de') send('OK secure match=mx1.example.com');
        else if (key === 'temp.example') send('TEMP resolver busy');
        else if (key === 'timeout.example') send('TIMEOUT upstream slow');
        else if (key === 'perm.example') send('PERM bad request');
        else if (key === 'hang.example') {
          /* never answer */
        } else if (key === 'big.example') send('OK ' + 'x'.repeat(100_001));
        else if (key === 'garbage.example') sock.write('hello world\r\n');
        else if (key === 'weird.example') send('MAYBE later');
        else if (key === 'close.example') {
          send('OK closing');
          sock.end();
        } else send('NOTFOUND ');
      }
    });
  });
  return state;
}

async function listenInet(s: FakeServer): Promise<number> {
  await new Promise<void>((r) => s.server.listen(0, '127.0.0.1', r));
  return (s.server.address() as { port: number }).port;
}

async function stop(s: FakeServer): Promise<void> {
  for (const sock of s.sockets) sock.destroy();
  await new Promise((r) => s.server.close(r));
}

async function withInet(fn: (t: LookupTable, s: FakeServer, spec: string) => Promise<void>, timeoutMs = 2000): Promise<void> {
  const s = fakeServer();
  const port = await listenInet(s);
  const name = `inet:127.0.0.1:${port}:postfix`;
  const t = await socketmapType.open(name, `socketmap:${name}`, { timeoutMs });
  try {
    await fn(t, s, `socketmap:${name}`);
  } finally {
    await t.close();
    await stop(s);
  }
}

test('descriptor and name parsing', () => {
  assert.deepEqual([socketmapType.type, socketmapType.keyKind, socketmapType.listed], ['socketmap', 'fixed', true]);
  assert.deepEqual(parseSocketmapName('inet:127.0.0.1:8461:postfix'), { kind: 'inet', host: '127.0.0.1', port: 8461, map: 'postfix' });
  assert.deepEqual(parseSocketmapName('inet:[::1]:8461:postfix'), { kind: 'inet', host: '::1', port: 8461, map: 'postfix' });
  assert.deepEqual(parseSocketmapName('unix:/run/sts.sock:sts'), { kind: 'unix', path: '/run/sts.sock', map: 'sts' });
  for (const bad of ['inet:127.0.0.1:8461', 'inet:host:99999:m', 'tcp:h:1:m', 'unix::m', 'nothing']) {
    assert.throws(() => parseSocketmapName(bad), ConfigError, bad);
  }
});

test('reply grammar', () => {
  assert.deepEqual(parseSocketmapReply('OK a b', 's'), { kind: 'found', value: 'a b' });
  assert.deepEqual(parseSocketmapReply('NOTFOUND ', 's'), { kind: 'notfound' });
  assert.equal(parseSocketmapReply('TEMP x', 's').kind, 'error');
  assert.equal(parseSocketmapReply('bogus', 's').kind, 'error');
});

test('inet: found (MTA-STS resolver shape), not found, key sent verbatim, one connection reused', async () => {
  await withInet(async (t, s) => {
    assert.deepEqual(await t.lookup('dismail.de'), { kind: 'found', value: 'secure match=mx1.example.com' });
    assert.deepEqual(await t.lookup('Example.COM'), { kind: 'notfound' });
    assert.deepEqual(s.requests, ['postfix dismail.de', 'postfix Example.COM']);
    assert.equal(s.connections, 1);
    assert.equal(t.keyKind, 'fixed');
  });
});

test('concurrent lookups are serialized on the one connection', async () => {
  await withInet(async (t, s) => {
    const rs = await Promise.all([t.lookup('dismail.de'), t.lookup('nope'), t.lookup('dismail.de')]);
    assert.deepEqual(rs.map((r) => r.kind), ['found', 'notfound', 'found']);
    assert.equal(s.connections, 1);
  });
});

test('TEMP, TIMEOUT, PERM and unknown replies are errors naming the table', async () => {
  await withInet(async (t, _s, spec) => {
    for (const [key, text] of [['temp.example', 'TEMP: resolver busy'], ['timeout.example', 'TIMEOUT: upstream slow'], ['perm.example', 'PERM: bad request'], ['weird.example', 'malformed reply "MAYBE later"']] as const) {
      const r = await t.lookup(key);
      assert.equal(r.kind, 'error', key);
      if (r.kind === 'error') {
        assert.ok(r.error.message.startsWith(`${spec}: `), r.error.message);
        assert.ok(r.error.message.includes(text), r.error.message);
      }
    }
    // The connection is still good after an in-protocol error.
    assert.equal((await t.lookup('dismail.de')).kind, 'found');
  });
});

test('a server that never answers gives a timeout error, then the next lookup reconnects', async () => {
  await withInet(async (t, s, spec) => {
    // The client's own 200 ms timer ends the lookup (the server never answers, never closes).
    const r = await t.lookup('hang.example');
    assert.deepEqual(r, { kind: 'error', error: { message: `${spec}: timeout after 200ms` } });
    assert.equal((await t.lookup('dismail.de')).kind, 'found');
    assert.equal(s.connections, 2);
  }, 200);
});

test('oversized and garbage replies are errors, never notfound', async () => {
  await withInet(async (t) => {
    const big = await t.lookup('big.example');
    assert.equal(big.kind, 'error');
    if (big.kind === 'error') assert.match(big.error.message, /exceeds the limit of 100000/);
    const junk = await t.lookup('garbage.example');
    assert.equal(junk.kind, 'error');
    if (junk.kind === 'error') assert.match(junk.error.message, /bad reply: netstring/);
    assert.equal((await t.lookup('dismail.de')).kind, 'found');
  });
});

test('connection closed by the server between requests: reconnect transparently', async () => {
  await withInet(async (t, s) => {
    assert.deepEqual(await t.lookup('close.example'), { kind: 'found', value: 'closing' });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await t.lookup('dismail.de')).kind, 'found');
    assert.equal(s.connections, 2);
    // Server drops every connection behind our back (idle timeout): retried once.
    for (const sock of s.sockets) sock.destroy();
    assert.equal((await t.lookup('dismail.de')).kind, 'found');
    assert.equal(s.connections, 3);
  });
});

test('server down: connect error result naming the table', async () => {
  const s = fakeServer();
  const port = await listenInet(s);
  await stop(s);
  const name = `inet:127.0.0.1:${port}:postfix`;
  const t = await socketmapType.open(name, `socketmap:${name}`, { timeoutMs: 1000 });
  const r = await t.lookup('dismail.de');
  assert.deepEqual(r, { kind: 'error', error: { message: `socketmap:${name}: connect: Connection refused` } });
  await t.close();
});

test('unix socket: found, not found, missing socket', async () => {
  const { dir, cleanup } = tempDir();
  const s = fakeServer();
  try {
    const path = join(dir, 'sts.sock');
    await new Promise<void>((r) => s.server.listen(path, r));
    const t = await socketmapType.open(`unix:${path}:postfix`, `socketmap:unix:${path}:postfix`, {});
    assert.deepEqual(await t.lookup('dismail.de'), { kind: 'found', value: 'secure match=mx1.example.com' });
    assert.deepEqual(await t.lookup('other.example'), { kind: 'notfound' });
    await t.close();
    const missing = await socketmapType.open(`unix:${dir}/none.sock:postfix`, 'socketmap:x', {});
    const r = await missing.lookup('a');
    assert.equal(r.kind, 'error');
    if (r.kind === 'error') assert.match(r.error.message, /^socketmap:x: connect: No such file or directory$/);
  } finally {
    await stop(s);
    cleanup();
  }
});
