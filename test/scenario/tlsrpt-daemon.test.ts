/**
 * tlsrpt-daemon — TLS-RPT (RFC 8460) fed by real deliveries through the real
 * daemon (`sealpost start-fg` in a child process, dropping to mail_owner):
 * a "day" of sessions for two policy domains, with successes and failures of
 * several RFC 8460 result types, a SIGKILL of the daemon between deliveries,
 * then `sealpost tlsrpt send --now`:
 * - exactly one report per domain per rua (mailto: through sealpost's own
 *   queue to a receiver; https: POSTed to a loopback HTTPS receiver verified
 *   against smtp_tls_CAfile), whose gzip'd JSON validates against RFC 8460's
 *   fields and whose counts equal the sessions the test made;
 * - the SIGKILL lost no count and doubled none;
 * - a domain without `_smtp._tls` gets no report;
 * - report mail is never counted: its rua domain's only server has a
 *   certificate that fails the `secure` entry the test gives it, yet the
 *   report goes out (TLS-Required: No) and no session is recorded for it.
 *
 * The policy domains cover RFC 8460's three policy types: `no-policy-found`
 * (policy-table entries and the main.cf default), `sts` (an MTA-STS
 * `enforce` policy: its policy-string is the policy's lines, its mx-host the
 * policy's `mx` patterns) and `tlsa` (DANE: its policy-string is the TLSA
 * records in presentation form, no mx-host).
 *
 * Extending it: every policy domain is one entry of DOMAINS — its MX hosts
 * (each a loopback receiver with its TLS behaviour), the smtp_tls_policy_maps
 * entry (or none), its `_smtp._tls` rua, the MTA-STS policy it publishes or
 * the TLSA records of its MX hosts, and what one delivery to it produces
 * (`perMessage`: successes and failures by result type, in MX order). An
 * MTA-STS domain (`sts`) gets its `_mta-sts` TXT record and its policy served
 * by the lab policy host (test/harness/sts-server.ts, `mta-sts.DOMAIN` on
 * port 443 of a loopback address, certificate of the test CA); a DANE domain
 * (`tlsa`) gets the records at `_PORT._tcp.MXHOST` of each of its MX hosts,
 * every name of it DNSSEC-secure (`ad`, with smtp_dns_support_level =
 * dnssec), and needs the `dane` policy-table entry. The assertions below are
 * computed from DOMAINS and need no change.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { TlsRptResultType } from '../../src/delivery/outcome.ts';
import { tempDir } from '../harness/cli.ts';
import { startDnsServer, type Zone } from '../harness/dns-server.ts';
import { makePki, tlsaFor, type TestPki } from '../harness/pki.ts';
import { startReceivers, type Receiver, type ReceiverOptions } from '../harness/smtp-receiver.ts';
import { startStsServer, type StsSite } from '../harness/sts-server.ts';
import { makeInstance, SmtpClient, type Daemon, type Instance } from '../unit/daemon/fixtures/instance.ts';
import { validateReport } from '../unit/reports/tlsrpt/fixtures/rfc8460-schema.ts';
import { stsPolicy } from './stsdane-lab.ts';

interface LabMx {
  readonly host: string;
  readonly ip: string;
  readonly receiver: (pki: TestPki) => ReceiverOptions;
}

interface LabDomain {
  readonly name: string;
  /** The smtp_tls_policy_maps entry's value ('' = none). */
  readonly policy: string;
  readonly mx: readonly LabMx[];
  /** The `_smtp._tls` rua list (undefined: no record). */
  readonly rua?: (https: string) => string;
  /** The MTA-STS policy it publishes: the TXT record's id and the policy file. */
  readonly sts?: { readonly id: string; readonly policy: string };
  /** The TLSA records (DNSSEC-secure) of every one of its MX hosts. */
  readonly tlsa?: (pki: TestPki) => ReadonlyArray<[number, number, number, string]>;
  readonly policyType: 'no-policy-found' | 'sts' | 'tlsa';
  /** What one message produces, MX by MX. */
  readonly perMessage: { readonly successes: number; readonly failures: Partial<Record<TlsRptResultType, number>> };
}

const good = (pki: TestPki) => ({ key: pki.server.key, cert: pki.server.cert });
const REPORT_MAILBOX = 'tlsrpt@reports.example';

const DOMAINS: readonly LabDomain[] = [
  {
    // secure: the first MX presents a certificate for another name, the second a good one.
    name: 'alpha.example',
    policy: 'secure',
    mx: [
      { host: 'mx1.alpha.example', ip: '127.0.0.2', receiver: (p) => ({ tls: { key: p.wrongName.key, cert: p.wrongName.cert } }) },
      { host: 'mx2.alpha.example', ip: '127.0.0.3', receiver: (p) => ({ tls: good(p) }) },
    ],
    rua: (https) => `mailto:${REPORT_MAILBOX},${https}`,
    policyType: 'no-policy-found',
    perMessage: { successes: 1, failures: { 'certificate-host-mismatch': 1 } },
  },
  {
    // verify: no STARTTLS, then an expired certificate, then a good one.
    name: 'beta.example',
    policy: 'verify',
    mx: [
      { host: 'mx1.beta.example', ip: '127.0.0.4', receiver: () => ({}) },
      { host: 'mx2.beta.example', ip: '127.0.0.5', receiver: (p) => ({ tls: { key: p.expired.key, cert: p.expired.cert } }) },
      { host: 'mx3.beta.example', ip: '127.0.0.6', receiver: (p) => ({ tls: good(p) }) },
    ],
    rua: () => `mailto:${REPORT_MAILBOX}`,
    policyType: 'no-policy-found',
    perMessage: { successes: 1, failures: { 'starttls-not-supported': 1, 'certificate-expired': 1 } },
  },
  {
    // Publishes no _smtp._tls: its sessions are recorded, no report is sent.
    name: 'quiet.example',
    policy: '',
    mx: [{ host: 'mx.quiet.example', ip: '127.0.0.7', receiver: (p) => ({ tls: good(p) }) }],
    policyType: 'no-policy-found',
    perMessage: { successes: 1, failures: {} },
  },
  {
    // MTA-STS enforce (main.cf says only `may`): the first MX presents a certificate
    // for another name, the second a good one; both match the policy's mx pattern.
    name: 'sts.example',
    policy: '',
    mx: [
      { host: 'mx1.sts.example', ip: '127.0.0.9', receiver: (p) => ({ tls: { key: p.wrongName.key, cert: p.wrongName.cert } }) },
      { host: 'mx2.sts.example', ip: '127.0.0.10', receiver: (p) => ({ tls: good(p) }) },
    ],
    rua: (https) => `mailto:${REPORT_MAILBOX},${https}`,
    sts: { id: '20260101T000000', policy: stsPolicy('enforce', ['*.sts.example']) },
    policyType: 'sts',
    perMessage: { successes: 1, failures: { 'certificate-host-mismatch': 1 } },
  },
  {
    // DANE (a `dane` entry): one DANE-EE record pinning the good certificate's key at both
    // MX hosts; the first presents another key (no record matches), the second the pinned one.
    name: 'dane.example',
    policy: 'dane',
    mx: [
      { host: 'mx1.dane.example', ip: '127.0.0.11', receiver: (p) => ({ tls: { key: p.wrongName.key, cert: p.wrongName.cert } }) },
      { host: 'mx2.dane.example', ip: '127.0.0.12', receiver: (p) => ({ tls: good(p) }) },
    ],
    rua: () => `mailto:${REPORT_MAILBOX}`,
    tlsa: (p) => [tlsaFor(p.server.cert, 3, 1, 1)],
    policyType: 'tlsa',
    // dane.ts: a TLSA RRset with usable records none of which matches the chain is a
    // `validation-failure` (`tlsa-invalid` is for an RRset without a usable record).
    perMessage: { successes: 1, failures: { 'validation-failure': 1 } },
  },
];

/** Where report mail goes: a server whose certificate fails the `secure` entry for it. */
const REPORTS_MX: LabMx = { host: 'mx.reports.example', ip: '127.0.0.8', receiver: (p) => ({ tls: { key: p.wrongName.key, cert: p.wrongName.cert } }) };

/** The zone, given the https rua, the receivers' port (TLSA owner names), the MTA-STS policy host's address and the PKI. */
function zoneOf(httpsRua: string, port: number, stsAddress: string, pki: TestPki): Zone {
  const zone: Zone = {};
  for (const d of DOMAINS) {
    const ad = d.tlsa ? { ad: true } : {};
    zone[d.name] = { MX: d.mx.map((m, i): [number, string] => [10 * (i + 1), m.host]), ...ad };
    for (const m of d.mx) {
      zone[m.host] = { A: [m.ip], ...ad };
      if (d.tlsa) zone[`_${port}._tcp.${m.host}`] = { TLSA: [...d.tlsa(pki)], ad: true };
    }
    if (d.rua) zone[`_smtp._tls.${d.name}`] = { TXT: [`v=TLSRPTv1; rua=${d.rua(httpsRua)}`] };
    if (d.sts) {
      zone[`_mta-sts.${d.name}`] = { TXT: [`v=STSv1; id=${d.sts.id};`] };
      zone[`mta-sts.${d.name}`] = { A: [stsAddress] };
    }
  }
  zone['reports.example'] = { MX: [[10, REPORTS_MX.host]] };
  zone[REPORTS_MX.host] = { A: [REPORTS_MX.ip] };
  return zone;
}

async function httpsReceiver(pki: TestPki): Promise<{ server: Server; port: number; posts: Array<{ url: string; type: string; body: Buffer }> }> {
  const posts: Array<{ url: string; type: string; body: Buffer }> = [];
  const server = createServer({ key: readFileSync(pki.server.key), cert: readFileSync(pki.server.cert) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ url: req.url ?? '', type: req.headers['content-type'] ?? '', body: Buffer.concat(chunks) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port, posts };
}

function attachment(mail: string): Record<string, any> {
  const m = /Content-Type: application\/tlsrpt\+gzip\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: attachment;\r\n\tfilename="[^"]+"\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n\r\n--/.exec(mail);
  assert.ok(m, `no tlsrpt attachment in:\n${mail}`);
  return JSON.parse(gunzipSync(Buffer.from(m[1]!.replace(/\r\n/g, ''), 'base64')).toString('utf8'));
}

const sorted = (o: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));

interface DomainView { domain: string; sessions: number; successful: number; failed: number; failures: Record<string, number> }

async function recorded(inst: Instance): Promise<DomainView[]> {
  const r = await inst.cli(['tlsrpt', '--json']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout).periods as Array<{ domains: DomainView[] }>)
    .flatMap((p) => p.domains)
    .map(({ domain, sessions, successful, failed, failures }) => ({ domain, sessions, successful, failed, failures: sorted(failures) }));
}

/** RFC 8460 §4.4 policy-string and mx-host of a domain's policy (absent for no-policy-found). */
function policyFields(d: LabDomain, pki: TestPki): { 'policy-string'?: string[]; 'mx-host'?: string[] } {
  if (d.sts) {
    const lines = d.sts.policy.trimEnd().split('\n');
    return { 'policy-string': lines, 'mx-host': lines.filter((l) => l.startsWith('mx: ')).map((l) => l.slice(4)) };
  }
  // RFC 6698 §2.3 presentation: usage, selector, matching type, hex data.
  if (d.tlsa) return { 'policy-string': d.tlsa(pki).map((r) => r.join(' ')) };
  return {};
}

/** What `messages` deliveries per domain must have recorded. */
function expected(messages: Readonly<Record<string, number>>): DomainView[] {
  return DOMAINS.filter((d) => (messages[d.name] ?? 0) > 0).map((d) => {
    const n = messages[d.name]!;
    const failures = Object.fromEntries(Object.entries(d.perMessage.failures).map(([k, v]) => [k, v * n]));
    const failed = Object.values(failures).reduce((a, b) => a + b, 0);
    return { domain: d.name, sessions: d.perMessage.successes * n + failed, successful: d.perMessage.successes * n, failed, failures: sorted(failures) };
  }).sort((a, b) => a.domain.localeCompare(b.domain));
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timeout: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function deliverAll(inst: Instance, d: Daemon, batch: Readonly<Record<string, number>>, seq: { n: number }): Promise<void> {
  const ids: string[] = [];
  for (const [domain, n] of Object.entries(batch)) {
    for (let i = 0; i < n; i++) {
      const { client } = await SmtpClient.connect(inst.port);
      const reply = await client.send('alice@sealpost.example', [`u${++seq.n}@${domain}`], `Subject: day ${seq.n}\r\n\r\nhello\r\n`);
      client.close();
      ids.push(/queued as ([0-9A-F]+)/.exec(reply)![1]!);
    }
  }
  // Sent and removed: nothing of the day is left to deliver again after the SIGKILL.
  for (const id of ids) {
    await d.waitFor(new RegExp(`${id}: to=<[^>]+>, .*status=sent `), 20_000);
    await d.waitFor(new RegExp(`${id}: removed`), 20_000);
  }
}

const sum = (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>) =>
  Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, (a[k] ?? 0) + (b[k] ?? 0)]));

test('a day of real deliveries → send --now: one report per domain per rua with the exact counts; SIGKILL loses nothing; no report without _smtp._tls; report mail not counted', { timeout: 180_000 }, async () => {
  const t = tempDir('sealpost-tlsrpt-day-');
  chmodSync(t.dir, 0o755); // the daemon (mail_owner) reads the CA file
  const hosts = [...DOMAINS.flatMap((d) => d.mx.map((m) => m.host)), ...DOMAINS.filter((d) => d.sts).map((d) => `mta-sts.${d.name}`), '127.0.0.1'];
  const pki = makePki(t.dir, hosts);
  const web = await httpsReceiver(pki);
  const httpsRua = `https://127.0.0.1:${web.port}/tlsrpt/v1`;
  const mxs = [...DOMAINS.flatMap((d) => d.mx), REPORTS_MX];
  const rx: Receiver[] = await startReceivers(mxs.map((m) => ({ host: m.ip, name: m.host, ...m.receiver(pki) })));
  const reports = rx[rx.length - 1]!;
  const stsSites = Object.fromEntries(DOMAINS.filter((d) => d.sts).map((d): [string, StsSite] => [`mta-sts.${d.name}`, { cert: pki.server, policy: d.sts!.policy }]));
  const sts = await startStsServer({ sites: stsSites });
  const dns = await startDnsServer(zoneOf(httpsRua, rx[0]!.port, sts.address, pki));
  const policies = [...DOMAINS.filter((d) => d.policy).map((d) => `{${d.name} = ${d.policy}}`), '{reports.example = secure}'].join(', ');
  const inst = await makeInstance();
  try {
    inst.writeMainCf([
      `sealpost_dns_resolvers = 127.0.0.1:${dns.port}`,
      `smtp_tcp_port = ${rx[0]!.port}`,
      'smtp_tls_security_level = may',
      `smtp_tls_CAfile = ${pki.caCert}`,
      `smtp_tls_policy_maps = inline:{ ${policies} }`,
      'smtp_dns_support_level = dnssec',
      'mydomain = sealpost.example',
      'sealpost_tlsrpt_organization = Sealpost Lab',
      'minimal_backoff_time = 300s',
      'queue_run_delay = 300s',
    ].join('\n'));
    inst.writeMasterCf(`127.0.0.1:${inst.port} inet n - n - - smtpd\nsmtp unix - - n - - smtp\n`);
    const seq = { n: 0 };

    // Morning: deliveries, then the daemon is killed (its counts are on disk by then) ...
    const morning = { 'alpha.example': 2, 'beta.example': 1, 'sts.example': 1, 'dane.example': 1 };
    let d = await inst.startFg();
    await deliverAll(inst, d, morning, seq);
    await until('morning counts on disk', async () => JSON.stringify(await recorded(inst)) === JSON.stringify(expected(morning)));
    d.kill('SIGKILL');
    await d.exited;

    // ... afternoon: a fresh start reopens the day's period and adds to it.
    const afternoon = { 'alpha.example': 1, 'beta.example': 1, 'quiet.example': 1, 'sts.example': 1, 'dane.example': 2 };
    d = await inst.startFg();
    await deliverAll(inst, d, afternoon, seq);
    const day = sum(morning, afternoon);
    await until('the day on disk', async () => JSON.stringify(await recorded(inst)) === JSON.stringify(expected(day)));
    assert.deepEqual(await recorded(inst), expected(day), 'no count lost or doubled by the SIGKILL');

    const sent = await inst.cli(['tlsrpt', 'send', '--now']);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^tlsrpt: quiet\.example: no TLSRPT policy \(_smtp\._tls\.quiet\.example: NXDOMAIN\); no report$/m);
    const reporting = DOMAINS.filter((x) => x.rua);
    const mailed = reporting.filter((x) => x.rua!(httpsRua).includes('mailto:'));
    const posted = reporting.filter((x) => x.rua!(httpsRua).includes('https:'));
    await reports.waitForMessages(mailed.length, 30_000);
    await until('the HTTPS reports', async () => web.posts.length >= posted.length);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(reports.messages.length, mailed.length, 'one mail per domain');
    assert.equal(web.posts.length, posted.length, 'one POST per domain');

    const byDomain = new Map(reports.messages.map((m) => {
      const text = m.data.toString('utf8');
      return [/\r\nTLS-Report-Domain: (\S+)\r\n/.exec(text)![1]!, attachment(text)];
    }));
    for (const dom of reporting) {
      const want = expected(day).find((e) => e.domain === dom.name)!;
      const report = byDomain.get(dom.name);
      assert.ok(report, `a report for ${dom.name}`);
      assert.deepEqual(validateReport(report), []);
      assert.equal(report['organization-name'], 'Sealpost Lab');
      assert.equal(report.policies.length, 1);
      const p = report.policies[0];
      assert.deepEqual(p.policy, { 'policy-type': dom.policyType, 'policy-domain': dom.name, ...policyFields(dom, pki) });
      assert.deepEqual(p.summary, { 'total-successful-session-count': want.successful, 'total-failure-session-count': want.failed });
      const byType: Record<string, number> = {};
      for (const f of p['failure-details']) byType[f['result-type']] = (byType[f['result-type']] ?? 0) + f['failed-session-count'];
      assert.deepEqual(sorted(byType), want.failures);
      for (const f of p['failure-details']) {
        const m = dom.mx.find((x) => x.host === f['receiving-mx-hostname']);
        assert.ok(m, f['receiving-mx-hostname']);
        assert.equal(f['receiving-ip'], m.ip);
        assert.equal(f['sending-mta-ip'], '127.0.0.1');
      }
    }
    for (const post of web.posts) {
      assert.equal(post.type, 'application/tlsrpt+gzip');
      const report = JSON.parse(gunzipSync(post.body).toString('utf8'));
      assert.deepEqual(report, byDomain.get(report.policies[0].policy['policy-domain']), 'the HTTPS copy is the mailed report');
    }

    // Report mail went out despite the `secure` entry for its domain, and is not counted.
    assert.ok(reports.messages.every((m) => m.tls && m.mailFrom === 'noreply-smtp-tls-reporting@sealpost.example'));
    assert.ok(!(await recorded(inst)).some((v) => v.domain === 'reports.example'), 'report mail is never counted');
    d.kill('SIGTERM');
    await d.exited;
  } finally {
    inst.cleanup();
    await dns.close();
    await sts.close();
    await Promise.all(rx.map((r) => r.close()));
    web.server.close();
    t.cleanup();
  }
});
