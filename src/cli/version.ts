/**
 * version.ts — `sealpost version` (also `sealpost -V` and `--version`): the
 * release, its date, and the Node.js and OpenSSL it runs on.
 *
 * Contract: two lines on stdout, exit 0; no configuration is read (the same
 * figures as `postconf mail_version mail_release_date`).
 *
 * Not here: the version constants (config/params.ts).
 */
import { EX, UsageError } from '../lib/errors.ts';
import { SEALPOST_RELEASE_DATE, SEALPOST_VERSION } from '../config/params.ts';
import type { CommandContext } from './context.ts';

export function versionText(): string {
  return `sealpost ${SEALPOST_VERSION} (${SEALPOST_RELEASE_DATE})\nNode.js ${process.version}, OpenSSL ${process.versions.openssl ?? 'unknown'}\n`;
}

export async function main(ctx: CommandContext): Promise<number> {
  if (ctx.argv.length > 0) throw new UsageError('usage: sealpost version');
  ctx.stdout.write(versionText());
  return EX.OK;
}
