/**
 * tls-finger.ts — `sealpost tls-finger [options] destination [match ...]`:
 * probe the SMTP servers of a destination the way posttls-finger(1) does, and
 * say for each security level whether sealpost would deliver there, with the
 * reason Postfix would log.
 *
 * Contract:
 * - Options have posttls-finger(1)'s letters (posttls-finger.c "a:ch:o:RSt:T:v"
 *   and "A:Cd:fF:g:H:k:K:l:L:m:M:p:P:r:s:wxX"); the ones sealpost supports map
 *   to the main.cf parameters the SMTP client reads: -a (inet_protocols), -h
 *   (smtp_host_lookup), -o name=value, -A (smtp_tls_trust_anchor_file), -d
 *   (smtp_tls_fingerprint_digest), -F (smtp_tls_CAfile), -P
 *   (smtp_tls_CApath), -g (the cipher grades), -p (the protocols), -H
 *   (smtp_tls_chain_files), -k/-K (smtp_tls_cert_file/key_file), -s
 *   (smtp_tls_servername); -l level; -t connect+greeting and -T command
 *   timeouts (seconds); -c no SMTP chat lines; -C print the chain in PEM; -v
 *   is accepted. The others (-f -L -m -M -r -R -S -w -x -X: the DANE switches
 *   — their main.cf parameters work with -o —, logging options, reconnects,
 *   SRV, LMTP, wrapper mode, raw public keys, tlsproxy) are refused with one
 *   line naming the option. The configuration
 *   directory: `sealpost -c config_dir tls-finger ...` or $MAIL_CONFIG.
 * - destination is `domain`, `domain:port`, `[host]` or `[host]:port`
 *   (`inet:` accepted); without brackets the MX hosts are looked up
 *   (delivery/smtp/connect.ts resolveHop, the resolver honours
 *   `sealpost_dns_resolvers`); the default port is `smtp_tcp_port`.
 * - Per server address: connect, greeting, EHLO capabilities, STARTTLS, the
 *   protocol and cipher, the presented chain (subject, issuer, validity, DNS
 *   names, certificate and public-key fingerprints with smtp_tls_fingerprint_digest
 *   or -d), the name checks (hostname, nexthop, dot-nexthop and the match
 *   arguments), then one verdict per level (may, encrypt, fingerprint when a
 *   fingerprint was given, dane when smtp_dns_support_level = dnssec, verify,
 *   secure; only -l's level when given). The verdicts come from the real
 *   engine: createTlsEngine + its per-server step + enforce.ts, with the level
 *   forced by a config override, exactly what the SMTP client would do. The
 *   `dane` verdict looks the server's TLSA records up (sealpost_dns_resolvers)
 *   and matches them against the presented chain; its lines list the records.
 * - MTA-STS: for a domain destination the `_mta-sts` TXT record and the
 *   policy are looked up first (the cache in data_directory is read, never
 *   written; a policy not cached is fetched over HTTPS and shown) and
 *   printed; with a policy in mode enforce or testing, each server gets an
 *   `mta-sts` verdict too (an unlisted MX: "not tried"). The level verdicts
 *   themselves never apply MTA-STS, as posttls-finger ignores policies. The
 *   one handshake is made with the strictest level's options: the MTA-STS
 *   and DANE verdicts judge the chain that handshake received (SNI as that
 *   level sends it; the chain trust against smtp_tls_CAfile/CApath).
 * - Like posttls-finger(1) it does NOT consult smtp_tls_policy_maps: match
 *   arguments replace smtp_tls_{verify,secure,fingerprint}_cert_match (an
 *   argument that looks like a fingerprint goes to the fingerprint level).
 * - One TLS handshake per address (with the options of the strictest level
 *   judged); every level's evaluation is made on that same session. QUIT at
 *   the end. Exit 0 when at least one server answered, 1 otherwise; usage
 *   errors exit 64.
 *
 * Not here: sending mail.
 */
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { EX, UsageError } from '../lib/errors.ts';
import { TableSet } from '../maps/registry.ts';
import { memoryMailLog } from '../reports/maillog.ts';
import { createResolver, type FullResolver } from '../delivery/dns/resolver.ts';
import { ReadOnlyStsCache, StsCache } from '../delivery/mta-sts/cache.ts';
import { createStsService, stsCacheDir, type StsLookup, type StsPolicySource } from '../delivery/mta-sts/service.ts';
import { daneSettings } from '../delivery/tls/dane.ts';
import { connectSettings, openSocket, resolveHop, type ServerTarget } from '../delivery/smtp/connect.ts';
import { ChatFailure, SmtpChat } from '../delivery/smtp/chat.ts';
import { parseEhloReply } from '../smtp/ehlo.ts';
import type { SmtpReply } from '../smtp/reply.ts';
import { createTlsEngine, type SealpostTlsEngine } from '../delivery/tls/engine.ts';
import { onHandshakeFailed, onPeerEvaluated, onStarttlsNotOffered, onStarttlsRefused, wantStarttls } from '../delivery/tls/enforce.ts';
import { parseLevel } from '../delivery/tls/level.ts';
import { certNames, expectedNames, fingerprints, matchServerName, peerFacts, type CertFacts, type PeerFacts } from '../delivery/tls/verify.ts';
import type { ConnectPolicy, TlsDecision, TlsLevel, TlsPolicy } from '../delivery/tls/types.ts';
import { cipherBits } from '../delivery/tls/summary.ts';
import type { CommandContext } from './context.ts';
import { getopt } from './getopt.ts';

const USAGE =
  'usage: sealpost tls-finger [-cCv] [-t conn_tmout] [-T cmd_tmout] [-a any|ipv4|ipv6] [-h host_lookup] [-l level] [-d mdalg] ' +
  '[-g grade] [-p protocols] [-A tafile] [-F CAfile.pem] [-P CApath/] [-s servername] [ [-H chainfiles] | [-k certfile [-K keyfile]] ] ' +
  '[-o name=value] destination [match ...]';

/** posttls-finger.c's option string. */
const OPTSTRING = 'a:ch:o:RSt:T:vA:Cd:fF:g:H:k:K:l:L:m:M:p:P:r:s:wxX';

/** posttls-finger(1) options sealpost's tls-finger does not have, and why. */
const REFUSED: Readonly<Record<string, string>> = {
  f: 'forced TLSA lookups (DANE): use -o smtp_tls_force_insecure_host_tlsa_lookup=yes',
  L: 'TLS logging options (the report is always complete)',
  m: 'reconnects behind load balancers',
  M: 'the insecure-MX DANE policy: use -o smtp_tls_dane_insecure_mx_policy=...',
  r: 'session resumption tests',
  R: 'SRV lookups',
  S: 'LMTP over a UNIX socket',
  w: 'SMTPS wrapper mode',
  x: 'raw public keys',
  X: 'tlsproxy mode',
};

/** The levels judged when -l is not given (fingerprint only with fingerprint match arguments, dane only with DNSSEC lookups). */
const DEFAULT_LEVELS: readonly TlsLevel[] = ['may', 'encrypt', 'fingerprint', 'dane', 'verify', 'secure'];

/** posttls-finger(1): a match argument of hex pairs is a certificate or public-key fingerprint. */
const FINGERPRINT = /^[0-9a-f]{2}(:[0-9a-f]{2}){15,}$|^[0-9a-f]{32,}$/i;

export interface FingerOptions {
  readonly configDir: string;
  readonly levels: readonly TlsLevel[];
  readonly destination: string;
  readonly names: readonly string[];
  readonly fingerprints: readonly string[];
  /** -t: connect and greeting. */
  readonly timeoutMs: number;
  /** -T: EHLO, STARTTLS, QUIT. */
  readonly commandTimeoutMs: number;
  /** -c: no SMTP chat lines. */
  readonly noChat: boolean;
  /** -C: print the chain in PEM. */
  readonly printChain: boolean;
  /** main.cf overrides common to every level (-a -h -o -A -d -F -P -g -p -H -k -K -s). */
  readonly overrides: Readonly<Record<string, string>>;
}

function usage(message: string): UsageError {
  return new UsageError(`${message}; ${USAGE}`);
}

/** posttls-finger.c: atoi() seconds; sealpost insists on a positive number. */
function seconds(flag: string, value: string): number {
  const m = /^(\d+)s?$/.exec(value);
  if (!m || Number(m[1]) === 0) throw usage(`invalid -${flag} timeout "${value}": give a number of seconds`);
  return Number(m[1]) * 1000;
}

/** The main.cf overrides of the TLS and lookup options. */
function overridesOf(o: ReturnType<typeof getopt>): Record<string, string> {
  const out: Record<string, string> = {};
  const family = o.value('a');
  if (family !== undefined) {
    // posttls-finger(1) -a: any, ipv4 or ipv6 (inet_protocols here).
    const v = ({ any: 'all', ipv4: 'ipv4', ipv6: 'ipv6' } as Record<string, string>)[family.toLowerCase()];
    if (!v) throw usage(`bad '-a' option value: ${family}`);
    out['inet_protocols'] = v;
  }
  const lookup = o.value('h');
  if (lookup !== undefined) {
    if (!lookup.split(/[\s,]+/).filter((w) => w !== '').every((w) => /^(dns|native)$/i.test(w))) throw usage(`bad '-h' option value: ${lookup}: use dns, native or "dns, native"`);
    out['smtp_host_lookup'] = lookup;
  }
  if (o.has('H') && (o.has('k') || o.has('K'))) throw usage("When the '-H' option is used, neither the '-k', nor the '-K' options may be used");
  const simple: ReadonlyArray<readonly [string, readonly string[]]> = [
    ['d', ['smtp_tls_fingerprint_digest']],
    ['F', ['smtp_tls_CAfile']],
    ['P', ['smtp_tls_CApath']],
    ['g', ['smtp_tls_ciphers', 'smtp_tls_mandatory_ciphers']],
    ['p', ['smtp_tls_protocols', 'smtp_tls_mandatory_protocols']],
    ['s', ['smtp_tls_servername']],
  ];
  for (const [flag, params] of simple) {
    const v = o.value(flag);
    if (v !== undefined) for (const p of params) out[p] = v;
  }
  if (o.has('A')) out['smtp_tls_trust_anchor_file'] = o.values('A').join(', ');
  if (o.has('H')) out['smtp_tls_chain_files'] = o.values('H').join(', ');
  // posttls-finger.c: -k and -K each default the other (one file with both).
  const cert = o.value('k') ?? o.value('K');
  const key = o.value('K') ?? o.value('k');
  if (cert !== undefined) out['smtp_tls_cert_file'] = cert;
  if (key !== undefined) out['smtp_tls_key_file'] = key;
  const digest = o.value('d');
  if (digest !== undefined && !/^[a-z0-9-]+$/i.test(digest)) throw usage(`invalid digest "${digest}": use sha256, sha1, md5 ...`);
  for (const nv of o.values('o')) {
    // posttls-finger.c override(): split_nameval(), else usage.
    const m = /^\s*([^\s=]+)\s*=\s*(.*?)\s*$/.exec(nv);
    if (!m) throw usage(`bad -o option "${nv}": use -o name=value`);
    out[m[1]!] = m[2]!;
  }
  return out;
}

/** Parse the command line (UsageError on anything wrong). */
export function parseFingerArgs(argv: readonly string[], env: CommandContext['env']): FingerOptions {
  const o = getopt(argv, OPTSTRING, USAGE);
  for (const [flag] of o.list) {
    const why = REFUSED[flag];
    if (why) throw new UsageError(`option -${flag} of posttls-finger (${why}) is not supported by sealpost tls-finger`);
  }
  const [rawDestination, ...matches] = o.rest;
  if (rawDestination === undefined || rawDestination === '') throw new UsageError(USAGE);
  if (rawDestination.startsWith('unix:')) throw new UsageError('unix: destinations (LMTP) are not supported by sealpost tls-finger');
  const destination = rawDestination.replace(/^inet:/, '');
  const level = o.value('l');
  let levels = DEFAULT_LEVELS;
  if (level !== undefined) {
    const l = parseLevel(level);
    // posttls-finger.c: `Invalid TLS level "%s"`.
    if (!l) throw usage(`Invalid TLS level "${level}": use none, may, encrypt, fingerprint, dane, dane-only, verify or secure`);
    levels = [l];
  }
  const fps = matches.filter((m) => FINGERPRINT.test(m));
  const names = matches.filter((m) => !FINGERPRINT.test(m));
  if (levels.length === 1 && levels[0] === 'fingerprint' && fps.length === 0) {
    throw usage('level fingerprint needs at least one certificate or public-key fingerprint as a match argument');
  }
  const t = o.value('t');
  const cmd = o.value('T');
  return {
    configDir: resolveConfigDir(undefined, env),
    levels: level === undefined && fps.length === 0 ? levels.filter((l) => l !== 'fingerprint') : levels,
    destination,
    names,
    fingerprints: fps,
    timeoutMs: t === undefined ? 30_000 : seconds('t', t),
    commandTimeoutMs: cmd === undefined ? 30_000 : seconds('T', cmd),
    noChat: o.has('c'),
    printChain: o.has('C'),
    overrides: overridesOf(o),
  };
}

/** One engine per judged level, each with its level forced and the policy table switched off. */
interface LevelJudge {
  /** The level, or `mta-sts (MODE)` for the MTA-STS judge. */
  readonly level: TlsLevel | string;
  readonly engine: SealpostTlsEngine;
  readonly policy: TlsPolicy;
  readonly warnings: string[];
}

function levelOverrides(opts: FingerOptions, level: TlsLevel): Record<string, string> {
  const o: Record<string, string> = {
    ...opts.overrides,
    smtp_tls_security_level: level,
    // posttls-finger(1): the policy table is not consulted.
    smtp_tls_policy_maps: '',
    smtp_tls_session_cache_database: '',
    // The level verdicts ignore published policies (the MTA-STS judge has its own).
    sealpost_mta_sts: 'no',
  };
  if (opts.names.length > 0) {
    o['smtp_tls_verify_cert_match'] = opts.names.join(', ');
    o['smtp_tls_secure_cert_match'] = opts.names.join(', ');
  }
  if (opts.fingerprints.length > 0) o['smtp_tls_fingerprint_cert_match'] = opts.fingerprints.join(', ');
  return o;
}

async function makeJudges(opts: FingerOptions, tables: TableSet, nexthop: string, resolver: FullResolver, sts: StsJudge | undefined): Promise<LevelJudge[]> {
  const judges: LevelJudge[] = [];
  for (const level of opts.levels) {
    const config = loadConfig({ configDir: opts.configDir, overrides: levelOverrides(opts, level) });
    const log = memoryMailLog();
    const engine = createTlsEngine({ config, tables, log, resolver });
    const policy = await engine.policyFor(nexthop, { tlsRequiredNo: false, requireTls: false });
    judges.push({ level, engine, policy, warnings: log.lines });
  }
  if (sts) {
    // The MTA-STS judge: main.cf's opportunistic floor, the published policy on top.
    const config = loadConfig({ configDir: opts.configDir, overrides: { ...levelOverrides(opts, 'may'), sealpost_mta_sts: 'yes' } });
    const log = memoryMailLog();
    const engine = createTlsEngine({ config, tables, log, resolver, sts: sts.source });
    const policy = await engine.policyFor(nexthop, { tlsRequiredNo: false, requireTls: false });
    judges.push({ level: `mta-sts (${sts.mode})`, engine, policy, warnings: log.lines });
  }
  return judges;
}

/** The destination's MTA-STS policy, when it publishes one (enforce or testing). */
interface StsJudge {
  readonly source: StsPolicySource;
  readonly mode: string;
}

/** Look the destination's MTA-STS policy up and print it; the judge when there is one. */
async function stsLookup(out: Out, config: LoadedConfig, destination: string, resolver: FullResolver): Promise<StsJudge | undefined> {
  if (destination.startsWith('[')) return undefined;
  if (!config.getBool('sealpost_mta_sts')) {
    out.line('MTA-STS: sealpost_mta_sts = no');
    return undefined;
  }
  const warnings: string[] = [];
  const warn = (t: string): void => void warnings.push(t);
  let source: StsPolicySource;
  try {
    source = createStsService(config, resolver, { warn }, undefined, new ReadOnlyStsCache(new StsCache(stsCacheDir(config), warn)));
  } catch (err) {
    out.line(`MTA-STS: not looked up: ${(err as Error).message}`);
    return undefined;
  }
  const domain = destination.replace(/:[^:]*$/, '').toLowerCase();
  const r: StsLookup = await source.lookup(domain);
  for (const w of warnings) out.line(`MTA-STS: warning: ${w}`);
  if (r.kind === 'error') out.line(`MTA-STS: ${r.detail}`);
  else if (r.kind === 'none') out.line(`MTA-STS: no policy: ${r.detail}`);
  else {
    const p = r.policy;
    out.line(`MTA-STS: policy of ${p.domain} (${r.from === 'cache' ? 'from the cache' : 'fetched now; not stored'}): mode ${p.mode}, id ${p.id}, mx ${p.mx.join(' ')}, expires ${isoDate(p.expiresAt)}`);
    return { source, mode: p.mode };
  }
  return undefined;
}

/** What happened at one address. */
type TlsOutcome =
  | { readonly kind: 'skipped' }
  | { readonly kind: 'not-offered' }
  | { readonly kind: 'refused'; readonly reply: string }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'ok'; readonly socket: TLSSocket; readonly facts: PeerFacts; readonly verdicts: readonly string[] };

interface Out {
  line(text: string): void;
}

function handshake(raw: Socket, options: ConnectionOptions, timeoutMs: number): Promise<TLSSocket | string> {
  return new Promise((resolve) => {
    const ts = tlsConnect({ ...options, socket: raw });
    const timer = setTimeout(() => {
      ts.destroy();
      resolve('handshake timed out');
    }, timeoutMs);
    ts.once('secureConnect', () => {
      clearTimeout(timer);
      ts.removeAllListeners('error');
      ts.on('error', () => undefined);
      resolve(ts);
    });
    ts.once('error', (err) => {
      clearTimeout(timer);
      ts.destroy();
      resolve(err.message);
    });
  });
}

function showReply(out: Out, label: string, r: SmtpReply): void {
  out.line(`${label}: ${r.raw[0] ?? r.code}`);
  for (const l of r.raw.slice(1)) out.line(`${' '.repeat(label.length + 2)}${l}`);
}

function capabilityLines(r: SmtpReply): string[] {
  const caps = parseEhloReply(r);
  return [...caps.keywords.entries()].map(([k, v]) => (v.length > 0 ? `${k} ${v.join(' ')}` : k));
}

function isoDate(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString().replace('.000Z', 'Z') : '(unknown)';
}

function showChain(out: Out, chain: readonly CertFacts[], digest: string): void {
  if (chain.length === 0) {
    out.line('certificate chain: none (anonymous cipher)');
    return;
  }
  out.line(`certificate chain (${chain.length}, leaf first):`);
  chain.forEach((c, i) => {
    const fp = fingerprints(c, digest);
    out.line(`  [${i}] subject: ${c.subject}`);
    out.line(`      issuer: ${c.issuer}`);
    out.line(`      valid: ${isoDate(c.validFrom)} to ${isoDate(c.validTo)}${c.validTo < Date.now() ? ' (EXPIRED)' : ''}`);
    out.line(`      names: ${certNames(c).join(', ') || '(none)'}`);
    out.line(`      ${digest} certificate fingerprint: ${fp.cert}`);
    out.line(`      ${digest} public-key fingerprint: ${fp.pkey}`);
  });
}

/** posttls-finger(1) -C: each certificate of the chain in PEM, leaf first. */
function showPem(out: Out, chain: readonly CertFacts[]): void {
  chain.forEach((c, i) => {
    out.line(`certificate [${i}] (PEM):`);
    out.line('-----BEGIN CERTIFICATE-----');
    for (const l of c.der.toString('base64').match(/.{1,64}/g) ?? []) out.line(l);
    out.line('-----END CERTIFICATE-----');
  });
}

function showNameChecks(out: Out, leaf: CertFacts, server: ServerTarget, nexthopDomain: string, names: readonly string[]): void {
  out.line('name checks (certificate names against):');
  const strategies = ['hostname', 'nexthop', 'dot-nexthop', ...names.filter((n) => !['hostname', 'nexthop', 'dot-nexthop'].includes(n.toLowerCase()))];
  for (const s of strategies) {
    const [want] = expectedNames([s], nexthopDomain, server.hostname);
    const hit = matchServerName(leaf, [want!]);
    const label = want === s ? s : `${s} (${want})`;
    out.line(`  ${label}: ${hit !== undefined ? `matches ${hit}` : 'no match'}`);
  }
}

function verdictText(d: TlsDecision, usedTls: boolean, trust?: string): string {
  switch (d.action) {
    case 'continue':
      return usedTls ? `would deliver (${trust ?? 'TLS'} TLS)` : 'would deliver (plaintext)';
    case 'plaintext':
      return 'would deliver (plaintext)';
    case 'reconnect-plaintext':
      return 'would deliver (plaintext, after reconnecting without STARTTLS)';
    case 'fail':
      return `${d.dsn.startsWith('5') ? 'bounced' : 'deferred'} (${d.reason})`;
  }
}

/** The server step of one judge (TLSA records, MTA-STS mx patterns): the policy for this server, or why it is not tried. */
async function serverJudge(j: LevelJudge, server: ServerTarget): Promise<{ policy: TlsPolicy; extra: string[] } | { text: string; extra: string[] }> {
  const before = j.warnings.length;
  const sp = await j.engine.serverPolicy(j.policy, server);
  const extra = j.warnings.splice(before).map((w) => `warning: ${w.replace(/^.*?: warning: /, '')}`);
  if (sp.kind === 'skip') return { text: `not tried (${sp.reason})`, extra };
  if (sp.kind === 'defer') return { text: `deferred (${sp.deferral.reason})`, extra };
  const p = sp.policy;
  if (p.dane || p.configuredLevel === 'dane' || p.level === 'dane' || p.level === 'dane-only') {
    for (const r of p.applied.strings) extra.push(`TLSA ${r}${p.dane ? '' : ' (unusable)'}`);
  }
  return { policy: p, extra };
}

/** One verdict line per judged level (plus the engine's log lines); for `ok` the TLS socket must still be open. */
async function judgeAll(judges: readonly LevelJudge[], server: ServerTarget, tls: TlsOutcome): Promise<string[]> {
  const lines: string[] = [];
  for (const j of judges) {
    const hopLevel = j.policy.level;
    const extra: string[] = [...j.warnings.splice(0).map((w) => `warning: ${w.replace(/^.*?: warning: /, '')}`)];
    let text: string | undefined;
    let p = j.policy;
    if (p.level !== 'invalid') {
      const s = await serverJudge(j, server);
      extra.push(...s.extra);
      if ('text' in s) text = s.text;
      else p = s.policy;
    }
    const effective = p.level !== 'invalid' ? p.level : hopLevel !== 'invalid' ? hopLevel : undefined;
    const name = !String(j.level).startsWith('mta-sts') && effective !== undefined && effective !== j.level ? `${j.level} (runs as ${effective})` : j.level;
    if (text !== undefined) {
      // The server step said: not tried, or deferred.
    } else if (p.level === 'invalid') {
      text = `deferred (${p.invalid?.reason ?? 'client TLS configuration problem'})`;
    } else if (!wantStarttls(p)) {
      text = 'would deliver (plaintext, STARTTLS not used)';
    } else if (tls.kind === 'not-offered' || tls.kind === 'skipped') {
      text = verdictText(onStarttlsNotOffered(p, server), false);
    } else if (tls.kind === 'refused') {
      text = verdictText(onStarttlsRefused(p, server, tls.reply), false);
    } else if (tls.kind === 'failed') {
      text = verdictText(onHandshakeFailed(p, server, { plaintextFallbackOk: true }), false);
    } else {
      const ev = j.engine.evaluate(p, tls.socket, server);
      extra.push(...ev.logLines);
      text = verdictText(onPeerEvaluated(p, ev), true, ev.trust);
      if (ev.stsTesting) extra.push(ev.stsTesting.reason);
    }
    lines.push(`  ${name}: ${text}`);
    for (const e of extra) lines.push(`      ${e}`);
  }
  return lines;
}

/** Talk to one server; true when it answered at all. */
async function probe(out: Out, server: ServerTarget, judges: readonly LevelJudge[], config: LoadedConfig, opts: FingerOptions, digest: string): Promise<boolean> {
  out.line('');
  out.line(`=== ${server.hostname}[${server.address}]:${server.port} ===`);
  const settings = connectSettings(config);
  const sock = await openSocket(server, opts.timeoutMs, settings);
  if (!sock.ok) {
    out.line(`connect to ${server.hostname}[${server.address}]:${server.port}: ${sock.error}`);
    return false;
  }
  const chat = new SmtpChat(sock.socket);
  // posttls-finger(1) -t: connect and greeting; -T: the commands after it.
  const t = opts.commandTimeoutMs;
  // -c: "Disable SMTP chat logging; only TLS-related information is logged."
  const chatOut: Out = opts.noChat ? { line: () => {} } : out;
  let answered = false;
  let tls: TlsOutcome = { kind: 'skipped' };
  try {
    const greeting = await chat.reply(opts.timeoutMs);
    answered = true;
    showReply(chatOut, 'greeting', greeting);
    if (greeting.code !== 220) {
      out.line(`the server does not accept mail now (${greeting.raw[0] ?? greeting.code}): no EHLO sent, no verdicts (every level would try the next MX host)`);
      await quit(chat, t);
      return true;
    }
    const helo = config.get('smtp_helo_name') || config.get('myhostname') || 'localhost';
    await chat.write(`EHLO ${helo}\r\n`, t);
    const ehlo = await chat.reply(t);
    if (ehlo.code !== 250) {
      showReply(out, 'EHLO', ehlo);
      await quit(chat, t);
    } else {
      chatOut.line('EHLO capabilities:');
      for (const c of capabilityLines(ehlo)) chatOut.line(`  ${c}`);
      if (!judges.some((j) => wantStarttls(j.policy))) {
        out.line('STARTTLS: not used at the level asked for');
      } else if (!parseEhloReply(ehlo).startTls) {
        out.line('STARTTLS: not offered');
        tls = { kind: 'not-offered' };
      } else {
        tls = await starttls({ out, chatOut, printChain: opts.printChain }, chat, server, judges, t, digest, helo);
      }
      if (tls.kind === 'ok' || tls.kind === 'skipped' || tls.kind === 'not-offered' || tls.kind === 'refused') await quit(chat, t, chatOut);
    }
  } catch (err) {
    const text = err instanceof ChatFailure ? err.message : String(err);
    out.line(`${answered ? 'lost connection' : 'no greeting'}: ${text}`);
    if (answered && tls.kind !== 'ok') {
      out.line('no verdicts: the dialogue ended before the TLS decision');
      return true;
    }
  } finally {
    chat.destroy();
  }
  if (answered) {
    out.line('verdicts (what sealpost would do at each level; the policy table is not consulted):');
    for (const l of tls.kind === 'ok' ? tls.verdicts : await judgeAll(judges, server, tls)) out.line(l);
  }
  if (tls.kind === 'ok') tls.socket.destroy();
  return answered;
}

interface Outs {
  readonly out: Out;
  /** SMTP chat lines (silent with -c). */
  readonly chatOut: Out;
  /** -C: the chain in PEM. */
  readonly printChain: boolean;
}

async function starttls(o: Outs, chat: SmtpChat, server: ServerTarget, judges: readonly LevelJudge[], t: number, digest: string, helo: string): Promise<TlsOutcome> {
  const out = o.out;
  await chat.write('STARTTLS\r\n', t);
  const r = await chat.reply(t);
  if (r.code !== 220) {
    showReply(out, 'STARTTLS refused', r);
    return { kind: 'refused', reply: r.text() };
  }
  showReply(o.chatOut, 'STARTTLS', r);
  // Handshake with the strictest judged level's options (its ciphers, protocols and trust anchors).
  const strict = [...judges].reverse().find((j) => wantStarttls(j.policy) && !String(j.level).startsWith('mta-sts')) ?? judges.find((j) => wantStarttls(j.policy))!;
  const options = strict.engine.connectOptions(strict.policy as ConnectPolicy, server);
  const raw = chat.detach();
  const ts = await handshake(raw, options, t);
  if (typeof ts === 'string') {
    out.line(`TLS handshake failed: ${ts}`);
    return { kind: 'failed', error: ts };
  }
  chat.upgrade(ts);
  const facts = peerFacts(ts);
  // Judge now, while the session is up (the chain is gone once the socket closes).
  const verdicts = await judgeAll(judges, server, { kind: 'ok', socket: ts, facts, verdicts: [] });
  const bits = cipherBits(facts.cipher);
  out.line(`TLS: ${facts.protocol} with cipher ${facts.cipher} (${bits.cipherBits}/${bits.cipherAlgBits} bits)${facts.summaryExtra ?? ''}`);
  out.line(`chain trust: ${facts.chain.length === 0 ? 'none (anonymous)' : facts.authorized ? 'trusted (signed by a configured CA)' : `untrusted (${facts.authorizationError ?? 'not verified'})`}`);
  showChain(out, facts.chain, digest);
  if (o.printChain) showPem(out, facts.chain);
  if (facts.chain[0]) showNameChecks(out, facts.chain[0], server, strict.policy.nexthopDomain, judges.flatMap((j) => (j.policy.level !== 'invalid' && (j.level === 'verify' || j.level === 'secure') ? j.policy.match : [])).filter((v, i, a) => a.indexOf(v) === i));
  try {
    await chat.write(`EHLO ${helo}\r\n`, t);
    const again = await chat.reply(t);
    if (again.code === 250) o.chatOut.line(`EHLO capabilities after STARTTLS: ${capabilityLines(again).join(', ') || '(none)'}`);
    else showReply(out, 'EHLO after STARTTLS', again);
  } catch (err) {
    out.line(`EHLO after STARTTLS: ${(err as Error).message}`);
  }
  return { kind: 'ok', socket: ts, facts, verdicts };
}

async function quit(chat: SmtpChat, t: number, out?: Out): Promise<void> {
  if (chat.broken) return;
  try {
    await chat.write('QUIT\r\n', t);
    const r = await chat.reply(Math.min(t, 5000));
    out?.line(`QUIT: ${r.text()}`);
  } catch {
    // The server may close without a reply; nothing to report.
  }
}

export async function main(ctx: CommandContext): Promise<number> {
  const opts = parseFingerArgs(ctx.argv, ctx.env);
  const base = loadConfig({ configDir: opts.configDir, overrides: levelOverrides(opts, opts.levels[0] ?? 'may') });
  const digest = base.get('smtp_tls_fingerprint_digest').trim().toLowerCase() || 'sha256';
  const out: Out = { line: (text) => ctx.stdout.write(`${text}\n`) };
  const tables = new TableSet({ baseDir: base.configDir, defaultType: base.get('default_database_type') || 'hash' });
  try {
    const resolver = createResolver(base);
    const settings = connectSettings(base);
    const hop = await resolveHop(opts.destination, settings, resolver);
    const bracketed = opts.destination.startsWith('[');
    out.line(`destination: ${opts.destination} (${bracketed ? 'no MX lookup' : 'MX lookup'})`);
    if (hop.kind === 'fail') {
      out.line(`cannot find a server: ${hop.reason} (dsn=${hop.dsn})`);
      return 1;
    }
    out.line(`servers: ${hop.targets.map((s) => `${s.hostname}[${s.address}]:${s.port}`).join(', ')}`);
    // The user's own MTA-STS setting (the level judges switch it off).
    const sts = await stsLookup(out, loadConfig({ configDir: opts.configDir, overrides: opts.overrides }), opts.destination, resolver);
    let dnssec = false;
    try {
      dnssec = daneSettings(base).dnssecEnabled;
    } catch {
      dnssec = false;
    }
    const levels = opts.levels.length === 1 ? opts.levels : opts.levels.filter((l) => l !== 'dane' || dnssec);
    const judges = await makeJudges({ ...opts, levels }, tables, opts.destination, resolver, sts);
    let answered = 0;
    for (const server of hop.targets) {
      if (await probe(out, server, judges, base, opts, digest)) answered++;
    }
    out.line('');
    out.line(`${answered} of ${hop.targets.length} server${hop.targets.length === 1 ? '' : 's'} answered`);
    return answered > 0 ? EX.OK : 1;
  } finally {
    await tables.close();
  }
}
