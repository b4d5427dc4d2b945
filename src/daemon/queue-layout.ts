/**
 * queue-layout.ts — owners and modes of the queue and data directories, as
 * Postfix's postfix-files lists them (`$queue_directory/maildrop:d:
 * $mail_owner:$setgid_group:730`, ...), and the code that makes the disk
 * match them. The master applies it as root before it drops its privileges
 * (creating what is missing: `postfix check`'s create step), and
 * `sealpost set-permissions` applies it to every file (`postfix
 * set-permissions`).
 *
 * The layout (Debian's modes, which add the sticky bit to maildrop and the
 * setgid bit to public):
 *
 *     queue_directory            root        -             0755
 *       pid/                     root        -             0755   master.pid, master.lock
 *       maildrop/                mail_owner  setgid_group  1730   sendmail's files (kept by their submitter, mode 0444)
 *       public/                  mail_owner  setgid_group  2710   the showq socket
 *       public/flush/            mail_owner  -             0700   flush requests
 *       private/ incoming/ active/ deferred/ hold/ corrupt/ defer/
 *                                mail_owner  -             0700   files inside: mail_owner
 *     data_directory             mail_owner  -             0700
 *       tlsrpt/                  mail_owner  -             0700   the TLS-RPT store; files inside: mail_owner, at every start
 *
 * Contract:
 * - `queueLayout()` is pure: the rules for a queue and data directory, parents
 *   first. Every directory the spool creates (spool.ts ALL_QUEUES, SIDE_DIRS)
 *   is covered; nothing else under queue_directory is ever touched.
 * - `applyLayout()` creates missing directories, fixes a wrong owner, group or
 *   mode, and gives the files inside a mail_owner directory to mail_owner (and
 *   maildrop files mode 0444) — always with `everyFile` (set-permissions),
 *   else only inside a directory whose own owner was wrong (a queue written by
 *   an older root-run daemon).
 *   Symbolic links are never followed. It returns what it changed.
 *
 * Not here: the accounts (privileges.ts, cli/set-permissions.ts).
 */
import { chmodSync, lchownSync, lstatSync, mkdirSync, readdirSync, type Stats } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { UserError } from '../lib/errors.ts';
import { ALL_QUEUES, SIDE_DIRS } from '../queue/spool.ts';
import type { PrivilegePlan } from './privileges.ts';
import { isNotFound } from '../lib/fs-errors.ts';

export interface DirRule {
  readonly path: string;
  readonly owner: 'root' | 'mail_owner';
  /** 'keep': whatever group the directory has (root's when created). */
  readonly group: 'keep' | 'setgid_group';
  readonly mode: number;
  /** The files inside belong to mail_owner. */
  readonly ownFiles: boolean;
  /** The files inside keep their owner and get this mode (maildrop: 0444, so pickup can read them). */
  readonly filesMode?: number;
  /**
   * Give the files inside to mail_owner at every start, not only with set-permissions: `sealpost
   * tlsrpt send --now` run as root while the daemon is down writes the TLS-RPT store as root.
   */
  readonly ownFilesAlways?: boolean;
}

/** Directories whose files belong to their submitters or are sockets the daemon recreates. */
const SPECIAL: Readonly<Record<string, Omit<DirRule, 'path'>>> = {
  maildrop: { owner: 'mail_owner', group: 'setgid_group', mode: 0o1730, ownFiles: false, filesMode: 0o444 },
  public: { owner: 'mail_owner', group: 'setgid_group', mode: 0o2710, ownFiles: false },
  pid: { owner: 'root', group: 'keep', mode: 0o755, ownFiles: false },
};

/** The rules for `queueDir` and `dataDir`, parents before children. */
export function queueLayout(queueDir: string, dataDir: string): DirRule[] {
  for (const [param, dir] of [['queue_directory', queueDir], ['data_directory', dataDir]] as const) {
    if (!isAbsolute(dir) || dir === '/') throw new UserError(`${param} = ${dir}: use an absolute path of a directory of its own`);
  }
  const rules: DirRule[] = [{ path: queueDir, owner: 'root', group: 'keep', mode: 0o755, ownFiles: false }];
  const names = [...new Set(['pid', ...ALL_QUEUES, ...SIDE_DIRS, 'private'])].sort((a, b) => a.split('/').length - b.split('/').length);
  for (const name of names) {
    const special = SPECIAL[name] ?? { owner: 'mail_owner', group: 'keep', mode: 0o700, ownFiles: true };
    rules.push({ path: join(queueDir, name), ...special });
  }
  rules.push({ path: dataDir, owner: 'mail_owner', group: 'keep', mode: 0o700, ownFiles: false });
  rules.push({ path: join(dataDir, 'tlsrpt'), owner: 'mail_owner', group: 'keep', mode: 0o700, ownFiles: true, ownFilesAlways: true });
  return rules;
}

export interface LayoutChanges {
  readonly created: string[];
  /** `PATH: owner root -> sealpost` and the like. */
  readonly fixed: string[];
  /** Files given to mail_owner. */
  filesFixed: number;
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Give every file below `dir` to `uid` (group unchanged), without following links. */
function ownFilesBelow(dir: string, uid: number, changes: LayoutChanges): void {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = lstatOrUndefined(path);
    if (!st || st.isSymbolicLink()) continue;
    if (st.uid !== uid) {
      lchownSync(path, uid, st.gid);
      changes.filesFixed++;
    }
    if (st.isDirectory()) ownFilesBelow(path, uid, changes);
  }
}

function applyRule(rule: DirRule, plan: PrivilegePlan, everyFile: boolean, changes: LayoutChanges): void {
  const uid = rule.owner === 'root' ? 0 : plan.owner.uid;
  let st = lstatOrUndefined(rule.path);
  if (st?.isSymbolicLink()) throw new UserError(`${rule.path} is a symbolic link: sealpost keeps its queue in real directories; replace it by a directory`);
  if (!st) {
    // Missing parents (a fresh /var/lib) are ordinary 0755 directories; the rule's own mode follows below.
    mkdirSync(dirname(rule.path), { recursive: true, mode: 0o755 });
    mkdirSync(rule.path, { mode: 0o700 });
    changes.created.push(rule.path);
    st = lstatSync(rule.path);
  } else if (!st.isDirectory()) {
    throw new UserError(`${rule.path} exists and is not a directory: move it away and run: sealpost set-permissions`);
  }
  const gid = rule.group === 'setgid_group' ? plan.setgidGroup.gid : st.gid;
  const wrongOwner = st.uid !== uid || st.gid !== gid;
  if (wrongOwner) {
    lchownSync(rule.path, uid, gid);
    if (!changes.created.includes(rule.path)) changes.fixed.push(`${rule.path}: owner ${st.uid}:${st.gid} -> ${uid}:${gid}`);
  }
  // chown(2) clears the setgid bit: set the mode after the owner.
  if (wrongOwner || (st.mode & 0o7777) !== rule.mode) {
    chmodSync(rule.path, rule.mode);
    if (!wrongOwner && !changes.created.includes(rule.path)) changes.fixed.push(`${rule.path}: mode ${(st.mode & 0o7777).toString(8)} -> ${rule.mode.toString(8)}`);
  }
  if (rule.ownFiles && (everyFile || wrongOwner || rule.ownFilesAlways)) ownFilesBelow(rule.path, uid, changes);
  if (rule.filesMode !== undefined && (everyFile || wrongOwner)) modeFilesIn(rule.path, rule.filesMode, changes);
}

/** Give the regular files directly in `dir` the mode `mode` (their owner stays). */
function modeFilesIn(dir: string, mode: number, changes: LayoutChanges): void {
  for (const name of readdirSync(dir)) {
    const st = lstatOrUndefined(join(dir, name));
    if (!st?.isFile() || (st.mode & 0o7777) === mode) continue;
    chmodSync(join(dir, name), mode);
    changes.filesFixed++;
  }
}

/** Make the disk match `rules` (see the header). Must run as root. */
export function applyLayout(rules: readonly DirRule[], plan: PrivilegePlan, opts: { readonly everyFile: boolean }): LayoutChanges {
  const changes: LayoutChanges = { created: [], fixed: [], filesFixed: 0 };
  for (const rule of rules) {
    try {
      applyRule(rule, plan, opts.everyFile, changes);
    } catch (err) {
      if (err instanceof UserError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new UserError(`cannot set up ${e.path ?? rule.path}: ${e.code ?? e.message}: check queue_directory and data_directory, then run: sealpost set-permissions`);
    }
  }
  return changes;
}
