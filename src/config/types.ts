/**
 * types.ts — the read-only view of the effective configuration that every
 * component gets. Implemented by config/load.ts (main.cf + the parameter
 * registry + $name expansion).
 *
 * Contract: values are immutable once loaded; a reload builds a new Config and
 * swaps it in only if it is valid. Typed getters throw ConfigError naming the
 * file, line and the accepted forms when a value does not parse.
 */

/** Where sealpost looks for main.cf/master.cf without -c and without MAIL_CONFIG. */
export const DEFAULT_CONFIG_DIR = '/etc/sealpost';

export interface Config {
  /** The directory main.cf and master.cf were read from. */
  readonly configDir: string;
  /** True when `configDir/main.cf` existed (otherwise every value is a built-in default). */
  readonly hasMainCf: boolean;
  /** Fully expanded value ($name, ${name?x} ...) of a parameter; '' when unset and without default. */
  get(name: string): string;
  /** The value as written in main.cf (or the default text), before expansion; undefined if unknown. */
  raw(name: string): string | undefined;
  /** True when main.cf sets the parameter explicitly. */
  isSet(name: string): boolean;
  getBool(name: string): boolean;
  /** A time value in seconds; a bare number takes the parameter's default unit. */
  getTime(name: string): number;
  getInt(name: string): number;
  /** A size in bytes. */
  getSize(name: string): number;
  /**
   * A list value split on commas and/or whitespace (Postfix's CHARS_COMMA_SP), `{ ... }` kept
   * whole. The same frozen array on every call (a loaded configuration never changes).
   */
  getList(name: string): readonly string[];
}
