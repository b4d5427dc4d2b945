import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../../src/config/load.ts';
import { parseGroupLine, parsePasswdLine, privilegePlan, runsAs, type Account, type Group } from '../../../src/daemon/privileges.ts';
import { tempDir } from '../../harness/cli.ts';

test('passwd(5) and group(5) lines', () => {
  assert.deepEqual(parsePasswdLine('sealpost:x:999:994:sealpost mail system:/var/spool/sealpost:/usr/sbin/nologin'), { name: 'sealpost', uid: 999, gid: 994 });
  assert.equal(parsePasswdLine('broken:x:abc:1::/:/bin/sh'), undefined);
  assert.equal(parsePasswdLine('short:x:1'), undefined);
  assert.deepEqual(parseGroupLine('sealdrop:x:995:'), { name: 'sealdrop', gid: 995 });
  assert.equal(parseGroupLine('sealdrop:x'), undefined);
});

function plan(mainCf: string, users: Record<string, Account>, groups: Record<string, Group>) {
  const t = tempDir();
  try {
    writeFileSync(join(t.dir, 'main.cf'), mainCf);
    const config = loadConfig({ configDir: t.dir });
    return { result: () => privilegePlan(config, { user: (n) => users[n], group: (n) => groups[n] }), file: join(t.dir, 'main.cf') };
  } finally {
    t.cleanup();
  }
}

test('the defaults are sealpost and sealdrop; every problem names the fix', () => {
  const users = { sealpost: { name: 'sealpost', uid: 999, gid: 994 }, root: { name: 'root', uid: 0, gid: 0 }, odd: { name: 'odd', uid: 998, gid: 995 } };
  const groups = { sealdrop: { name: 'sealdrop', gid: 995 }, wheel: { name: 'wheel', gid: 0 } };
  assert.deepEqual(plan('', users, groups).result(), { owner: users.sealpost, setgidGroup: groups.sealdrop });
  const missing = plan('mail_owner = nosuchuser\n', users, groups);
  assert.throws(missing.result, { message: `file ${missing.file}: parameter mail_owner: unknown user name value: nosuchuser; run: sealpost set-permissions` });
  const root = plan('mail_owner = root\n', users, groups);
  assert.throws(root.result, /parameter mail_owner: user root has privileged user ID: 0; use a dedicated account \(default sealpost\) and run: sealpost set-permissions/);
  const noGroup = plan('setgid_group = nosuchgroup\n', users, groups);
  assert.throws(noGroup.result, /parameter setgid_group: unknown group name: nosuchgroup; run: sealpost set-permissions/);
  const privGroup = plan('setgid_group = wheel\n', users, groups);
  assert.throws(privGroup.result, /parameter setgid_group: group wheel has privileged group ID: 0/);
  const same = plan('mail_owner = odd\n', users, groups);
  assert.throws(same.result, /parameters mail_owner and setgid_group: user odd has same group ID as sealdrop: 995/);
});

test('runsAs: every thread, all four IDs, no other group', () => {
  const owner = { name: 'sealpost', uid: 999, gid: 994 };
  const ok = { tid: 1, uids: [999, 999, 999, 999], gids: [994, 994, 994, 994], groups: [994] };
  assert.equal(runsAs(owner, [ok, { ...ok, tid: 2 }]), true);
  assert.equal(runsAs(owner, [ok, { ...ok, tid: 2, uids: [999, 999, 0, 999] }]), false, 'a saved root UID is a way back');
  assert.equal(runsAs(owner, [{ ...ok, groups: [994, 0] }]), false);
  assert.equal(runsAs(owner, []), false);
});

test('dropPrivileges in a real process: every thread (a worker thread included) switches, and there is no way back', () => {
  assert.equal(process.geteuid?.(), 0, 'the test suite runs as root');
  const script = `
    import { Worker } from 'node:worker_threads';
    import { dropPrivileges, processCredentials } from ${JSON.stringify(join(import.meta.dirname, '../../../src/daemon/privileges.ts'))};
    const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
    await new Promise((r) => w.on('online', r));
    dropPrivileges({ name: 'nobody', uid: 65534, gid: 65534 });
    let back = 'no';
    try { process.setuid(0); back = 'yes'; } catch {}
    console.log(JSON.stringify({ tasks: processCredentials('self'), back }));
    process.exit(0);
  `;
  const r = spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { tasks: Array<{ uids: number[]; gids: number[]; groups: number[] }>; back: string };
  assert.ok(out.tasks.length > 2, 'main thread, worker thread, libuv threads');
  for (const t of out.tasks) assert.deepEqual([t.uids, t.gids, t.groups], [[65534, 65534, 65534, 65534], [65534, 65534, 65534, 65534], [65534]]);
  assert.equal(out.back, 'no');
});
