/**
 * fetch.test.ts — the MTA-STS policy fetch: how each answer is classified
 * (RFC 8460 result types), and the real HTTPS getter against the lab policy
 * host on port 443 of a loopback address: verified certificates (trust,
 * names, strict wildcards), no redirects, status, media type, size limit
 * (with and without Content-Length), binary bodies, deadline, a host that is
 * down or not listening.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpsGetter, fetchStsPolicy, mediaType, stsPolicyHost, stsTrustRoots } from '../../../../src/delivery/mta-sts/fetch.ts';
import type { HttpsGetResult, HttpsGetter } from '../../../../src/delivery/mta-sts/fetch.ts';
import { makeCa, mintCert } from '../../../harness/pki.ts';
import type { ServerCert } from '../../../harness/pki.ts';
import { startStsServer } from '../../../harness/sts-server.ts';
import type { StsLab } from '../../../harness/sts-server.ts';
import { loadConfig } from '../../../../src/config/load.ts';
import { rootCertificates } from 'node:tls';
import { writeFileSync } from 'node:fs';

const POLICY = 'version: STSv1\nmode: enforce\nmx: *.good.example\nmax_age: 86400\n';
const LIMITS = { timeoutMs: 2000, maxBytes: 65536 };

const fixed = (r: HttpsGetResult): HttpsGetter => async () => r;
const ok = (body: string, contentType = 'text/plain; charset=utf-8'): HttpsGetResult => ({ kind: 'response', status: 200, contentType, body: Buffer.from(body), address: '192.0.2.1' });

test('classification: policy, fetch errors, invalid policies, PKIX failures', async () => {
  const good = await fetchStsPolicy('good.example', fixed(ok(POLICY)), LIMITS);
  assert.ok(good.ok && good.policy.mode === 'enforce');
  const cases: Array<[HttpsGetResult, string, RegExp]> = [
    [{ kind: 'error', stage: 'certificate', message: 'certificate not trusted (CERT_HAS_EXPIRED)' }, 'sts-webpki-invalid', /CERT_HAS_EXPIRED/],
    [{ kind: 'error', stage: 'dns', message: 'host not found' }, 'sts-policy-fetch-error', /host not found/],
    [{ kind: 'error', stage: 'timeout', message: 'no answer within 2000 ms' }, 'sts-policy-fetch-error', /no answer/],
    [{ kind: 'error', stage: 'tls', message: 'handshake failed' }, 'sts-policy-fetch-error', /handshake/],
    [{ kind: 'response', status: 301, contentType: '', location: 'https://x.example/', body: Buffer.alloc(0), address: 'a' }, 'sts-policy-fetch-error', /redirect \(HTTP 301 to https:\/\/x\.example\/\) not followed/],
    [{ kind: 'response', status: 404, contentType: 'text/plain', body: Buffer.alloc(0), address: 'a' }, 'sts-policy-fetch-error', /HTTP status 404/],
    [ok(POLICY, 'text/html'), 'sts-policy-invalid', /media type "text\/html" is not text\/plain/],
    [{ kind: 'too-large', status: 200, contentType: 'text/plain', address: 'a' }, 'sts-policy-invalid', /larger than 65536 bytes/],
    [{ kind: 'response', status: 200, contentType: 'text/plain', body: Buffer.from([0xff, 0x00]), address: 'a' }, 'sts-policy-invalid', /not UTF-8/],
    [ok('version: STSv1\nmode: enforce\n'), 'sts-policy-invalid', /no "max_age"/],
  ];
  for (const [r, type, detail] of cases) {
    const f = await fetchStsPolicy('good.example', fixed(r), LIMITS);
    assert.equal(!f.ok && f.failure.type, type, JSON.stringify(r));
    assert.match(!f.ok ? f.failure.detail : '', detail);
    assert.match(!f.ok ? f.failure.detail : '', /^https:\/\/mta-sts\.good\.example\/\.well-known\/mta-sts\.txt: /);
  }
  assert.equal(mediaType('Text/Plain ; charset=UTF-8'), 'text/plain');
  assert.equal(stsPolicyHost('example.com.'), 'mta-sts.example.com');
});

test('the roots secure uses: CAfile/CApath, else the system roots', () => {
  const d = mkdtempSync(join(tmpdir(), 'sealpost-sts-roots-'));
  try {
    writeFileSync(join(d, 'master.cf'), '');
    writeFileSync(join(d, 'main.cf'), '');
    assert.equal(stsTrustRoots(loadConfig({ configDir: d, warn: () => undefined })).length, rootCertificates.length);
    const ca = makeCa(d, 'roots-ca');
    writeFileSync(join(d, 'main.cf'), `smtp_tls_CAfile = ${ca.cert}\n`);
    assert.deepEqual(stsTrustRoots(loadConfig({ configDir: d, warn: () => undefined })).map((p) => p.trim()), [readFileSync(ca.cert, 'utf8').trim()]);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

let dir: string;
let lab: StsLab;
let getter: HttpsGetter;
const certs: Record<string, ServerCert> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sealpost-sts-fetch-'));
  const root = makeCa(dir, 'root');
  const rogue = makeCa(dir, 'rogue');
  const mint = (name: string, names: string[], issuer = root) => mintCert(dir, name, { names, issuer, chain: [issuer] });
  certs.good = mint('good', ['mta-sts.good.example']);
  certs.wild = mint('wild', ['*.wild.example']);
  certs.partial = mint('partial', ['mta*.partial.example']);
  certs.untrusted = mint('untrusted', ['mta-sts.untrusted.example'], rogue);
  certs.expired = mintCert(dir, 'expired', { names: ['mta-sts.expired.example'], issuer: root, chain: [root], start: '20200101000000Z', end: '20200201000000Z' });
  certs.multi = mint('multi', ['redirect', 'missing', 'big', 'bigchunked', 'binary', 'html', 'slow', 'down'].map((n) => `mta-sts.${n}.example`));
  const site = (cert: ServerCert, extra: object = {}) => ({ cert, policy: POLICY, ...extra });
  lab = await startStsServer({
    sites: {
      'mta-sts.good.example': site(certs.good!),
      'mta-sts.wild.example': site(certs.wild!),
      'mta-sts.partial.example': site(certs.partial!),
      'mta-sts.untrusted.example': site(certs.untrusted!),
      'mta-sts.expired.example': site(certs.expired!),
      'mta-sts.redirect.example': site(certs.multi!, { behavior: 'redirect' }),
      'mta-sts.missing.example': site(certs.multi!, { behavior: 'status', status: 404 }),
      'mta-sts.big.example': site(certs.multi!, { behavior: 'oversized' }),
      'mta-sts.bigchunked.example': site(certs.multi!, { behavior: 'oversized', chunked: true }),
      'mta-sts.binary.example': site(certs.multi!, { behavior: 'binary' }),
      'mta-sts.html.example': site(certs.multi!, { behavior: 'wrong-type' }),
      'mta-sts.slow.example': site(certs.multi!, { behavior: 'slow' }),
      'mta-sts.down.example': site(certs.multi!, { behavior: 'down' }),
    },
  });
  getter = createHttpsGetter({
    roots: [readFileSync(join(dir, 'root.crt'), 'utf8')],
    addresses: async (host) => (host.endsWith('.nxdomain.example')
      ? { status: 'notfound', reason: 'NXDOMAIN', authenticated: false }
      : { status: 'found', records: [{ address: lab.address, family: 4 }], authenticated: false }),
  });
});
after(async () => {
  await lab.close();
  rmSync(dir, { recursive: true, force: true });
});

const fetch = (domain: string, limits = LIMITS) => fetchStsPolicy(domain, getter, limits);

test('the lab host listens on port 443 of a loopback address; a verified fetch sends SNI and Host', async () => {
  assert.equal(lab.port, 443);
  assert.match(lab.address, /^127\./);
  const f = await fetch('good.example');
  assert.ok(f.ok, JSON.stringify(f));
  assert.deepEqual(f.policy.mx, ['*.good.example']);
  assert.deepEqual(lab.requests.at(-1), { sni: 'mta-sts.good.example', host: 'mta-sts.good.example', path: '/.well-known/mta-sts.txt' });
  assert.ok((await fetch('wild.example')).ok, 'a whole-label wildcard names the policy host');
});

test('certificates: untrusted, expired, wrong name, partial wildcard → sts-webpki-invalid, before any request', async () => {
  const before = lab.requests.length;
  for (const [domain, why] of [['untrusted.example', /not trusted/], ['expired.example', /CERT_HAS_EXPIRED/], ['partial.example', /does not name mta-sts\.partial\.example/], ['other.example', /does not name mta-sts\.other\.example/]] as const) {
    const f = await fetch(domain);
    assert.equal(!f.ok && f.failure.type, 'sts-webpki-invalid', domain);
    assert.match(!f.ok ? f.failure.detail : '', why, domain);
  }
  assert.equal(lab.requests.length, before, 'no request was sent to an unverified host');
});

test('redirects are refused, other statuses too', async () => {
  const r = await fetch('redirect.example');
  assert.deepEqual(!r.ok && [r.failure.type, /redirect \(HTTP 301 to https:\/\/elsewhere\.example\/\.well-known\/mta-sts\.txt\) not followed/.test(r.failure.detail)], ['sts-policy-fetch-error', true]);
  const m = await fetch('missing.example');
  assert.match(!m.ok ? m.failure.detail : '', /HTTP status 404/);
});

test('size limit with and without Content-Length, binary body, wrong media type: sts-policy-invalid', async () => {
  for (const d of ['big.example', 'bigchunked.example']) {
    const f = await fetch(d);
    assert.deepEqual(!f.ok && [f.failure.type, /larger than 65536 bytes/.test(f.failure.detail)], ["sts-policy-invalid", true], `${d}: ${JSON.stringify(f)}`);
  }
  const small = await fetch('good.example', { timeoutMs: 2000, maxBytes: 20 });
  assert.equal(!small.ok && small.failure.type, 'sts-policy-invalid');
  const bin = await fetch('binary.example');
  assert.match(!bin.ok ? bin.failure.detail : '', /not UTF-8 text \(bad byte at offset 3\)/);
  const html = await fetch('html.example');
  assert.match(!html.ok ? html.failure.detail : '', /media type "text\/html"/);
});

test('deadline, a refused handshake, no address, nothing listening: sts-policy-fetch-error', async () => {
  const slow = await fetch('slow.example', { timeoutMs: 300, maxBytes: 65536 });
  assert.deepEqual(!slow.ok && [slow.failure.type, /no answer within 300 ms/.test(slow.failure.detail)], ['sts-policy-fetch-error', true]);
  const down = await fetch('down.example');
  assert.equal(!down.ok && down.failure.type, 'sts-policy-fetch-error');
  const nx = await fetch('nxdomain.example');
  assert.match(!nx.ok ? nx.failure.detail : '', /host not found \(NXDOMAIN\)/);
  await lab.pause();
  try {
    const refused = await fetch('good.example');
    assert.deepEqual(!refused.ok && [refused.failure.type, /ECONNREFUSED/.test(refused.failure.detail)], ['sts-policy-fetch-error', true]);
  } finally {
    await lab.resume();
  }
  assert.ok((await fetch('good.example')).ok, 'back after resume');
});
