/**
 * tls-proof.ts — `sealpost tls proof [-c config_dir] [--json] QUEUE_ID | MESSAGE_ID`:
 * the TLS evidence of one message, recipient by recipient, from the proof
 * store (reports/proof.ts): when and to which host and address each attempt
 * went, the policy that applied and its source (the policy table entry,
 * DANE's TLSA records, the MTA-STS policy, the main.cf default), the TLS
 * protocol and cipher, the trust, the peer certificate's SHA-256 fingerprint
 * and the name (or TLSA record) it matched.
 *
 * Contract:
 * - The argument is a queue ID or a Message-ID (with or without angle
 *   brackets); every stored message that matches is shown (queue IDs are
 *   reused over long periods), oldest first. Exit 0 when found; exit 1 with
 *   `no TLS evidence for ID` on stderr otherwise.
 * - `--json` prints `{ "messages": [...] }` with every stored field.
 * - Times are UTC, ISO 8601.
 *
 * Not here: the store and its index (reports/proof.ts).
 */
import { parseArgs } from 'node:util';
import { loadConfig, resolveConfigDir } from '../config/load.ts';
import { EX, UsageError } from '../lib/errors.ts';
import { findProof, type ProofMessage, type ProofOutcome, type StoredSession } from '../reports/proof.ts';
import { warn, type CommandContext } from './context.ts';

export const USAGE = 'usage: sealpost tls proof [-c config_dir] [--json] queue_id|message_id';

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** Where the policy came from, in the postmaster's words. */
export function describeSource(s: StoredSession): string {
  const p = s.policy;
  switch (p.source) {
    case 'table':
    case 'per-site':
      return p.tableEntry ? `policy table ${p.tableEntry.table}: "${p.tableEntry.key}  ${p.tableEntry.value}"` : `policy table (${p.source})`;
    case 'dane':
      return `DANE: TLSA records of ${p.domain}`;
    case 'mta-sts':
    {
      const facts = [p.stsId ? `id ${p.stsId}` : '', p.stsMode ? `mode ${p.stsMode}` : ''].filter((x) => x !== '');
      return `MTA-STS policy of ${p.domain}${facts.length > 0 ? ` (${facts.join(', ')})` : ''}`;
    }
    case 'tls-required-no':
      return 'the message\'s TLS-Required: No header (RFC 8689)';
    default:
      return 'main.cf default (smtp_tls_security_level)';
  }
}

function sessionLines(s: StoredSession): string[] {
  const out: string[] = [];
  const helo = s.server.helo ? ` (greeting ${s.server.helo})` : '';
  out.push(`    server:      ${s.server.hostname}[${s.server.address}]:${s.server.port}${helo}`);
  const level = s.policy.configuredLevel !== s.policy.level ? `${s.policy.configuredLevel} -> ${s.policy.level}` : s.policy.level;
  out.push(`    policy:      level ${level}, source ${s.policy.source}: ${describeSource(s)}`);
  if (s.policy.source === 'dane') for (const r of s.policy.strings) out.push(`                 TLSA ${r}`);
  if (s.policy.source === 'mta-sts' && s.policy.mxHostPatterns.length > 0) out.push(`                 mx: ${s.policy.mxHostPatterns.join(', ')}`);
  if (!s.tls) out.push('    tls:         none (no TLS session)');
  else {
    const t = s.tls;
    out.push(`    tls:         ${t.trust} ${t.protocol} with cipher ${t.cipher} (${t.cipherBits}/${t.cipherAlgBits} bits)${t.reused ? ', connection reused' : ''}`);
    if (t.peer) {
      out.push(`    certificate: sha256 ${t.peer.certSha256}`);
      out.push(`                 subject ${t.peer.subject}, issuer ${t.peer.issuer}, valid to ${when(t.peer.validTo)}`);
      out.push(`                 public key sha256 ${t.peer.pkeySha256}`);
      if (t.peer.matchedName) out.push(`    matched:     name ${t.peer.matchedName}`);
      if (t.peer.matchedTlsa) out.push(`    matched:     TLSA ${t.peer.matchedTlsa}`);
    }
  }
  if (s.result.kind === 'failure') out.push(`    result:      ${s.result.type}${s.result.enforced ? '' : ' (not enforced: MTA-STS testing)'}: ${s.result.reason}`);
  return out;
}

function outcomeLines(o: ProofOutcome, arrival: number): string[] {
  const delay = ((o.time - arrival) / 1000).toFixed(1);
  const out = [`  ${o.status} ${when(o.time)} (${delay} s after arrival) via ${o.transport} to ${o.nexthop}, relay=${o.relay}, dsn=${o.dsn}`, `    reply:       ${o.reason}`];
  if (o.session) out.push(...sessionLines(o.session));
  return out;
}

export function formatProofText(messages: readonly ProofMessage[]): string {
  const blocks = messages.map((m) => {
    const out = [`queue ID ${m.queueId}${m.messageId ? `, Message-ID <${m.messageId}>` : ''}, arrived ${when(m.arrivalTime)}`];
    const byRcpt = new Map<string, ProofOutcome[]>();
    for (const o of m.outcomes) byRcpt.set(o.recipient, [...(byRcpt.get(o.recipient) ?? []), o]);
    for (const [rcpt, list] of byRcpt) {
      out.push('', `recipient <${rcpt}>${list[0]!.origRecipient && list[0]!.origRecipient !== rcpt ? ` (originally <${list[0]!.origRecipient}>)` : ''}:`);
      for (const o of list) out.push(...outcomeLines(o, m.arrivalTime));
    }
    return out.join('\n');
  });
  return blocks.join('\n\n') + '\n';
}

export async function main(ctx: CommandContext): Promise<number> {
  let parsed: { values: { json?: boolean; config?: string }; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...ctx.argv], options: { json: { type: 'boolean' }, config: { type: 'string', short: 'c' } }, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (parsed.positionals.length !== 1) throw new UsageError(USAGE);
  const id = parsed.positionals[0]!;
  const config = loadConfig({ configDir: resolveConfigDir(parsed.values.config, ctx.env), warn: (m) => warn(ctx, m) });
  const found = await findProof(config.get('data_directory'), id);
  if (found.length === 0) {
    ctx.stderr.write(`${ctx.prog}: no TLS evidence for ${id} (kept for sealpost_tls_proof_retention = ${config.get('sealpost_tls_proof_retention')})\n`);
    return 1;
  }
  ctx.stdout.write(parsed.values.json ? JSON.stringify({ messages: found }, null, 2) + '\n' : formatProofText(found));
  return EX.OK;
}
