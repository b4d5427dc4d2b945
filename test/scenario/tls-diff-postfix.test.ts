/**
 * tls-diff-postfix — the TLS client checked against Postfix's, case by case
 * (issue 9, item 9). Debian's Postfix 3.7 (postfix-sender.ts) and sealpost's
 * daemon (qmgr-lab.ts) send the same message under the same policy-table
 * entry to the same receiver posture (tls-postures.ts) through the same lab
 * DNS; the test compares what each logged and what each receiver got.
 *
 * The matrix (tls-diff-cases.ts): every level (none, may, encrypt,
 * fingerprint, verify, secure, dane, dane-only) × every posture (no STARTTLS,
 * STARTTLS refused, self-signed, CA-valid, wrong name, expired, domain-only
 * and wildcard names, an MX outside the recipient domain, anonymous ciphers,
 * a bad policy entry, and every broken handshake we can make: a reset in
 * answer to the ClientHello, non-TLS bytes in answer to it, non-SMTP bytes right
 * behind the 220, a close mid-handshake, a stall past smtp_starttls_timeout,
 * no shared protocol either way, no shared cipher) plus DNSSEC-signed
 * destinations for dane/dane-only. Each case has its own recipient domain
 * `POSTURE.LEVEL.test` (MX `mx.POSTURE.LEVEL.test`) and its own entry
 * `POSTURE.LEVEL.test LEVEL [attributes]` in one texthash table for both.
 *
 * The run (one `before` for every case, both senders at once): each sender
 * gets a@ then b@ for every case; the receivers greet nobody until all mail
 * is queued, so with destination concurrency 1 b@ always waits behind a@.
 * Compared per case: a@'s first attempt (outcome, DSN, reason, trust word,
 * certificate lines), b@'s first attempt (did a@'s failure throttle the
 * destination — `delivery temporarily suspended`?), a@'s retry when a@ was
 * deferred without a throttle (forced with `postqueue -i` once
 * minimal_backoff_time has passed: `may` falls back to plaintext), and how the
 * receiver got what was sent. What is expected to differ between any two
 * senders is normalized away (tls-diff-cases.ts normalize()); so is the
 * `tls=` field, which Postfix 3.7 cannot log (3.11 does; sealpost follows 3.11).
 * Lines that name no host, recipient or queue ID (Postfix's `warning: TLS
 * library problem: ...` OpenSSL error queue) cannot be tied to a case and
 * are not compared.
 *
 * Where sealpost differs, tls-diff-differences.ts says so: each entry with
 * its kind (deliberate, bug, pending) and reason, as a transformation of
 * Postfix's facts into sealpost's; sealpost must equal the result, and an
 * entry that no longer changes any case fails the last test.
 *
 * SEALPOST_TEST_VERBOSE=1 prints the comparison matrix; SEALPOST_TLSDIFF_DUMP=dir
 * writes both mail logs and the observed facts there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { startDnsServer, type DnsLab, type Zone } from '../harness/dns-server.ts';
import { mailLogLines, startPostfixSender, type PostfixSender } from '../harness/postfix-sender.ts';
import { makePostureCerts, startPostureReceivers, type PostureCerts, type PostureReceiver } from '../harness/tls-postures.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';
import { CASES, LEVELS, caseById, caseOf, isStatus, needsRetry, normalize, parseMailq, queueIdOf, queuedOf, scan, wanted, type Case, type CaseAttempts, type Facts } from './tls-diff-cases.ts';
import { DIFFERENCES, type Difference } from './tls-diff-differences.ts';

// ------------------------------------------------------------------ lab

const SENDER = { postfix: 'postfix.sender.test', sealpost: 'mx.sealpost.test' } as const;
type SenderName = keyof typeof SENDER;

let tmp: { dir: string; cleanup: () => void };
let certs: PostureCerts;
/** One receiver per case (by case id): nothing a sender remembers per server crosses cases. */
let receivers: Map<string, PostureReceiver>;
let dns: DnsLab;
let pf: PostfixSender;
let sp: QmgrLab;
const observed: Record<SenderName, Map<string, Facts>> = { postfix: new Map(), sealpost: new Map() };
/** Milliseconds from the start: lab up, all mail queued, all attempts observed. */
const timing = { ready: 0, queued: 0, observed: 0 };

function fingerprint(certFile: string): string {
  const der = new X509Certificate(readFileSync(certFile)).raw;
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)!.join(':');
}

function spkiSha256(certFile: string): string {
  const key = new X509Certificate(readFileSync(certFile)).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('hex');
}

function buildZone(port: number): Zone {
  const zone: Zone = {};
  for (const c of CASES) {
    const rx = receivers.get(c.id)!;
    const ad = c.posture.dnssec !== undefined;
    zone[c.domain] = { MX: [[10, c.mx]], ...(ad ? { ad } : {}) };
    zone[c.mx] = { A: [rx.host], ...(ad ? { ad } : {}) };
    if (c.posture.dnssec) {
      // RFC 7672 §2.2: TLSA at _PORT._tcp.MXHOST; securely absent = NODATA with AD.
      const key = c.posture.dnssec === 'match' ? certs.certOf(c.posture.receiver).cert : certs.pki.selfSigned.cert;
      const tlsa = c.posture.dnssec === 'none' ? {} : { TLSA: [[3, 1, 1, spkiSha256(key)]] as Array<[number, number, number, string]> };
      zone[`_${port}._tcp.${c.mx}`] = { ...tlsa, ad: true };
    }
  }
  return zone;
}

function policyEntry(c: Case): string {
  let entry = `${c.domain} ${c.level}`;
  if (c.posture.attrs) entry += ` ${c.posture.attrs}`;
  if (c.level === 'fingerprint') {
    const pinned = c.posture.wrongPin ? certs.pki.selfSigned.cert : certs.certOf(c.posture.receiver).cert;
    entry += ` match=${fingerprint(pinned)}`;
  }
  return entry;
}

/** minimal_backoff_time, seconds: far above any queueing delay on a loaded machine. */
const BACKOFF_S = 8;

/** main.cf lines both senders share. */
function commonMainCf(port: number, policy: string): string[] {
  return [
    `smtp_tcp_port = ${port}`,
    'smtp_tls_security_level = may',
    `smtp_tls_policy_maps = texthash:${policy}`,
    `smtp_tls_CAfile = ${certs.caBundle}`,
    'smtp_tls_loglevel = 1',
    // Short for the stall posture, long enough for a loaded machine.
    'smtp_starttls_timeout = 3s',
    'smtp_dns_support_level = dnssec',
    // No plaintext fallback on a first attempt (smtp.h PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_FAILURE).
    `minimal_backoff_time = ${BACKOFF_S}s`,
    // No scheduled retries while the test runs (the retry it compares is forced with postqueue -i).
    'queue_run_delay = 300s',
    'initial_destination_concurrency = 1',
    'default_destination_concurrency_limit = 1',
    'smtp_connection_cache_on_demand = no',
    // TLS session resumption on both sides (Postfix resumes only with a cache database).
    'smtp_tls_session_cache_database = btree:$data_directory/smtp_scache',
  ];
}

/** For each observed attempt that was sent: how the receiver got it (`a@ TLS`, `b@ plaintext`). */
function received(c: Case, sender: SenderName, attempts: CaseAttempts): string[] {
  const rx = receivers.get(c.id)!;
  return (['a', 'b'] as const)
    .filter((r) => attempts[r].some((seg) => isStatus(seg.at(-1)!, 'sent')))
    .map((r) => {
      const m = rx.messages.find((x) => x.helo === SENDER[sender] && x.rcpt.includes(`${r}@${c.domain}`));
      return `${r}@ ${m ? (m.tls ? 'TLS' : 'plaintext') : 'not received'}`;
    });
}

// ------------------------------------------------------------ the run

async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: width }, async () => {
    for (let it = queue.shift(); it !== undefined; it = queue.shift()) await fn(it);
  }));
}

const BODY = 'Subject: TLS client comparison\r\n\r\nThe same message for both senders.\r\n';

/** Submit a@ then b@ for every case to one sender (a few SMTP sessions at a time). */
async function submitAll(s: SenderName, arrival: Map<string, number>): Promise<void> {
  const submit = (to: string): Promise<string> => (s === 'postfix' ? pf.submit('', [to], BODY) : sp.submit('', [to], BODY));
  await pool(CASES, 16, async (c) => {
    arrival.set(c.id, Date.now());
    await submit(`a@${c.domain}`);
    await submit(`b@${c.domain}`);
  });
}

/** `postqueue -i ID` on one sender: retry a deferred message now. */
async function flush(s: SenderName, id: string): Promise<void> {
  if (s === 'postfix') return pf.flush(id);
  const r = await sp.cli(['postqueue', '-i', id]);
  assert.equal(r.code, 0, r.stderr);
}

/**
 * Watch one sender's log until every case has its compared attempts. A case
 * deferred without a throttle gets its retry once minimal_backoff_time has
 * surely passed since arrival: Postfix's PREACTIVE_DELAY counts whole
 * seconds (smtp.h), so half a second more makes it ≥ minimal_backoff_time on
 * both senders.
 */
async function observe(s: SenderName, arrival: Map<string, number>, deadline: number): Promise<void> {
  const retried = new Set<string>();
  const log = (): string => (s === 'postfix' ? pf.peer.log() : sp.log());
  while (observed[s].size < CASES.length && Date.now() < deadline) {
    const attempts = scan(mailLogLines(log()));
    for (const c of CASES) {
      if (observed[s].has(c.id)) continue;
      const rec = attempts.get(c.id);
      const w = wanted(rec);
      if (w) {
        observed[s].set(c.id, { a: w.a.map((x) => x.map(normalize)), b: w.b.map((x) => x.map(normalize)), received: received(c, s, w), queued: [] });
      } else if (rec && rec.a.length === 1 && needsRetry(rec) && !retried.has(c.id) && Date.now() >= arrival.get(c.id)! + BACKOFF_S * 1000 + 500) {
        retried.add(c.id);
        await flush(s, queueIdOf(rec.a[0]!));
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  const started = Date.now();
  tmp = tempDir('sealpost-tls-diff-');
  certs = makePostureCerts(tmp.dir, {
    right: ['selfsigned.receiver.test', ...new Set(CASES.map((c) => c.mx))],
    wild: LEVELS.map((l) => `*.wild.${l}.test`),
    domain: LEVELS.map((l) => `domainonly.${l}.test`),
  });
  // The receivers greet nobody until all mail is queued on both senders: then b@ is surely
  // queued behind a@ when a@'s attempt ends, however slow the machine.
  let release!: () => void;
  const specs = CASES.map((c) => ({ id: c.id, kind: c.posture.receiver }));
  receivers = await startPostureReceivers(specs, certs, { gate: new Promise<void>((r) => (release = r)) });
  const port = receivers.get(CASES[0]!.id)!.port;
  const zone = buildZone(port);
  const policy = join(tmp.dir, 'tls_policy');
  writeFileSync(policy, CASES.map(policyEntry).join('\n') + '\n');
  dns = await startDnsServer(zone);
  const common = commonMainCf(port, policy);
  [pf, sp] = await Promise.all([
    startPostfixSender({ dnsPort: dns.port, mainCf: common }),
    qmgrLab({ zone, receiverPort: port, mainCf: common }).then(async (lab) => {
      await lab.start();
      return lab;
    }),
  ]);
  timing.ready = Date.now() - started;
  const arrival = { postfix: new Map<string, number>(), sealpost: new Map<string, number>() };
  await Promise.all([submitAll('postfix', arrival.postfix), submitAll('sealpost', arrival.sealpost)]);
  timing.queued = Date.now() - started;
  release();
  const deadline = Date.now() + 60_000;
  await Promise.all([observe('postfix', arrival.postfix, deadline), observe('sealpost', arrival.sealpost, deadline)]);
  // Nothing moves any more (no scheduled retries): what each queue says about the mail left.
  const mailq = { postfix: parseMailq(pf.mailq()), sealpost: parseMailq((await sp.cli(['mailq'])).stdout) };
  for (const s of ['postfix', 'sealpost'] as const) {
    for (const [id, f] of observed[s]) observed[s].set(id, { ...f, queued: queuedOf(caseById(id)!, mailq[s]) });
  }
  timing.observed = Date.now() - started;
});

after(async () => {
  const dump = process.env.SEALPOST_TLSDIFF_DUMP;
  if (dump && pf && sp) {
    writeFileSync(join(dump, 'postfix.log'), pf.peer.log());
    writeFileSync(join(dump, 'sealpost.log'), sp.log());
    writeFileSync(join(dump, 'facts.json'), JSON.stringify({ postfix: Object.fromEntries(observed.postfix), sealpost: Object.fromEntries(observed.sealpost) }, null, 1));
  }
  await Promise.all([pf?.stop(), sp?.cleanup(), dns?.close(), ...[...(receivers?.values() ?? [])].map((r) => r.close())]);
  tmp?.cleanup();
  if (process.env.SEALPOST_TEST_VERBOSE) {
    const head = `# ${CASES.length} cases × 2 senders: lab up ${timing.ready} ms, mail queued ${timing.queued} ms, all observed ${timing.observed} ms\n`;
    // One write per line: node:test re-chunks long writes.
    for (const line of (head + matrix()).split('\n')) if (line) process.stdout.write(`${line}\n`);
  }
});

// ------------------------------------------------------------ the comparison

/** What this test expects of sealpost: Postfix's facts through the differences that apply. */
function expectedOf(c: Case, p: Facts, changed?: Set<Difference>): Facts {
  let expected = p;
  for (const d of DIFFERENCES.filter((x) => x.applies(c))) {
    const next = d.sealpost(expected, c, { postfix: (id) => observed.postfix.get(id), address: (id) => receivers.get(id)!.host });
    if (changed && JSON.stringify(next) !== JSON.stringify(expected)) changed.add(d);
    expected = next;
  }
  return expected;
}

/** The comparison matrix (SEALPOST_TEST_VERBOSE): per case agree, or the differences that apply. */
function matrix(): string {
  const rows = CASES.map((c) => {
    const p = observed.postfix.get(c.id);
    if (!p) return `# ${c.id.padEnd(28)} (not observed)`;
    const changed = new Set<Difference>();
    expectedOf(c, p, changed);
    const a1 = p.a[0]?.at(-1)?.match(/dsn=(\S+), status=(\w+)/);
    const trust = p.a[0]?.find((l) => / TLS connection established /.test(l))?.match(/^smtp: (\w+) /)?.[1] ?? '-';
    const what = `${a1?.[2] ?? '?'} ${a1?.[1] ?? ''} ${trust}`;
    return `# ${c.id.padEnd(28)} ${what.padEnd(28)} ${changed.size === 0 ? 'agree' : [...changed].map((d) => `${d.kind}:${d.id}`).join(' ')}`;
  });
  return `${rows.join('\n')}\n`;
}

for (const level of LEVELS) {
  describe(`${level}: sealpost and Postfix 3.7 as senders`, () => {
    for (const c of CASES.filter((x) => x.level === level)) {
      test(c.posture.name, () => {
        const p = observed.postfix.get(c.id);
        const s = observed.sealpost.get(c.id);
        const lines = (log: string) => mailLogLines(log).filter((l) => caseOf(l) === c).join('\n');
        assert.ok(p, `${c.id}: Postfix's attempts were not all observed:\n${lines(pf.peer.log())}`);
        assert.ok(s, `${c.id}: sealpost's attempts were not all observed:\n${lines(sp.log())}`);
        assert.deepEqual(s, expectedOf(c, p), `${c.id}: sealpost differs from Postfix 3.7 (beyond tls-diff-differences.ts)`);
      });
    }
  });
}

test('every known difference still shows somewhere (a fixed bug must leave the table)', () => {
  const changed = new Set<Difference>();
  for (const c of CASES) {
    const p = observed.postfix.get(c.id);
    if (p) expectedOf(c, p, changed);
  }
  for (const d of DIFFERENCES) assert.ok(changed.has(d), `${d.kind}:${d.id} changes no case: delete it from tls-diff-differences.ts`);
});
