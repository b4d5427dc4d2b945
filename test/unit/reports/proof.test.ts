import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventBus } from '../../../src/reports/events.ts';
import { findProof, PROOF_DIR, ProofStore } from '../../../src/reports/proof.ts';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { fingerprint, publishMessage } from '../../harness/delivery-events.ts';

const DAY = 86_400_000;

/** One message to three destinations under three sources, plus a deferral first for one of them. */
function threeSources(bus: EventBus, queueId: string, t: number): void {
  publishMessage(bus, {
    queueId,
    messageId: `${queueId}.proof@origin.test`,
    arrival: t,
    removed: false,
    groups: [
      { session: { domain: 'bank.example', time: t + 1000, source: 'dane', trust: 'Verified', address: '192.0.2.10' }, recipients: ['alice@bank.example', 'bob@bank.example'], status: 'sent' },
      { session: { domain: 'hospital.example', time: t + 2000, source: 'mta-sts', trust: 'Verified', address: '192.0.2.20' }, recipients: ['carol@hospital.example'], status: 'sent' },
      { session: { domain: 'agency.example', time: t + 3000, source: 'table', level: 'secure', failure: { type: 'certificate-host-mismatch', reason: 'Server certificate not verified' } }, recipients: ['dave@agency.example'], status: 'deferred' },
    ],
  });
  bus.publish({ kind: 'received', time: t, queueId: 'OTHER', origin: 'smtpd', sender: '', size: 1, nrcpt: 1 });
  publishMessage(bus, {
    queueId,
    messageId: `${queueId}.proof@origin.test`,
    arrival: t,
    groups: [{ session: { domain: 'agency.example', time: t + 600_000, source: 'table', level: 'secure', trust: 'Verified', address: '192.0.2.30', matchedName: 'agency.example' }, recipients: ['dave@agency.example'], status: 'sent' }],
  });
}

async function store(dataDir: string, now: () => number, fill: (bus: EventBus) => void): Promise<void> {
  const bus = new EventBus();
  const s = new ProofStore({ dataDir, retentionMs: 400 * DAY, now });
  await s.open();
  bus.subscribe(s.subscriber);
  fill(bus);
  await s.close();
}

test('the open day: every recipient outcome with its session, found by queue ID and by Message-ID', async () => {
  const t = tempDir();
  try {
    const now = Date.now();
    await store(t.dir, () => now, (bus) => threeSources(bus, 'Q1', now - 60_000));
    const [m] = await findProof(t.dir, 'Q1');
    assert.ok(m);
    assert.equal(m.messageId, 'Q1.proof@origin.test');
    assert.deepEqual(m.outcomes.map((o) => [o.recipient, o.status, o.session?.policy.source]), [
      ['alice@bank.example', 'sent', 'dane'],
      ['bob@bank.example', 'sent', 'dane'],
      ['carol@hospital.example', 'sent', 'mta-sts'],
      ['dave@agency.example', 'deferred', 'table'],
      ['dave@agency.example', 'sent', 'table'],
    ]);
    assert.equal(m.outcomes[0]!.session!.tls!.peer!.certSha256, fingerprint('cert:mx.bank.example'));
    assert.equal(m.outcomes[0]!.session!.server.address, '192.0.2.10');
    assert.ok(!('logLines' in m.outcomes[0]!.session!), 'log lines are not stored');
    assert.deepEqual((await findProof(t.dir, '<Q1.proof@origin.test>')).map((x) => x.queueId), ['Q1']);
    assert.deepEqual(await findProof(t.dir, 'NOPE'), []);
  } finally {
    t.cleanup();
  }
});

test('closed days are compacted (sessions stored once, a hashed index) and still found; expired days go', async () => {
  const t = tempDir();
  try {
    const now = Date.now();
    const old = now - 5 * DAY;
    // Written five days ago, then reopened today: the day is compacted at open.
    await store(t.dir, () => old, (bus) => {
      threeSources(bus, 'Q2', old - 10_000);
      for (let i = 0; i < 50; i++) publishMessage(bus, { queueId: `F${i}`, messageId: `f${i}@x`, arrival: old, groups: [{ session: { domain: 'bulk.example', time: old + i, trust: 'Trusted' }, recipients: [`u${i}@bulk.example`], status: 'sent' }] });
    });
    const ancient = new Date(now - 500 * DAY).toISOString().slice(0, 10);
    writeFileSync(join(t.dir, PROOF_DIR, `${ancient}.jsonl`), '{}\n');
    await store(t.dir, () => now, () => undefined);
    const day = new Date(old).toISOString().slice(0, 10);
    const files = readdirSync(join(t.dir, PROOF_DIR));
    assert.ok(files.includes(`${day}.proof`) && files.includes(`${day}.idx`), files.join(' '));
    assert.ok(!files.includes(`${day}.jsonl`));
    assert.ok(!existsSync(join(t.dir, PROOF_DIR, `${ancient}.jsonl`)), 'expired day removed');
    // 51 messages, 50 with a Message-ID... every message also has its queue ID key: 28-byte records.
    assert.equal(statSync(join(t.dir, PROOF_DIR, `${day}.idx`)).size, (51 + 51) * 28);
    const line = readFileSync(join(t.dir, PROOF_DIR, `${day}.proof`), 'utf8').split('\n').find((l) => l.includes('"Q2"'))!;
    assert.equal(JSON.parse(line).s.length, 4, 'bank (shared by two recipients), hospital, agency twice');
    const [m] = await findProof(t.dir, 'Q2.proof@origin.test');
    assert.equal(m!.outcomes.length, 5);
    assert.equal(m!.outcomes[1]!.session!.tls!.peer!.certSha256, fingerprint('cert:mx.bank.example'));
    assert.equal((await findProof(t.dir, 'F17'))[0]!.outcomes[0]!.recipient, 'u17@bulk.example');
    assert.deepEqual(await findProof(t.dir, 'F99'), []);
  } finally {
    t.cleanup();
  }
});

test('tls proof prints each recipient\'s evidence; --json has the stored fields; unknown IDs exit 1', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), `data_directory = ${t.dir}/data\n`);
    const now = Date.now();
    await store(join(t.dir, 'data'), () => now, (bus) => threeSources(bus, 'Q3', now - 60_000));
    const r = await sealpost(['tls', 'proof', '-c', t.dir, 'Q3']);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout;
    assert.match(text, /^queue ID Q3, Message-ID <Q3\.proof@origin\.test>, arrived \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n/);
    assert.match(text, /recipient <alice@bank\.example>:\n {2}sent .* via smtp to bank\.example, relay=mx\.bank\.example\[192\.0\.2\.10\]:25, dsn=2\.0\.0\n/);
    assert.match(text, /policy: {6}level dane, source dane: DANE: TLSA records of bank\.example\n {17}TLSA 3 1 1 [0-9a-f]{64}\n/);
    assert.match(text, /policy: {6}level secure, source mta-sts: MTA-STS policy of hospital\.example \(id 20261201, mode enforce\)/);
    assert.match(text, /policy: {6}level secure, source table: policy table hash:\/etc\/sealpost\/tls_policy: "agency\.example {2}secure"/);
    assert.ok(text.includes(`certificate: sha256 ${fingerprint('cert:mx.hospital.example')}`));
    assert.match(text, /tls: {9}Verified TLSv1\.3 with cipher TLS_AES_256_GCM_SHA384 \(256\/256 bits\)/);
    assert.match(text, /matched: {5}name agency\.example/);
    assert.match(text, /recipient <dave@agency\.example>:\n {2}deferred [^\n]*\n {4}reply: {7}Server certificate not verified\n(?: {4}.*\n)*? {4}result: {6}certificate-host-mismatch: Server certificate not verified\n\n?(?:.*\n)*? {2}sent /);
    const j = JSON.parse((await sealpost(['tls', 'proof', '-c', t.dir, '--json', '<Q3.proof@origin.test>'])).stdout);
    assert.equal(j.messages[0].outcomes[2].session.tls.peer.certSha256, fingerprint('cert:mx.hospital.example'));
    const none = await sealpost(['tls', 'proof', '-c', t.dir, 'ZZZ']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /^sealpost\/tls-proof: no TLS evidence for ZZZ \(kept for sealpost_tls_proof_retention = 400d\)\n$/);
    assert.equal((await sealpost(['tls', 'proof', '-c', t.dir])).code, 64);
  } finally {
    t.cleanup();
  }
});
