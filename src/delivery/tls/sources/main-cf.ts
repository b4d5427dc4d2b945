/**
 * main-cf.ts — the main.cf source: the global level
 * (smtp_tls_policy.c global_tls_level()): smtp_tls_security_level, or, when
 * it is empty, what the obsolete smtp_enforce_tls / smtp_tls_enforce_peername
 * / smtp_use_tls mean (DEPRECATION_README), and the deprecation warnings
 * for those parameters.
 *
 * Contract: asked at the hop step only; always answers — a `demand` (the
 * level every destination gets unless another source says otherwise) or
 * `invalid` with `client TLS configuration problem` when the level is not a
 * level name (never a downgrade). Pure apart from the warning it logs.
 *
 * Not here: what the level means (level.ts, enforce.ts), other sources'
 * precedence (combine.ts).
 */
import type { Config } from '../../../config/types.ts';
import { deprecationWarning } from '../../../config/params.ts';
import { parseLevel } from '../level.ts';
import { CONFIG_PROBLEM } from '../reasons.ts';
import type { TlsLevel } from '../types.ts';
import type { PolicySource, SourceAnswer } from './types.ts';

/** The global level; `error` when smtp_tls_security_level is not a level name. */
export function globalLevel(config: Config, prefix = 'smtp'): TlsLevel | { error: string } {
  const text = config.get(`${prefix}_tls_security_level`).trim();
  if (text !== '') {
    const l = parseLevel(text);
    return l ?? { error: `invalid tls security level: "${text}"` };
  }
  // Obsolete settings, as Postfix maps them (DEPRECATION_README).
  if (config.getBool(`${prefix}_enforce_tls`)) return config.getBool(`${prefix}_tls_enforce_peername`) ? 'verify' : 'encrypt';
  return config.getBool(`${prefix}_use_tls`) ? 'may' : 'none';
}

const OBSOLETE_TLS = ['smtp_use_tls', 'smtp_enforce_tls', 'smtp_tls_enforce_peername', 'smtp_tls_per_site', 'smtpd_use_tls', 'smtpd_enforce_tls'];

/**
 * One warning per obsolete TLS client parameter set in main.cf, naming the
 * replacement (config/params.ts deprecationWarning, the one wording), and
 * saying when smtp_tls_security_level makes it inert.
 */
export function tlsDeprecationWarnings(config: Config): string[] {
  const out: string[] = [];
  for (const name of OBSOLETE_TLS) {
    if (!config.isSet(name)) continue;
    const ignored = name.startsWith('smtp_') && name !== 'smtp_tls_per_site' && config.get('smtp_tls_security_level').trim() !== '' ? ' (ignored: smtp_tls_security_level is set)' : '';
    out.push(`${deprecationWarning(name)}${ignored}`);
  }
  if (config.get('smtp_tls_per_site').trim() !== '' && config.get('smtp_tls_policy_maps').trim() !== '') {
    // smtp_session.c smtp_tls_list_init().
    out.push('smtp_tls_per_site ignored when smtp_tls_policy_maps is not empty.');
  }
  return out;
}

/** How the global level was set, for the trace. */
function describe(config: Config, prefix: string, level: TlsLevel): string {
  if (config.get(`${prefix}_tls_security_level`).trim() !== '') return `${prefix}_tls_security_level = ${level}`;
  const set = [`${prefix}_enforce_tls`, `${prefix}_tls_enforce_peername`, `${prefix}_use_tls`].filter((n) => config.isSet(n));
  return set.length > 0 ? `${set.map((n) => `${n} = ${config.get(n)}`).join(', ')} (obsolete): ${level}` : `${prefix}_tls_security_level = ${level}`;
}

export function mainCfSource(config: Config, prefix: string, warn: (text: string) => void): PolicySource {
  const label = `${prefix}_tls_security_level`;
  return {
    name: 'default',
    hop(): SourceAnswer {
      const g = globalLevel(config, prefix);
      if (typeof g !== 'string') {
        warn(g.error);
        return { kind: 'invalid', deferral: CONFIG_PROBLEM, note: `${label}: ${g.error}`, label };
      }
      return { kind: 'demand', level: g, note: describe(config, prefix, g), label };
    },
  };
}
