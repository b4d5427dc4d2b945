/**
 * tls-diff-postfix — the TLS client checked against Postfix's, case by case.
 * Debian's Postfix 3.7 (postfix-sender.ts) and sealpost's daemon (qmgr-lab.ts)
 * send the same message under the same policy-table entry to the same
 * receiver posture (tls-postures.ts); the test compares what each logged and
 * what each receiver got.
 *
 * Scope (shared setup, `runBoth`): every security level (none, may, encrypt,
 * fingerprint, verify, secure, dane, dane-only) × every receiver posture (no
 * STARTTLS, STARTTLS refused, self-signed, CA-valid, wrong name, expired,
 * domain-only and wildcard names, an MX outside the recipient domain,
 * anonymous ciphers, and every broken handshake we can make: reset after the
 * 220, bytes that are not TLS, a close mid-handshake, a stall past
 * smtp_starttls_timeout, no shared protocol in either direction, no shared
 * cipher) plus DNSSEC-signed destinations for dane/dane-only. Each case has
 * its own recipient domain `POSTURE.LEVEL.test`, its MX `mx.POSTURE.LEVEL.test`
 * (the lab DNS, shared by both senders) and its own policy-table entry
 * `POSTURE.LEVEL.test LEVEL [attributes]` (one texthash table for both).
 *
 * Per case and sender, two messages (a@, then b@) go to the destination with
 * destination concurrency 1, so deliveries to one destination never overlap
 * and each status= line closes one attempt: the lines before it that name the
 * MX host or the recipient (trust word, certificate lines, warnings) belong
 * to it. The facts compared: attempt 1 of a@ (outcome, DSN, reason, TLS
 * lines), attempt 1 of b@ (did a@'s failure throttle the destination —
 * `delivery temporarily suspended`?), attempt 2 of a@ when a@ was deferred
 * without a throttle (what a retry after minimal_backoff_time does: `may`'s
 * plaintext fallback), and what the receiver got from each sender (with or
 * without TLS). Normalized away: program prefixes (postfix/ vs sealpost/),
 * queue IDs, delay= and delays=, the receiver's queue ID, and sealpost's
 * `tls=` field (Postfix 3.7 has no smtp_log_tls_feature_status; 3.11 does,
 * reference §1.5). Kept: outcome, DSN, reason text, trust word, protocol and
 * cipher, every certificate line.
 *
 * Where sealpost differs, DIFFERENCES below says so, each entry with its
 * kind (deliberate, bug, pending) and reason, as a transformation of
 * Postfix's facts into sealpost's — an entry that no longer changes anything
 * fails the test, so a fixed bug forces its entry out.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../harness/cli.ts';
import { startDnsServer, type DnsLab, type Zone } from '../harness/dns-server.ts';
import { mailLogLines, startPostfixSender, type PostfixSender } from '../harness/postfix-sender.ts';
import { makePostureCerts, RECEIVER_KINDS, startPostureReceivers, type PostureCerts, type PostureReceiver, type ReceiverKind } from '../harness/tls-postures.ts';
import { qmgrLab, type QmgrLab } from './qmgr-lab.ts';

const LEVELS = ['none', 'may', 'encrypt', 'fingerprint', 'verify', 'secure', 'dane', 'dane-only'] as const;
type Level = (typeof LEVELS)[number];

interface Posture {
  readonly name: string;
  readonly receiver: ReceiverKind;
  /** Policy attributes after the level: the sender's half of a "no shared protocol" posture. */
  readonly attrs?: string;
  /** The MX host lies outside the recipient domain (its certificate names it). */
  readonly foreignMx?: boolean;
  /** A DNSSEC-signed destination (AD bit): securely no TLSA, a TLSA 3 1 1 of the receiver's key, or of another key. */
  readonly dnssec?: 'none' | 'match' | 'other';
  /** fingerprint: pin another certificate than the one the receiver presents. */
  readonly wrongPin?: boolean;
  /** Only at these levels (default: all). */
  readonly levels?: readonly Level[];
}

const POSTURES: readonly Posture[] = [
  ...RECEIVER_KINDS.map((k): Posture => ({
    name: k,
    receiver: k,
    ...(k === 'tls13only' ? { attrs: 'protocols=<=TLSv1.2' } : k === 'tls12only' ? { attrs: 'protocols=>=TLSv1.3' } : {}),
  })),
  { name: 'foreignmx', receiver: 'valid', foreignMx: true },
  // Anonymous ciphers exist only up to TLS 1.2: with protocols=>=TLSv1.3 nothing is left.
  { name: 'anon13', receiver: 'anon', attrs: 'protocols=>=TLSv1.3' },
  { name: 'wrongpin', receiver: 'valid', wrongPin: true, levels: ['fingerprint'] },
  { name: 'securenotlsa', receiver: 'valid', dnssec: 'none', levels: ['dane', 'dane-only'] },
  { name: 'securetlsa', receiver: 'selfsigned', dnssec: 'match', levels: ['dane', 'dane-only'] },
  { name: 'securebadtlsa', receiver: 'valid', dnssec: 'other', levels: ['dane', 'dane-only'] },
];

interface Case {
  readonly id: string;
  readonly level: Level;
  readonly posture: Posture;
  readonly domain: string;
  readonly mx: string;
}

const CASES: readonly Case[] = LEVELS.flatMap((level) =>
  POSTURES.filter((p) => !p.levels || p.levels.includes(level)).map((posture): Case => {
    const domain = `${posture.name}.${level}.test`;
    return { id: `${level} × ${posture.name}`, level, posture, domain, mx: posture.foreignMx ? `mx.${level}.elsewhere.test` : `mx.${domain}` };
  }),
);

/** One delivery attempt: the normalized lines, the status= line last. */
type Attempt = readonly string[];

interface Facts {
  /** a@: attempt 1, and attempt 2 when attempt 1 was deferred without a throttle. */
  readonly a: readonly Attempt[];
  /** b@: attempt 1 (queued behind a@). */
  readonly b: readonly Attempt[];
  /** What the receiver accepted from this sender: `a@ TLS`, `b@ plaintext`. */
  readonly received: readonly string[];
}

// ------------------------------------------------------------------ lab

const SENDER = { postfix: 'postfix.sender.test', sealpost: 'mx.sealpost.test' } as const;
type SenderName = keyof typeof SENDER;

let tmp: { dir: string; cleanup: () => void };
let certs: PostureCerts;
let receivers: Map<ReceiverKind, PostureReceiver>;
let dns: DnsLab;
let pf: PostfixSender;
let sp: QmgrLab;
const observed: Record<SenderName, Map<string, Facts>> = { postfix: new Map(), sealpost: new Map() };
let elapsed = 0;

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
    const rx = receivers.get(c.posture.receiver)!;
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

/** main.cf lines both senders share. */
function commonMainCf(port: number, policy: string): string[] {
  return [
    `smtp_tcp_port = ${port}`,
    'smtp_tls_security_level = may',
    `smtp_tls_policy_maps = texthash:${policy}`,
    `smtp_tls_CAfile = ${certs.caBundle}`,
    'smtp_tls_loglevel = 1',
    'smtp_starttls_timeout = 1s',
    'smtp_dns_support_level = dnssec',
    'minimal_backoff_time = 2s',
    // No scheduled retries while the test runs (the retry it compares is forced with postqueue -i).
    'queue_run_delay = 300s',
    'initial_destination_concurrency = 1',
    'default_destination_concurrency_limit = 1',
    'smtp_connection_cache_on_demand = no',
    // TLS session resumption on both sides (Postfix resumes only with a cache database).
    'smtp_tls_session_cache_database = btree:$data_directory/smtp_scache',
  ];
}

// ------------------------------------------------------------ log → facts

/** `program: text` → the text with queue ID, delays and tls= normalized away. */
function normalize(line: string): string {
  return line
    .replace(/^(?:postfix|sealpost)\//, '')
    .replace(/^(\S+): [0-9A-Za-z]{6,}: /, '$1: ')
    .replace(/, delay=[\d.]+, delays=[\d./]+/, '')
    .replace(/, tls=[^,]*/, '')
    .replace(/(Ok: queued as )\S+\)$/, '$1ID)');
}

interface Scan {
  /** Per case: closed attempts per recipient (raw lines), and the queue IDs. */
  readonly attempts: Map<string, { a: string[][]; b: string[][]; ids: Set<string> }>;
}

const NAME_TO_CASE = new Map<string, Case>(CASES.flatMap((c) => [[c.domain, c], [c.mx, c]] as Array<[string, Case]>));

function caseOf(line: string): Case | undefined {
  for (const m of line.matchAll(/[A-Za-z0-9*-]+(?:\.[A-Za-z0-9*-]+)+/g)) {
    const c = NAME_TO_CASE.get(m[0].toLowerCase());
    if (c) return c;
  }
  return undefined;
}

/** Queue manager and intake lines: the same for every case, not about TLS. */
const BOOKKEEPING = /^\S+: \w+: (?:from=<|removed$|client=|message-id=|uid=)/;

function scan(lines: readonly string[]): Scan {
  // Lines that name only a queue ID (`QUEUEID: Cannot start TLS: ...` before a
  // plaintext retry) belong to the case of that queue ID's status lines.
  const byId = new Map<string, Case>();
  for (const line of lines) {
    const m = /^\S+: (\w+): to=<[ab]@([^>]+)>/.exec(line);
    const c = m ? NAME_TO_CASE.get(m[2]!) : undefined;
    if (c) byId.set(m![1]!, c);
  }
  const open = new Map<string, string[]>();
  const attempts: Scan['attempts'] = new Map();
  for (const line of lines) {
    if (BOOKKEEPING.test(line)) continue;
    const c = caseOf(line) ?? byId.get(/^\S+: (\w+): /.exec(line)?.[1] ?? '');
    if (!c) continue;
    const seg = open.get(c.id) ?? [];
    seg.push(line);
    const status = /^\S+: (\w+): to=<([ab])@[^>]+>,.* status=/.exec(line);
    if (!status) {
      open.set(c.id, seg);
      continue;
    }
    open.delete(c.id);
    const rec = attempts.get(c.id) ?? { a: [], b: [], ids: new Set<string>() };
    rec[status[2] as 'a' | 'b'].push(seg);
    rec.ids.add(status[1]!);
    attempts.set(c.id, rec);
  }
  return { attempts };
}

const isStatus = (l: string, s: string): boolean => new RegExp(` status=${s} `).test(l);
const suspended = (seg: readonly string[]): boolean => / status=deferred \(delivery temporarily suspended: /.test(seg.at(-1) ?? '');

/**
 * The attempts this test compares, or undefined while some are still to come:
 * a@'s first attempt; b@'s first (queued behind it); and when a@ was deferred
 * without throttling the destination, a@'s retry (`postqueue -i`, once
 * minimal_backoff_time has passed since its arrival).
 */
function wanted(rec: { a: string[][]; b: string[][] } | undefined): { a: string[][]; b: string[][]; retry: boolean } | undefined {
  if (!rec || rec.a.length === 0 || rec.b.length === 0) return undefined;
  const retry = isStatus(rec.a[0]!.at(-1)!, 'deferred') && !suspended(rec.b[0]!);
  if (retry && rec.a.length < 2) return undefined;
  return { a: rec.a.slice(0, retry ? 2 : 1), b: rec.b.slice(0, 1), retry };
}

/** The queue ID of a@'s first attempt (for `postqueue -i`). */
function firstId(seg: readonly string[]): string {
  return /^\S+: (\w+): to=/.exec(seg.at(-1)!)![1]!;
}

/** For each observed attempt that was sent: how the receiver got it (`a@ TLS`, `b@ plaintext`). */
function received(c: Case, sender: SenderName, attempts: { a: readonly string[][]; b: readonly string[][] }): string[] {
  const rx = receivers.get(c.posture.receiver)!;
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

before(async () => {
  const started = Date.now();
  tmp = tempDir('sealpost-tls-diff-');
  const right = [...new Set(CASES.map((c) => c.mx))];
  certs = makePostureCerts(tmp.dir, {
    right: ['selfsigned.receiver.test', ...right],
    wild: LEVELS.map((l) => `*.wild.${l}.test`),
    domain: LEVELS.map((l) => `domainonly.${l}.test`),
  });
  receivers = await startPostureReceivers(RECEIVER_KINDS, certs);
  const port = receivers.get('valid')!.port;
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
  const submit = { postfix: (to: string) => pf.submit('', [to], BODY), sealpost: (to: string) => sp.submit('', [to], BODY) };
  const arrival: Record<SenderName, Map<string, number>> = { postfix: new Map(), sealpost: new Map() };
  await Promise.all((['postfix', 'sealpost'] as const).map((s) => pool(CASES, 6, async (c) => {
    arrival[s].set(c.id, Date.now());
    await submit[s](`a@${c.domain}`);
    await submit[s](`b@${c.domain}`);
  })));
  const lines = { postfix: () => pf.lines(), sealpost: () => mailLogLines(sp.log()) };
  const flush = {
    postfix: async (id: string) => pf.flush(id),
    sealpost: async (id: string) => {
      const r = await sp.cli(['postqueue', '-i', id]);
      assert.equal(r.code, 0, r.stderr);
    },
  };
  const retried: Record<SenderName, Set<string>> = { postfix: new Set(), sealpost: new Set() };
  const deadline = Date.now() + 45_000;
  for (;;) {
    let missing = 0;
    for (const s of ['postfix', 'sealpost'] as const) {
      const { attempts } = scan(lines[s]());
      for (const c of CASES) {
        if (observed[s].has(c.id)) continue;
        const rec = attempts.get(c.id);
        const w = wanted(rec);
        if (w) {
          observed[s].set(c.id, { a: w.a.map((x) => x.map(normalize)), b: w.b.map((x) => x.map(normalize)), received: received(c, s, w) });
          continue;
        }
        missing++;
        // Deferred without a throttle: retry once minimal_backoff_time (2 s) has surely passed
        // since arrival, so Postfix's PREACTIVE_DELAY (whole seconds) is >= 2 (smtp.h).
        const due = rec && rec.a.length === 1 && rec.b.length >= 1 && !suspended(rec.b[0]!) && isStatus(rec.a[0]!.at(-1)!, 'deferred');
        if (due && !retried[s].has(c.id) && Date.now() >= arrival[s].get(c.id)! + 2_500) {
          retried[s].add(c.id);
          await flush[s](firstId(rec.a[0]!));
        }
      }
    }
    if (missing === 0 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  elapsed = Date.now() - started;
});

after(async () => {
  if (process.env.SEALPOST_TLSDIFF_DUMP && pf && sp) {
    writeFileSync(join(process.env.SEALPOST_TLSDIFF_DUMP, 'postfix.log'), pf.peer.log());
    writeFileSync(join(process.env.SEALPOST_TLSDIFF_DUMP, 'sealpost.log'), sp.log());
  }
  await Promise.all([pf?.stop(), sp?.cleanup(), dns?.close(), ...[...(receivers?.values() ?? [])].map((r) => r.close())]);
  if (process.env.SEALPOST_TEST_VERBOSE) {
    process.stdout.write(`# both senders, ${CASES.length} cases: ${elapsed} ms\n`);
    for (const c of CASES) {
      for (const s of ['postfix', 'sealpost'] as const) {
        const f = observed[s].get(c.id);
        process.stdout.write(`# ${c.id} [${s}]\n${f ? [...f.a.flatMap((x, i) => x.map((l) => `#   a${i + 1} ${l}`)), ...f.b.flatMap((x) => x.map((l) => `#   b1 ${l}`)), `#   rx ${f.received.join(', ')}`].join('\n') : '#   (incomplete)'}\n`);
      }
    }
  }
  tmp?.cleanup();
});

// ------------------------------------------------------------ differences

type Kind = 'deliberate' | 'bug' | 'pending';

interface Difference {
  readonly kind: Kind;
  readonly why: string;
  readonly applies: (c: Case) => boolean;
  /** sealpost's facts, derived from Postfix's. */
  readonly sealpost: (pf: Facts, c: Case) => Facts;
}

const DIFFERENCES: readonly Difference[] = [];

for (const level of LEVELS) {
  describe(`${level}: sealpost and Postfix 3.7 as senders`, () => {
    for (const c of CASES.filter((x) => x.level === level)) {
      test(c.posture.name, () => {
        const p = observed.postfix.get(c.id);
        const s = observed.sealpost.get(c.id);
        assert.ok(p, `${c.id}: Postfix's attempts were not all observed:\n${pf.lines().filter((l) => caseOf(l) === c).join('\n')}`);
        assert.ok(s, `${c.id}: sealpost's attempts were not all observed:\n${sp.lines().filter((l) => caseOf(l) === c).join('\n')}`);
        let expected: Facts = p;
        for (const d of DIFFERENCES.filter((x) => x.applies(c))) {
          const next = d.sealpost(expected, c);
          assert.notDeepEqual(next, expected, `${c.id}: the ${d.kind} difference "${d.why}" no longer changes anything: delete it`);
          expected = next;
        }
        assert.deepEqual(s, expected, `${c.id}: sealpost differs from Postfix 3.7`);
      });
    }
  });
}
