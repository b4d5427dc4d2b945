/**
 * tls-finger.ts — `sealpost tls-finger [-c config_dir] [-l level] [-P port]
 * [-a any|ipv4|ipv6] [-t timeout] [-F CAfile] [-d digest] [-s servername]
 * [-H chainfiles] destination [match ...]`: probe the SMTP servers of a
 * destination the way posttls-finger(1) does, and say for each security level
 * whether sealpost would deliver there, with the reason Postfix would log.
 *
 * Contract:
 * - destination is `domain`, `domain:port`, `[host]` or `[host]:port`; without
 *   brackets the MX hosts are looked up (delivery/smtp/connect.ts resolveHop,
 *   the resolver honours `sealpost_dns_resolvers`); the default port is
 *   `smtp_tcp_port` (or -P).
 * - Per server address: connect, greeting, EHLO capabilities, STARTTLS, the
 *   protocol and cipher, the presented chain (subject, issuer, validity, DNS
 *   names, certificate and public-key fingerprints with smtp_tls_fingerprint_digest
 *   or -d), the name checks (hostname, nexthop, dot-nexthop and the match
 *   arguments), then one verdict per level (may, encrypt, fingerprint when a
 *   fingerprint was given, verify, secure; only -l's level when given). The
 *   verdicts come from the real engine: createTlsEngine + enforce.ts, with the
 *   level forced by a config override, exactly what the SMTP client would do.
 * - Like posttls-finger(1) it does NOT consult smtp_tls_policy_maps: match
 *   arguments replace smtp_tls_{verify,secure,fingerprint}_cert_match (an
 *   argument that looks like a fingerprint goes to the fingerprint level).
 * - One TLS handshake per address (with the options of the strictest level
 *   judged); every level's evaluation is made on that same session. QUIT at
 *   the end. Exit 0 when at least one server answered, 1 otherwise; usage
 *   errors exit 64.
 *
 * Not here: sending mail, DANE TLSA lookups, SMTP chat logging (-c of
 * posttls-finger is the config directory here), posttls-finger's -P CApath
 * (-P is the port here, as in the sealpost brief).
 */
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import { loadConfig, resolveConfigDir, type LoadedConfig } from '../config/load.ts';
import { EX, UsageError } from '../lib/errors.ts';
import { TableSet } from '../maps/registry.ts';
import { memoryMailLog } from '../reports/maillog.ts';
import { createResolver } from '../delivery/dns/resolver.ts';
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
  'usage: sealpost tls-finger [-c config_dir] [-l level] [-P port] [-a any|ipv4|ipv6] [-t timeout] [-F CAfile] [-d digest] [-s servername] [-H chainfiles] destination [match ...]';

/** The levels judged when -l is not given (fingerprint only with fingerprint match arguments). */
const DEFAULT_LEVELS: readonly TlsLevel[] = ['may', 'encrypt', 'fingerprint', 'verify', 'secure'];

/** posttls-finger(1): a match argument of hex pairs is a certificate or public-key fingerprint. */
const FINGERPRINT = /^[0-9a-f]{2}(:[0-9a-f]{2}){15,}$|^[0-9a-f]{32,}$/i;

export interface FingerOptions {
  readonly configDir: string;
  readonly levels: readonly TlsLevel[];
  readonly destination: string;
  readonly names: readonly string[];
  readonly fingerprints: readonly string[];
  readonly timeoutMs: number;
  /** main.cf overrides common to every level (-P -a -F -d -s -H). */
  readonly overrides: Readonly<Record<string, string>>;
}

/** Parse the command line (UsageError on anything wrong). */
export function parseFingerArgs(argv: readonly string[], env: CommandContext['env']): FingerOptions {
  const o = getopt(argv, 'a:c:d:F:H:l:P:s:t:', USAGE);
  const [destination, ...matches] = o.rest;
  if (destination === undefined || destination === '') throw new UsageError(USAGE);
  const overrides: Record<string, string> = {};
  const level = o.value('l');
  let levels = DEFAULT_LEVELS;
  if (level !== undefined) {
    const l = parseLevel(level);
    if (!l) throw new UsageError(`invalid TLS security level "${level}": use none, may, encrypt, fingerprint, dane, dane-only, verify or secure\n${USAGE}`);
    levels = [l];
  }
  const port = o.value('P');
  if (port !== undefined) {
    if (!/^[A-Za-z0-9_-]+$/.test(port)) throw new UsageError(`invalid port "${port}": give a number or a service name\n${USAGE}`);
    overrides['smtp_tcp_port'] = port;
  }
  const family = o.value('a');
  if (family !== undefined) {
    // posttls-finger(1) -a: the address family; here as inet_protocols.
    const map: Record<string, string> = { any: 'all', ipv4: 'ipv4', ipv6: 'ipv6' };
    const v = map[family.toLowerCase()];
    if (!v) throw new UsageError(`invalid address family "${family}": use any, ipv4 or ipv6\n${USAGE}`);
    overrides['inet_protocols'] = v;
  }
  let timeoutMs = 30_000;
  const t = o.value('t');
  if (t !== undefined) {
    const m = /^(\d+)(s?)$/.exec(t);
    if (!m || Number(m[1]) === 0) throw new UsageError(`invalid timeout "${t}": give a number of seconds\n${USAGE}`);
    timeoutMs = Number(m[1]) * 1000;
  }
  const ca = o.value('F');
  if (ca !== undefined) overrides['smtp_tls_CAfile'] = ca;
  const digest = o.value('d');
  if (digest !== undefined) {
    if (!/^[a-z0-9-]+$/i.test(digest)) throw new UsageError(`invalid digest "${digest}": use sha256, sha1, md5 ...\n${USAGE}`);
    overrides['smtp_tls_fingerprint_digest'] = digest;
  }
  const sni = o.value('s');
  if (sni !== undefined) overrides['smtp_tls_servername'] = sni;
  const chain = o.value('H');
  if (chain !== undefined) overrides['smtp_tls_chain_files'] = chain;
  const fps = matches.filter((m) => FINGERPRINT.test(m));
  const names = matches.filter((m) => !FINGERPRINT.test(m));
  if (levels.length === 1 && levels[0] === 'fingerprint' && fps.length === 0) {
    throw new UsageError(`level fingerprint needs at least one certificate or public-key fingerprint as a match argument\n${USAGE}`);
  }
  return {
    configDir: resolveConfigDir(o.value('c'), env),
    levels: level === undefined && fps.length === 0 ? levels.filter((l) => l !== 'fingerprint') : levels,
    destination,
    names,
    fingerprints: fps,
    timeoutMs,
    overrides,
  };
}

/** One engine per judged level, each with its level forced and the policy table switched off. */
interface LevelJudge {
  readonly level: TlsLevel;
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
  };
  if (opts.names.length > 0) {
    o['smtp_tls_verify_cert_match'] = opts.names.join(', ');
    o['smtp_tls_secure_cert_match'] = opts.names.join(', ');
  }
  if (opts.fingerprints.length > 0) o['smtp_tls_fingerprint_cert_match'] = opts.fingerprints.join(', ');
  return o;
}

async function makeJudges(opts: FingerOptions, tables: TableSet, nexthop: string): Promise<LevelJudge[]> {
  const judges: LevelJudge[] = [];
  for (const level of opts.levels) {
    const config = loadConfig({ configDir: opts.configDir, overrides: levelOverrides(opts, level) });
    const log = memoryMailLog();
    const engine = createTlsEngine({ config, tables, log });
    const policy = await engine.policyFor(nexthop, { tlsRequiredNo: false, requireTls: false });
    judges.push({ level, engine, policy, warnings: log.lines });
  }
  return judges;
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

/** One verdict line per judged level (plus the engine's log lines); for `ok` the TLS socket must still be open. */
function judgeAll(judges: readonly LevelJudge[], server: ServerTarget, tls: TlsOutcome): string[] {
  const lines: string[] = [];
  for (const j of judges) {
    const p = j.policy;
    const name = p.level !== 'invalid' && p.level !== j.level ? `${j.level} (runs as ${p.level})` : j.level;
    let text: string;
    const extra: string[] = [...j.warnings.map((w) => `warning: ${w.replace(/^.*?: warning: /, '')}`)];
    if (p.level === 'invalid') {
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
  const t = opts.timeoutMs;
  let answered = false;
  let tls: TlsOutcome = { kind: 'skipped' };
  try {
    const greeting = await chat.reply(t);
    answered = true;
    showReply(out, 'greeting', greeting);
    if (greeting.code !== 220) {
      out.line('the server does not accept mail now: no EHLO sent, no verdicts (every level would try the next MX host)');
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
      out.line('EHLO capabilities:');
      for (const c of capabilityLines(ehlo)) out.line(`  ${c}`);
      if (!judges.some((j) => wantStarttls(j.policy))) {
        out.line('STARTTLS: not used at the level asked for');
      } else if (!parseEhloReply(ehlo).startTls) {
        out.line('STARTTLS: not offered');
        tls = { kind: 'not-offered' };
      } else {
        tls = await starttls(out, chat, server, judges, t, digest, helo);
      }
      if (tls.kind === 'ok' || tls.kind === 'skipped' || tls.kind === 'not-offered' || tls.kind === 'refused') await quit(chat, t, out);
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
    for (const l of tls.kind === 'ok' ? tls.verdicts : judgeAll(judges, server, tls)) out.line(l);
  }
  if (tls.kind === 'ok') tls.socket.destroy();
  return answered;
}

async function starttls(out: Out, chat: SmtpChat, server: ServerTarget, judges: readonly LevelJudge[], t: number, digest: string, helo: string): Promise<TlsOutcome> {
  await chat.write('STARTTLS\r\n', t);
  const r = await chat.reply(t);
  if (r.code !== 220) {
    showReply(out, 'STARTTLS refused', r);
    return { kind: 'refused', reply: r.text() };
  }
  showReply(out, 'STARTTLS', r);
  // Handshake with the strictest judged level's options (its ciphers, protocols and trust anchors).
  const strict = [...judges].reverse().find((j) => wantStarttls(j.policy))!;
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
  const verdicts = judgeAll(judges, server, { kind: 'ok', socket: ts, facts, verdicts: [] });
  const bits = cipherBits(facts.cipher);
  out.line(`TLS: ${facts.protocol} with cipher ${facts.cipher} (${bits.cipherBits}/${bits.cipherAlgBits} bits)${facts.summaryExtra ?? ''}`);
  out.line(`chain trust: ${facts.chain.length === 0 ? 'none (anonymous)' : facts.authorized ? 'trusted (signed by a configured CA)' : `untrusted (${facts.authorizationError ?? 'not verified'})`}`);
  showChain(out, facts.chain, digest);
  if (facts.chain[0]) showNameChecks(out, facts.chain[0], server, strict.policy.nexthopDomain, judges.flatMap((j) => (j.policy.level !== 'invalid' && (j.level === 'verify' || j.level === 'secure') ? j.policy.match : [])).filter((v, i, a) => a.indexOf(v) === i));
  try {
    await chat.write(`EHLO ${helo}\r\n`, t);
    const again = await chat.reply(t);
    if (again.code === 250) out.line(`EHLO capabilities after STARTTLS: ${capabilityLines(again).join(', ') || '(none)'}`);
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
    const judges = await makeJudges(opts, tables, opts.destination);
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
