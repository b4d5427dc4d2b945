/**
 * privileges.ts — who the mail system runs as. The master starts as root,
 * opens its listeners and reads its private keys, then becomes `mail_owner`
 * for good, as Postfix's daemons do (set_ugid(3): setgid, setgroups,
 * setuid). Nothing that holds a network socket keeps root.
 *
 * Contract:
 * - `privilegePlan(config)` resolves `mail_owner` and `setgid_group` through
 *   the system's user database (getent, so NSS accounts count). A missing
 *   account, a privileged UID/GID, or a mail_owner whose group is the
 *   setgid_group is a UserError in Postfix's words (postfix(1) check) with
 *   the fix: `run: sealpost set-permissions`.
 * - `dropPrivileges(owner)` switches the whole process — every thread:
 *   glibc applies set*id to all threads of a process, so the delivery worker
 *   threads and libuv's pool follow — to the owner's UID and GID with no
 *   supplementary groups, then proves it: the real, effective and saved IDs
 *   all equal the owner's, and `setuid(0)` fails. Any doubt is a UserError
 *   (the master then stops instead of running as root).
 * - `processCredentials(pid)` reads `/proc/PID/task/* /status` (Uid:/Gid:
 *   lines) for every thread of a process: the evidence the tests check.
 * - Pure parsers for passwd(5)/group(5) lines; the lookups are injected.
 *
 * Not here: creating the accounts and directories (cli/set-permissions.ts,
 * daemon/queue-layout.ts); the root helper that re-reads private keys on
 * reload (daemon/secrets.ts).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import type { Config } from '../config/types.ts';
import { UserError } from '../lib/errors.ts';

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

export interface Group {
  readonly name: string;
  readonly gid: number;
}

export interface PrivilegePlan {
  /** mail_owner: the account every daemon part runs as. */
  readonly owner: Account;
  /** setgid_group: the group of maildrop/ and public/ and of the setgid helpers. */
  readonly setgidGroup: Group;
}

/** passwd(5): `name:x:uid:gid:gecos:home:shell` → the account, or undefined when malformed. */
export function parsePasswdLine(line: string): Account | undefined {
  const f = line.trim().split(':');
  if (f.length < 7 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) return undefined;
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
}

/** group(5): `name:x:gid:members` → the group, or undefined when malformed. */
export function parseGroupLine(line: string): Group | undefined {
  const f = line.trim().split(':');
  if (f.length < 3 || !/^\d+$/.test(f[2]!)) return undefined;
  return { name: f[0]!, gid: Number(f[2]) };
}

/** `getent DB NAME`: the line, or undefined when the name is unknown (exit 2). */
function getent(db: 'passwd' | 'group', name: string): string | undefined {
  if (name === '' || /[:\s]/.test(name)) return undefined;
  try {
    return execFileSync('getent', [db, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
  } catch (err) {
    const e = err as { status?: number; code?: string };
    if (e.status === 2) return undefined;
    // No getent (a minimal container): read the files themselves.
    const file = db === 'passwd' ? '/etc/passwd' : '/etc/group';
    try {
      return readFileSync(file, 'utf8').split('\n').find((l) => l.split(':')[0] === name);
    } catch {
      return undefined;
    }
  }
}

export function lookupUser(name: string): Account | undefined {
  const line = getent('passwd', name);
  return line === undefined ? undefined : parsePasswdLine(line);
}

export function lookupGroup(name: string): Group | undefined {
  const line = getent('group', name);
  return line === undefined ? undefined : parseGroupLine(line);
}

export interface AccountLookups {
  readonly user: (name: string) => Account | undefined;
  readonly group: (name: string) => Group | undefined;
}

const SYSTEM_LOOKUPS: AccountLookups = { user: lookupUser, group: lookupGroup };

/** See the header. `config.mainCfPath` names the file in messages, as Postfix does. */
export function privilegePlan(config: Config & { readonly mainCfPath?: string }, lookups: AccountLookups = SYSTEM_LOOKUPS): PrivilegePlan {
  const file = config.mainCfPath ?? `${config.configDir}/main.cf`;
  const fix = 'run: sealpost set-permissions';
  const ownerName = config.get('mail_owner');
  const groupName = config.get('setgid_group');
  const owner = lookups.user(ownerName);
  if (!owner) throw new UserError(`file ${file}: parameter mail_owner: unknown user name value: ${ownerName}; ${fix}`);
  // postfix(1)/mail_params.c check_mail_owner(): the mail owner must be unprivileged.
  if (owner.uid === 0) throw new UserError(`file ${file}: parameter mail_owner: user ${ownerName} has privileged user ID: ${owner.uid}; use a dedicated account (default sealpost) and ${fix}`);
  if (owner.gid === 0) throw new UserError(`file ${file}: parameter mail_owner: user ${ownerName} has privileged group ID: ${owner.gid}; ${fix}`);
  const group = lookups.group(groupName);
  if (!group) throw new UserError(`file ${file}: parameter setgid_group: unknown group name: ${groupName}; ${fix}`);
  if (group.gid === 0) throw new UserError(`file ${file}: parameter setgid_group: group ${groupName} has privileged group ID: ${group.gid}; ${fix}`);
  // mail_params.c check_sgid_group(): the owner must not be able to act as the setgid group.
  if (group.gid === owner.gid) {
    throw new UserError(`file ${file}: parameters mail_owner and setgid_group: user ${ownerName} has same group ID as ${groupName}: ${group.gid}; ${fix}`);
  }
  return { owner, setgidGroup: group };
}

function idsOf(text: string, field: 'Uid' | 'Gid'): number[] {
  const m = new RegExp(`^${field}:\\s*(.*)$`, 'm').exec(text);
  return m ? m[1]!.trim().split(/\s+/).map(Number) : [];
}

export interface TaskCredentials {
  readonly tid: number;
  /** Real, effective, saved and file-system IDs, as /proc lists them. */
  readonly uids: readonly number[];
  readonly gids: readonly number[];
  readonly groups: readonly number[];
}

/** The credentials of every thread of `pid` (see the header). */
export function processCredentials(pid: number | 'self' = 'self'): TaskCredentials[] {
  const out: TaskCredentials[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    } catch {
      continue; // The thread ended meanwhile.
    }
    const groups = /^Groups:\s*(.*)$/m.exec(text)?.[1]?.trim() ?? '';
    out.push({ tid: Number(tid), uids: idsOf(text, 'Uid'), gids: idsOf(text, 'Gid'), groups: groups === '' ? [] : groups.split(/\s+/).map(Number) });
  }
  return out;
}

/** True when every thread of this process runs as exactly `owner` (all four IDs, no other groups). */
export function runsAs(owner: Account, tasks: readonly TaskCredentials[]): boolean {
  return (
    tasks.length > 0 &&
    tasks.every((t) => t.uids.every((u) => u === owner.uid) && t.gids.every((g) => g === owner.gid) && t.groups.every((g) => g === owner.gid))
  );
}

/** Become `owner` for good; see the header. */
export function dropPrivileges(owner: Account): void {
  if (owner.uid === 0 || owner.gid === 0) throw new UserError(`refusing to run as ${owner.name}: a privileged account`);
  try {
    // set_ugid(3)'s order: the group ID and the group list first, the user ID last.
    process.setgid!(owner.gid);
    process.setgroups!([owner.gid]);
    process.setuid!(owner.uid);
  } catch (err) {
    // Node refuses set*id while io_uring may be on (CVE-2024-22017): UV_USE_IO_URING=1 in the environment.
    throw new UserError(`cannot switch to mail_owner ${owner.name} (uid ${owner.uid}): ${(err as Error).message}${/io_uring/.test((err as Error).message) ? '; unset UV_USE_IO_URING' : ''}`);
  }
  let back = false;
  try {
    process.setuid!(0);
    back = true;
  } catch {
    // EPERM: no way back to root, as intended.
  }
  if (back || !runsAs(owner, processCredentials('self'))) {
    throw new UserError(`switching to mail_owner ${owner.name} did not drop every privilege; refusing to run`);
  }
}
