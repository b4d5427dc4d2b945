/**
 * settings.ts — everything the SMTP listener needs from one effective
 * configuration (main.cf + master.cf -o overrides), read once into an
 * immutable value that every session started under it shares.
 *
 * Contract: `smtpdSettings(ctx)` is synchronous and validates what Postfix's
 * smtpd would refuse to run with (bad TLS material, a relay policy with no
 * working reject_unauth_destination, bad network patterns): it throws a
 * ConfigError naming the parameter, so a reload can refuse the new config
 * and keep the old one. Unknown restriction names are NOT refused here:
 * Postfix answers `451 4.3.5 Server configuration error` at RCPT time and
 * logs the problem, and so do we. Tables are opened lazily (TableSet).
 *
 * Not here: sockets, sessions.
 */
import type { Config } from '../../config/types.ts';
import { parseBareNewlineMode } from '../../smtp/bare-newline.ts';
import type { BareNewlineMode } from '../../smtp/bare-newline.ts';
import { ConfigError } from '../../lib/errors.ts';
import { TableSet } from '../../maps/registry.ts';
import { domainListFromText, networkListFromText } from './match-list.ts';
import type { NetworkList } from './match-list.ts';
import type { RelaySettings } from './restrictions.ts';
import { relayConfigProblem } from './restrictions.ts';
import { serverTlsSettings } from './tls.ts';
import type { ServerTls } from './tls.ts';
import { passwordFile } from './sasl.ts';

export interface SmtpdSettings {
  readonly config: Config;
  readonly myhostname: string;
  readonly mailName: string;
  readonly banner: string;
  readonly messageSizeLimit: number;
  readonly recipientLimit: number;
  /** smtpd_recipient_overshoot_limit: excess RCPTs answered 452 before each counts as an error. */
  readonly recipientOvershootLimit: number;
  /** queue_minfree (bytes), checked with message_size_limit at MAIL FROM (smtpd_check_queue()). */
  readonly queueMinfree: number;
  /** hopcount_limit: this many Received: headers (ours included) refuse the message. */
  readonly hopcountLimit: number;
  /** cleanup_replace_stray_cr_lf. */
  readonly replaceStrayCrLf: boolean;
  /** smtputf8_autodetect_classes includes `smtpd` (or `all`). */
  readonly smtputf8Autodetect: boolean;
  /** detect_8bit_encoding_header: a `Content-Transfer-Encoding: 8bit` header marks the message 8-bit. */
  readonly detect8BitEncodingHeader: boolean;
  readonly lineLengthLimit: number;
  readonly hardErrorLimit: number;
  readonly softErrorLimit: number;
  readonly errorSleepMs: number;
  readonly timeoutMs: number;
  readonly connectionCountLimit: number;
  readonly disableVrfy: boolean;
  readonly smtputf8: boolean;
  readonly requireTlsEnable: boolean;
  readonly tlsRequiredEnable: boolean;
  /** requiretls_enable && requiretls_esmtp_header (Require-TLS-ESMTP: yes). */
  readonly requireTlsEsmtpHeader: boolean;
  readonly strictRfc821: boolean;
  readonly bareNewline: BareNewlineMode;
  readonly bareNewlineRejectCode: number;
  readonly bareNewlineExclusions: NetworkList;
  readonly forbidUnauthPipelining: boolean;
  readonly tls: ServerTls;
  /** AUTH offered only inside TLS (smtpd_tls_auth_only, or TLS is mandatory). */
  readonly tlsAuthOnly: boolean;
  readonly saslEnabled: boolean;
  readonly saslAuthenticatedHeader: boolean;
  readonly saslPasswordFile: string;
  readonly relay: RelaySettings;
  readonly relayProblem: string | undefined;
  readonly myorigin: string;
  readonly alwaysAddMissingHeaders: boolean;
  /** local_header_rewrite_clients: which clients get missing headers added. */
  readonly localHeaderRewriteClients: readonly string[];
  readonly inetInterfaces: readonly string[];
  readonly tables: TableSet;
  /** Warnings to log once when the settings are taken into use. */
  readonly warnings: readonly string[];
}

function parentMatches(config: Config, param: string): boolean {
  return config.getList('parent_domain_matches_subdomains').includes(param);
}

function bareNewline(config: Config): BareNewlineMode {
  const v = config.get('smtpd_forbid_bare_newline');
  const mode = parseBareNewlineMode(v);
  if (!mode) throw new ConfigError(`invalid smtpd_forbid_bare_newline value "${v}": use normalize, reject or no`);
  return mode;
}

function relaySettings(config: Config, tables: TableSet): RelaySettings {
  return {
    relayRestrictions: config.getList('smtpd_relay_restrictions'),
    recipientRestrictions: config.getList('smtpd_recipient_restrictions'),
    mynetworks: networkListFromText('mynetworks', config.get('mynetworks'), tables),
    mydestination: domainListFromText('mydestination', config.get('mydestination'), tables, parentMatches(config, 'mydestination')),
    relayDomains: domainListFromText('relay_domains', config.get('relay_domains'), tables, parentMatches(config, 'relay_domains')),
    allowUntrustedRouting: config.getBool('allow_untrusted_routing'),
    allowPercentHack: config.getBool('allow_percent_hack'),
    swapBangpath: config.getBool('swap_bangpath'),
    resolveDequoted: config.getBool('resolve_dequoted_address'),
    relayRejectCode: config.getInt('relay_domains_reject_code'),
    rejectCode: config.getInt('reject_code'),
    deferCode: config.getInt('defer_code'),
    myorigin: config.get('myorigin').toLowerCase(),
  };
}

/**
 * smtputf8_autodetect_classes (smtputf8.c): the mail sources whose messages cleanup
 * inspects for UTF-8 — `all` stands for every class. An unknown name is a configuration
 * error here (Postfix warns "bad input" and autodetects nothing).
 */
export function autodetectClasses(config: Config): string[] {
  const known = ['sendmail', 'smtpd', 'qmqpd', 'forward', 'bounce', 'notify', 'verify'];
  const out: string[] = [];
  for (const word of config.getList('smtputf8_autodetect_classes').map((w) => w.toLowerCase())) {
    if (word === 'all') out.push(...known);
    else if (known.includes(word)) out.push(word);
    else throw new ConfigError(`smtputf8_autodetect_classes: unknown mail source class "${word}": use ${known.join(', ')} or all`);
  }
  return out;
}

/** Read one configuration into listener settings; ConfigError when Postfix would refuse it. */
export function smtpdSettings(config: Config): SmtpdSettings {
  const tables = new TableSet({ baseDir: config.configDir });
  const tls = serverTlsSettings(config);
  const relay = relaySettings(config, tables);
  const relayProblem = relayConfigProblem(relay);
  if (relayProblem && !relayProblem.startsWith('unknown smtpd restriction')) throw new ConfigError(relayProblem);
  const warnings = [...tls.warnings];
  if (relayProblem) warnings.push(relayProblem);
  const num = (name: string): number => config.getInt(name);
  return Object.freeze({
    config,
    myhostname: config.get('myhostname'),
    mailName: config.get('mail_name'),
    banner: config.get('smtpd_banner'),
    messageSizeLimit: config.getSize('message_size_limit'),
    recipientLimit: num('smtpd_recipient_limit'),
    recipientOvershootLimit: num('smtpd_recipient_overshoot_limit'),
    queueMinfree: config.getSize('queue_minfree'),
    hopcountLimit: num('hopcount_limit'),
    replaceStrayCrLf: config.getBool('cleanup_replace_stray_cr_lf'),
    smtputf8Autodetect: autodetectClasses(config).includes('smtpd'),
    detect8BitEncodingHeader: config.getBool('detect_8bit_encoding_header'),
    lineLengthLimit: num('line_length_limit'),
    hardErrorLimit: num('smtpd_hard_error_limit'),
    softErrorLimit: num('smtpd_soft_error_limit'),
    errorSleepMs: config.getTime('smtpd_error_sleep_time') * 1000,
    timeoutMs: config.getTime('smtpd_timeout') * 1000,
    connectionCountLimit: num('smtpd_client_connection_count_limit'),
    disableVrfy: config.getBool('disable_vrfy_command'),
    smtputf8: config.getBool('smtputf8_enable'),
    requireTlsEnable: config.get('requiretls_enable') !== '' && config.getBool('requiretls_enable'),
    tlsRequiredEnable: config.get('tls_required_enable') !== '' && config.getBool('tls_required_enable'),
    requireTlsEsmtpHeader: config.getBool('requiretls_enable') && config.getBool('requiretls_esmtp_header'),
    strictRfc821: config.getBool('strict_rfc821_envelopes'),
    bareNewline: bareNewline(config),
    bareNewlineRejectCode: num('smtpd_forbid_bare_newline_reject_code'),
    bareNewlineExclusions: networkListFromText('smtpd_forbid_bare_newline_exclusions', config.get('smtpd_forbid_bare_newline_exclusions'), tables),
    forbidUnauthPipelining: config.getBool('smtpd_forbid_unauth_pipelining'),
    tls,
    tlsAuthOnly: config.getBool('smtpd_tls_auth_only') || tls.level === 'encrypt',
    saslEnabled: config.getBool('smtpd_sasl_auth_enable'),
    saslAuthenticatedHeader: config.getBool('smtpd_sasl_authenticated_header'),
    saslPasswordFile: passwordFile(config),
    relay,
    relayProblem,
    myorigin: config.get('myorigin').toLowerCase(),
    alwaysAddMissingHeaders: config.getBool('always_add_missing_headers'),
    localHeaderRewriteClients: config.getList('local_header_rewrite_clients'),
    inetInterfaces: config.getList('inet_interfaces'),
    tables,
    warnings,
  });
}
