/**
 * tls-explain.test.ts — `sealpost tls explain`: the relayhost trap (warning
 * and fix), the same domain routed by transport_maps, name checks, invalid
 * entries and lookup errors, non-SMTP routes, usage errors; one golden output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sealpost, tempDir } from '../../harness/cli.ts';
import { describeMatch, suggestHopEntry } from '../../../src/cli/tls-explain.ts';

async function explain(mainCf: string, policy: string, args: string[]) {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), `myhostname = mail.example.org\nmydomain = example.org\n${mainCf.replaceAll('DIR', t.dir)}`);
    writeFileSync(join(t.dir, 'tls_policy'), policy);
    // -n: no DNS or HTTPS lookups (nothing leaves the machine).
    const r = await sealpost(['tls', 'explain', '-c', t.dir, '-n', ...args]);
    return { ...r, stdout: r.stdout.replaceAll(t.dir, 'DIR') };
  } finally {
    t.cleanup();
  }
}

const TRAP_CF = 'relayhost = [smtp.provider.net]:587\nsmtp_tls_policy_maps = texthash:DIR/tls_policy\nsmtp_tls_security_level = may\n';
const POLICY = 'example.com secure\n';

const TRAP_GOLDEN = `recipient: <bob@example.com>
sender: <alice@example.org>
route:
  domain class: default (example.com is not in mydestination or relay_domains)
  default_transport: smtp
  relayhost: [smtp.provider.net]:587
  transport_maps: (empty)
  result: transport smtp, next hop [smtp.provider.net]:587
transport: smtp
next hop: [smtp.provider.net]:587
  smtp_tls_policy_maps:
    texthash:DIR/tls_policy: key "[smtp.provider.net]:587": not found
    no entry matched: the main.cf default applies
  MTA-STS: not consulted: a [host] next hop has no MX hosts to match
  level: may (from smtp_tls_security_level)
  meaning: opportunistic: STARTTLS when the server offers it, otherwise plaintext; the certificate is not checked
WARNING: texthash:DIR/tls_policy has the entry "example.com secure", but it is never consulted for <bob@example.com>:
  the TLS policy table is keyed by the next hop, and mail for example.com goes to [smtp.provider.net]:587 (relayhost).
  fix: route example.com directly with transport_maps: add "example.com  smtp:" to the transport table (postmap it, then sealpost reload);
       the next hop becomes example.com, found by MX lookup (needs outbound port 25), and the entry applies.
  or: give the next hop its own policy entry, e.g. "[smtp.provider.net]:587  secure" in texthash:DIR/tls_policy.
`;

test('golden: the relayhost trap is explained, with the fix', async () => {
  const r = await explain(TRAP_CF, POLICY, ['-s', 'alice@example.org', 'bob@example.com']);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, TRAP_GOLDEN);
});

test('with "example.com smtp:" in transport_maps the entry applies and no warning is given', async () => {
  const r = await explain(`${TRAP_CF}transport_maps = inline:{{example.com=smtp:}}\n`, POLICY, ['bob@example.com']);
  assert.equal(r.code, 0);
  assert.doesNotMatch(r.stdout, /WARNING/);
  assert.match(r.stdout, /\nnext hop: example\.com\n/);
  assert.match(r.stdout, /key "example\.com": found: "secure"/);
  assert.match(r.stdout, /level: secure \(from texthash:DIR\/tls_policy entry "example\.com"\)/);
  assert.match(r.stdout, /certificate names that must match \(smtp_tls_secure_cert_match\):\n {4}nexthop {6}example\.com\n {4}dot-nexthop  any name under \.example\.com/);
});

test('a relayhost with its own entry: the warning says to make that entry strict enough', async () => {
  const r = await explain(TRAP_CF, `${POLICY}[smtp.provider.net]:587 encrypt\n`, ['bob@example.com']);
  assert.match(r.stdout, /level: encrypt/);
  assert.match(r.stdout, /WARNING: .*"example\.com secure"/);
  assert.match(r.stdout, /or: make the next hop's own entry "\[smtp\.provider\.net\]:587 encrypt" as strict as you need/);
});

test('.parent walk, match= names, several recipients in one run', async () => {
  const r = await explain('smtp_tls_policy_maps = texthash:DIR/tls_policy\n', '.partner.net verify match=hostname:nexthop\n', ['a@mx.partner.net', 'b@other.example']);
  const [first, second] = r.stdout.split('\n\nrecipient:');
  assert.match(first!, /key "mx\.partner\.net": not found\n {4}texthash:DIR\/tls_policy: key "\.partner\.net": found: "verify match=hostname:nexthop"/);
  assert.match(first!, /certificate names that must match \(match= of the policy entry\):\n {4}hostname {5}the MX host name of each server of mx\.partner\.net/);
  assert.match(second!, /key "\.example": not found\n {4}no entry matched/);
});

test('invalid entry: Postfix warning, level INVALID, deferral; lookup error: client TLS configuration problem (Postfix 3.7/3.11)', async () => {
  const bad = await explain('smtp_tls_policy_maps = texthash:DIR/tls_policy\n', 'bad.example encrypt match=foo\n', ['y@bad.example']);
  assert.match(bad.stdout, /warning: smtp_tls_policy_maps, next-hop destination "bad\.example": attribute "match" invalid at security level "encrypt"/);
  assert.match(bad.stdout, /level: INVALID/);
  assert.match(bad.stdout, /deferred: dsn=4\.7\.5 \(client TLS configuration problem\); never sent in plaintext/);
  const err = await explain('smtp_tls_policy_maps = socketmap:inet:127.0.0.1:1:policy\n', '', ['y@any.example']);
  assert.equal(err.code, 0);
  assert.match(err.stdout, /LOOKUP ERROR/);
  assert.match(err.stdout, /LOOKUP ERROR: .*\(mail is deferred: client TLS configuration problem\)/);
  assert.match(err.stdout, /warning: smtp_tls_policy_maps, next-hop destination "any\.example": policy table lookup error/);
  assert.match(err.stdout, /dsn=4\.7\.5 \(client TLS configuration problem\)/);
});

test('non-SMTP routes: local bounce, error: transport', async () => {
  const local = await explain('', '', ['root@mail.example.org']);
  assert.match(local.stdout, /result: bounced, dsn=5\.1\.1 \(unknown user: "root" \(sealpost has no local delivery: route this domain with transport_maps, or take it out of mydestination\)\)/);
  const err = await explain('transport_maps = inline:{{closed.example=error:5.7.1 closed}}\n', '', ['u@closed.example']);
  assert.match(err.stdout, /transport: error\nno connection: master\.cf service error bounces the mail with "5\.7\.1 closed"/);
});

test('smtp_fallback_relay hops get their own policy block', async () => {
  const r = await explain('smtp_fallback_relay = [backup.example]\nsmtp_tls_policy_maps = texthash:DIR/tls_policy\n', '[backup.example] encrypt\n', ['u@dest.example']);
  assert.match(r.stdout, /smtp_fallback_relay \(tried when the next hops above fail\): \[backup\.example\]\nfallback next hop: \[backup\.example\]\n {2}smtp_tls_policy_maps:\n {4}texthash:DIR\/tls_policy: key "\[backup\.example\]": found: "encrypt"\n {2}MTA-STS: not consulted: the policy table entry decides\n {2}level: encrypt/);
});

test('usage errors exit 64 with the usage line', async () => {
  for (const args of [['tls'], ['tls', 'explain'], ['tls', 'frobnicate', 'a@b'], ['tls', 'explain', '-x', 'a@b']]) {
    const r = await sealpost(args);
    assert.equal(r.code, 64, args.join(' '));
    assert.match(r.stderr, /usage: sealpost tls explain/);
  }
});

test('describeMatch: hostname for [host] next hops is the host itself', () => {
  assert.equal(describeMatch('hostname', '[mx.example.com]:25', 'mx.example.com'), 'mx.example.com (the server name of the [host] next hop)');
  assert.equal(describeMatch('.Example.COM', 'example.com', 'example.com'), 'any name under .example.com');
  assert.equal(describeMatch('mail.example.net', 'example.com', 'example.com'), 'mail.example.net');
});

test('master.cf: -o overrides of the delivering service decide the policy; unknown services are named', async () => {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), 'myhostname = mail.example.org\nrelay_domains = partner.example\nsmtp_tls_security_level = may\n');
    writeFileSync(
      join(t.dir, 'master.cf'),
      'smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n  -o smtp_tls_security_level=encrypt\nerror unix - - n - - error\n',
    );
    const r = await sealpost(['tls', 'explain', '-c', t.dir, '-n', 'a@partner.example', 'b@elsewhere.example']);
    assert.equal(r.code, 0, r.stderr);
    const [relay, plain] = r.stdout.split('\n\nrecipient:');
    assert.match(relay!, /transport: relay\nmaster\.cf service relay \(line 2\) overrides: -o smtp_tls_security_level=encrypt\n/);
    assert.match(relay!, /level: encrypt \(from smtp_tls_security_level\)/);
    assert.match(plain!, /level: may \(from smtp_tls_security_level\)/);
    const missing = await sealpost(['tls', 'explain', '-c', t.dir, '-n', '-s', 'x@y', 'c@z.example'], {});
    assert.match(missing.stdout, /transport: smtp\n/);
    writeFileSync(join(t.dir, 'main.cf'), 'myhostname = mail.example.org\ndefault_transport = nosuch\n');
    const none = await sealpost(['tls', 'explain', '-c', t.dir, '-n', 'c@z.example']);
    assert.match(none.stdout, /no master\.cf service "nosuch": mail would wait in the queue until one is defined/);
  } finally {
    t.cleanup();
  }
});

test('relayhost trap fix: the suggested relayhost entry never carries the recipient\'s match= names', async () => {
  const r = await explain(TRAP_CF, 'example.com secure match=mx1.example.com:mx2.example.com\n', ['bob@example.com']);
  const fix = r.stdout.split('\n').find((l) => l.startsWith('  or: '));
  assert.equal(fix, '  or: give the next hop its own policy entry, e.g. "[smtp.provider.net]:587  secure" in texthash:DIR/tls_policy.');
  assert.doesNotMatch(fix!, /mx1\.example\.com/);
});

test('relayhost trap fix: never a level weaker than the relayhost\'s own entry', async () => {
  const r = await explain(TRAP_CF, 'example.com encrypt\n[smtp.provider.net]:587 secure\n', ['bob@example.com']);
  assert.match(r.stdout, /WARNING: .*"example\.com encrypt"/);
  assert.match(r.stdout, /or: keep the next hop's own entry "\[smtp\.provider\.net\]:587 secure": it already demands at least what "example\.com encrypt" asks for\./);
  assert.doesNotMatch(r.stdout, /e\.g\. "\[smtp\.provider\.net\]:587 {2}encrypt"/);
});

test('relayhost trap fix: the relayhost\'s own names are kept, each listed once', async () => {
  const r = await explain(TRAP_CF, 'example.com secure match=mx.example.com\n[smtp.provider.net]:587 verify match=smtp.provider.net:SMTP.provider.net:nexthop\n', ['bob@example.com']);
  assert.match(r.stdout, /as strict as you need \(e\.g\. "\[smtp\.provider\.net\]:587 {2}secure match=smtp\.provider\.net:nexthop"\)\./);
});

test('suggestHopEntry: level from the recipient entry unless the own entry is at least as strong; only the own attributes that still mean the same', () => {
  assert.equal(suggestHopEntry('secure match=mx.example.com servername=mx.example.com'), 'secure');
  assert.equal(suggestHopEntry('encrypt', 'may'), 'encrypt');
  assert.equal(suggestHopEntry('encrypt', 'secure'), undefined);
  assert.equal(suggestHopEntry('verify', 'verify match=relay.example'), undefined);
  // protocols= of the own entry stay; its fingerprints do not become names.
  assert.equal(suggestHopEntry('secure', 'encrypt protocols=>=TLSv1.2'), 'secure protocols=>=TLSv1.2');
  assert.equal(suggestHopEntry('secure', 'fingerprint match=AB:CD'), 'secure');
  // A recipient fingerprint entry names the recipient's certificates: the relay gets secure instead.
  assert.equal(suggestHopEntry('fingerprint match=12:34'), 'secure');
  // An own entry that does not parse (match= is invalid at encrypt) lends nothing to the suggestion.
  assert.equal(suggestHopEntry('verify', 'encrypt match=x'), 'verify');
});
