/**
 * owner-access.ts — before the master gives up root: can mail_owner read
 * what the running mail system will open after that? Every lookup table the
 * configuration names (the delivery threads and every reload open them as
 * mail_owner) and the SMTP client's own certificate and key files. Postfix's
 * habit of a root-only `sasl_passwd.db` (its smtp process opens tables
 * before it drops privileges) would otherwise surface as failed deliveries
 * hours later; here it stops the start with the file and the fix.
 *
 * Contract: `ownerAccessProblems(owner, groupName, report)` tries each table
 * (openTable, as check.ts does) and reads each client key file with the
 * effective user, group and group list of `owner`, then returns to root; it
 * returns one line per problem (empty: all fine). Tables that failed for root
 * already are check.ts's errors, not repeated here. Runs only as root, at
 * start, when nothing else runs.
 *
 * Not here: the smtpd keys and the SMTP AUTH password file, which stay
 * root-only (the root helper reads them: secrets.ts).
 */
import { readFileSync } from 'node:fs';
import { describeError } from '../lib/errors.ts';
import { openTable } from '../maps/registry.ts';
import type { CheckReport } from './check.ts';
import type { Account } from './privileges.ts';

/** Run `probe` with `owner`'s effective IDs and groups, then become root again. */
export async function asOwner<T>(owner: Account, probe: () => Promise<T>): Promise<T> {
  const groups = process.getgroups!();
  process.setgroups!([owner.gid]);
  process.setegid!(owner.gid);
  process.seteuid!(owner.uid);
  try {
    return await probe();
  } finally {
    process.seteuid!(0);
    process.setegid!(0);
    process.setgroups!(groups);
  }
}

/** The SMTP client's certificate and key files (main.cf). */
function clientKeyFiles(report: CheckReport): Array<{ param: string; file: string }> {
  const c = report.config!;
  const out: Array<{ param: string; file: string }> = [];
  for (const param of ['smtp_tls_cert_file', 'smtp_tls_key_file', 'smtp_tls_chain_files']) {
    for (const file of c.getList(param)) out.push({ param, file });
  }
  return out;
}

/** See the header. */
export async function ownerAccessProblems(owner: Account, groupName: string, report: CheckReport): Promise<string[]> {
  const c = report.config!;
  const fix = `the mail system runs as ${owner.name}: make it readable by that user (e.g. chgrp ${groupName} FILE; chmod g+r FILE) and start again`;
  return asOwner(owner, async () => {
    const problems: string[] = [];
    for (const t of report.tables) {
      if (t.error) continue;
      try {
        const table = await openTable(t.spec, { baseDir: c.configDir, defaultType: c.get('default_database_type') || 'hash', warn: () => undefined });
        await table.close();
      } catch (err) {
        problems.push(`${t.usedBy[0]}: ${describeError(err).message}; ${fix}`);
      }
    }
    for (const { param, file } of clientKeyFiles(report)) {
      try {
        readFileSync(file);
      } catch (err) {
        problems.push(`${param}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; ${fix}`);
      }
    }
    return problems;
  });
}
