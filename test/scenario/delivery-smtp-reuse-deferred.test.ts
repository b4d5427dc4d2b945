/**
 * delivery-smtp-reuse-deferred.test.ts — a recipient the server defers on a
 * cached (reused) connection keeps what a sent one keeps: its `conn_use=N`
 * (Postfix log_adhoc.c writes it after relay= for every status, from the
 * request's msg_stats) and the link to the session record that carries the
 * TLS evidence (the `... TLS connection reused to ...` line, `tls=`, and
 * `sealpost tls proof`).
 *
 * The only MX of the destination is the last server left once its cached
 * session is taken, so that session is the final server (smtp_connect.c
 * smtp_reuse_session(): FINAL_SERVER when the address list is used up): a
 * 4xx there defers the recipient on that session, logs no `QUEUEID: host
 * ... said` line for a next server, and does not throttle the destination.
 *
 * A real daemon (qmgr-lab.ts) relays to a receiver on 127.0.0.2 over one TCP
 * connection: message 1 is sent and the connection cached; the next messages
 * are answered 450 at RCPT TO, 451 at the end of DATA, or accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tempDir, sealpost } from '../harness/cli.ts';
import { makePki } from '../harness/pki.ts';
import { startReceivers, type Receiver, type ReceiverOptions } from '../harness/smtp-receiver.ts';
import { fingerprintOf } from './observe-lab.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';

const ZONE = {
  'single.test': { MX: [[10, 'mx.single.test']] as Array<[number, string]> },
  'mx.single.test': { A: ['127.0.0.2'] },
};

const RCPT_DEFER = '450 4.2.1 mailbox busy, try again later';
const DATA_DEFER = '451 4.3.0 queue full, try again later';

/** Replies: 450 to RCPT TO <busy...@>, 451 after the data of a message whose subject says so. */
const REPLIES: ReceiverOptions['replies'] = {
  rcpt: (path) => (path.startsWith('busy') ? RCPT_DEFER : undefined),
  dataEnd: (data) => (/^Subject: defer at dot/m.test(data) ? DATA_DEFER : undefined),
};

/** Retries far away (each deferral happens once); the cached connection stays idle long enough. */
const MAIN_CF = ['minimal_backoff_time = 300s', 'maximal_backoff_time = 600s', 'queue_run_delay = 300s', 'smtp_connection_cache_time_limit = 60s'];

/** Submit one message and wait for its status lines; returns its queue ID and those lines. */
async function relay(lab: QmgrLab, to: readonly string[], subject = 'test'): Promise<{ id: string; lines: Record<string, string> }> {
  const id = await lab.submit('sender@origin.test', to, `Message-ID: <${subject.replace(/ /g, '-')}.${to[0]}>\r\nSubject: ${subject}\r\n\r\nhello\r\n`);
  const got = await lab.waitLog(new RegExp(`^sealpost/smtp: ${id}: to=<.*status=`), to.length);
  const lines: Record<string, string> = {};
  for (const l of got) lines[/to=<([^>]+)>/.exec(l)![1]!] = l;
  return { id, lines };
}

function esc(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A `to=` status line as log_adhoc.c writes it (`conn_use=N, ` right after relay=, or empty). */
function statusLine(host: string, port: number, rcpt: string, connUse: string, tls: string, dsn: string, status: string, text: string): RegExp {
  return new RegExp(
    `^sealpost/smtp: [0-9A-Za-z]+: to=<${esc(rcpt)}>, relay=${esc(host)}\\[127\\.0\\.0\\.2\\]:${port}, ${connUse}delay=[\\d.]+, delays=[\\d.]+/[\\d.]+/[\\d.]+/[\\d.]+, tls=${esc(tls)}, dsn=${esc(dsn)}, status=${status} \\(${esc(text)}\\)$`,
  );
}

test('plain connection cache: a recipient deferred at RCPT TO on a reused connection logs conn_use=2 like the one sent beside it', { timeout: 120_000 }, async () => {
  const [rx] = await startReceivers([{ host: '127.0.0.2', name: 'mx.single.test', replies: REPLIES }]);
  const lab = await qmgrLab({ zone: ZONE, receiverPort: rx!.port, mainCf: MAIN_CF });
  const P = rx!.port;
  try {
    await lab.start();
    const first = await relay(lab, ['a@single.test']);
    assert.match(first.lines['a@single.test']!, statusLine('mx.single.test', P, 'a@single.test', '', 'none', '2.0.0', 'sent', '250 2.0.0 Ok: queued as M1'));

    const second = await relay(lab, ['busy@single.test', 'c@single.test']);
    assert.match(second.lines['c@single.test']!, statusLine('mx.single.test', P, 'c@single.test', 'conn_use=2, ', 'none', '2.0.0', 'sent', '250 2.0.0 Ok: queued as M2'));
    assert.match(second.lines['busy@single.test']!, statusLine('mx.single.test', P, 'busy@single.test', 'conn_use=2, ', 'none', '4.2.1', 'deferred',
      `host mx.single.test[127.0.0.2] said: ${RCPT_DEFER} (in reply to RCPT TO command)`));
    // The cached session was the last server: no "QUEUEID: host ... said" line for a next one.
    assert.deepEqual(lab.lines(new RegExp(`^sealpost/smtp: ${second.id}: host `)), []);
    assert.equal(rx!.connections, 1);
    assert.deepEqual(rx!.messages.map((m) => [m.connection, m.rcptTo]), [[1, ['a@single.test']], [1, ['c@single.test']]]);
  } finally {
    await lab.cleanup();
    await rx!.close();
  }
});

test('TLS connection reuse: deferrals at RCPT TO and at the end of DATA on a reused connection keep conn_use=N and their TLS evidence', { timeout: 120_000 }, async () => {
  const certs = tempDir('sealpost-reuse-deferred-pki-');
  const pki = makePki(certs.dir, ['mx.single.test']);
  let rx: Receiver | undefined;
  let lab: QmgrLab | undefined;
  try {
    [rx] = await startReceivers([{ host: '127.0.0.2', name: 'mx.single.test', tls: { key: pki.server.key, cert: pki.server.cert }, replies: REPLIES }]);
    // smtp_tls_connection_reuse is yes by default (config/params.ts SEALPOST_DEFAULTS);
    // smtp_tls_loglevel = 1 for the `TLS connection established|reused` lines.
    lab = await qmgrLab({ zone: ZONE, receiverPort: rx.port, mainCf: ['smtp_tls_security_level = may', 'smtp_tls_loglevel = 1', ...MAIN_CF] });
    const P = rx.port;
    await lab.start();
    const first = await relay(lab, ['a@single.test']);
    assert.match(first.lines['a@single.test']!, statusLine('mx.single.test', P, 'a@single.test', '', 'may', '2.0.0', 'sent', '250 2.0.0 Ok: queued as M1'));

    // 450 to the only recipient at RCPT TO: the whole message is deferred on the reused session.
    const rcpt = await relay(lab, ['busy@single.test']);
    assert.match(rcpt.lines['busy@single.test']!, statusLine('mx.single.test', P, 'busy@single.test', 'conn_use=2, ', 'may', '4.2.1', 'deferred',
      `host mx.single.test[127.0.0.2] said: ${RCPT_DEFER} (in reply to RCPT TO command)`));

    // 451 after the data: deferred on the reused session too.
    const dot = await relay(lab, ['d@single.test'], 'defer at dot');
    assert.match(dot.lines['d@single.test']!, statusLine('mx.single.test', P, 'd@single.test', 'conn_use=3, ', 'may', '4.3.0', 'deferred',
      `host mx.single.test[127.0.0.2] said: ${DATA_DEFER} (in reply to end of DATA command)`));

    // Neither deferral throttled the destination (no "delivery temporarily suspended"): the next
    // message goes out at once, on the same connection.
    const last = await relay(lab, ['e@single.test']);
    assert.match(last.lines['e@single.test']!, statusLine('mx.single.test', P, 'e@single.test', 'conn_use=4, ', 'may', '2.0.0', 'sent', '250 2.0.0 Ok: queued as M2'));
    assert.deepEqual(lab.lines(/delivery temporarily suspended/), []);
    assert.deepEqual(lab.lines(new RegExp(`^sealpost/smtp: (${rcpt.id}|${dot.id}): host `)), []);
    assert.equal(rx.connections, 1);
    assert.ok(rx.messages.every((m) => m.tls));

    // Each deferral's status line follows its session's `TLS connection reused` line (Postfix's rule:
    // a TLS line belongs to the next status= line of the same program).
    const log = lab.lines(/^sealpost\/smtp: /);
    for (const { id } of [rcpt, dot]) {
      const at = log.findIndex((l) => l.startsWith(`sealpost/smtp: ${id}: to=`));
      assert.match(log[at - 1]!, new RegExp(`^sealpost/smtp: Untrusted TLS connection reused to mx\\.single\\.test\\[127\\.0\\.0\\.2\\]:${P}: TLSv1\\.[23] with cipher `), log.join('\n'));
    }

    // tls proof: the deferred recipients carry the reused session's evidence (the certificate).
    const fingerprint = fingerprintOf(pki.server.cert);
    const proof = async (id: string): Promise<string> => {
      for (let i = 0; i < 200; i++) {
        const r = await sealpost(['tls', 'proof', '-c', lab!.configDir, id], { env: { PATH: process.env.PATH, MAIL_CONFIG: lab!.configDir } });
        if (r.code === 0 && /^ {2}(deferred|sent) /m.test(r.stdout)) return r.stdout;
        await new Promise((res) => setTimeout(res, 50));
      }
      throw new Error(`no proof for ${id}`);
    };
    for (const [id, rcptAddr] of [[rcpt.id, 'busy@single.test'], [dot.id, 'd@single.test']] as const) {
      const text = await proof(id);
      assert.match(text, new RegExp(`recipient <${esc(rcptAddr)}>:\n {2}deferred .* relay=mx\\.single\\.test\\[127\\.0\\.0\\.2\\]:${P}, dsn=4\\.`), text);
      assert.match(text, /\n {4}tls: {9}Untrusted TLSv1\.[23] with cipher \S+ \(\d+\/\d+ bits\), connection reused\n/, text);
      assert.match(text, new RegExp(`\n {4}certificate: sha256 ${fingerprint}\n`), text);
    }
  } finally {
    await lab?.cleanup();
    await rx?.close();
    certs.cleanup();
  }
});
