/**
 * Relay control from a client outside mynetworks: the default configuration
 * is never an open relay, and the address tricks are refused as Postfix
 * refuses them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RawSmtp, startTestSmtpd } from '../harness/smtp-client.ts';

async function rcptReplies(overrides: Record<string, string>, rcpts: readonly string[]): Promise<{ replies: string[]; log: string[] }> {
  const t = await startTestSmtpd(overrides);
  try {
    const c = await RawSmtp.open(t.port);
    await c.reply();
    await c.cmd('EHLO client.example');
    await c.cmd('MAIL FROM:<a@example.org>');
    const replies: string[] = [];
    for (const r of rcpts) replies.push(await c.cmd(`RCPT TO:${r}`));
    await c.cmd('QUIT');
    return { replies, log: [...t.log.lines] };
  } finally {
    await t.stop();
  }
}

const OUTSIDE = { mynetworks: '192.0.2.0/24' };

test('default configuration from outside mynetworks: remote recipients get 454 4.7.1 Relay access denied, local ones pass', async () => {
  const { replies, log } = await rcptReplies(OUTSIDE, ['<victim@remote.example>', '<user@mx.test.example>', '<user@localhost>']);
  assert.deepEqual(replies, ['454 4.7.1 <victim@remote.example>: Relay access denied', '250 2.1.5 Ok', '250 2.1.5 Ok']);
  assert.ok(
    log.some((l) =>
      l.endsWith(
        'NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 454 4.7.1 <victim@remote.example>: Relay access denied; from=<a@example.org> to=<victim@remote.example> proto=ESMTP helo=<client.example>',
      ),
    ),
  );
});

test('default configuration from inside mynetworks relays (permit_mynetworks)', async () => {
  const { replies } = await rcptReplies({}, ['<victim@remote.example>']);
  assert.deepEqual(replies, ['250 2.1.5 Ok']);
});

test('reject_unauth_destination gives 554 5.7.1; relay_domains and its subdomains are auth destinations', async () => {
  const { replies } = await rcptReplies(
    { ...OUTSIDE, smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination', relay_domains: 'partner.example' },
    ['<x@remote.example>', '<x@partner.example>', '<x@sub.partner.example>'],
  );
  assert.deepEqual(replies, ['554 5.7.1 <x@remote.example>: Relay access denied', '250 2.1.5 Ok', '250 2.1.5 Ok']);
});

test('address tricks towards a local domain are unwrapped and refused when they point elsewhere', async () => {
  const { replies } = await rcptReplies({ ...OUTSIDE, smtpd_relay_restrictions: 'reject_unauth_destination' }, [
    '<victim%remote.example@localhost>',
    '<remote.example!victim@localhost>',
    '<"victim@remote.example"@localhost>',
    '<@localhost:victim@remote.example>',
    '<user%localhost@localhost>',
    '<@relay.example:user@localhost>',
  ]);
  assert.deepEqual(replies, [
    '554 5.7.1 <victim%remote.example@localhost>: Relay access denied',
    '554 5.7.1 <remote.example!victim@localhost>: Relay access denied',
    '554 5.7.1 <victim@remote.example@localhost>: Relay access denied',
    '554 5.7.1 <victim@remote.example>: Relay access denied',
    '250 2.1.5 Ok',
    '250 2.1.5 Ok',
  ]);
});

test('routing operators towards a relay domain are refused unless allow_untrusted_routing = yes', async () => {
  const base = { ...OUTSIDE, smtpd_relay_restrictions: 'reject_unauth_destination', relay_domains: 'partner.example' };
  const rcpts = ['<victim%remote.example@partner.example>', '<remote.example!victim@partner.example>', '<@partner.example:victim@partner.example>'];
  const refused = await rcptReplies(base, rcpts);
  assert.deepEqual(
    refused.replies.map((r) => r.slice(0, 9)),
    ['554 5.7.1', '554 5.7.1', '250 2.1.5'],
  );
  const allowed = await rcptReplies({ ...base, allow_untrusted_routing: 'yes' }, rcpts);
  assert.deepEqual(allowed.replies, ['250 2.1.5 Ok', '250 2.1.5 Ok', '250 2.1.5 Ok']);
});

test('allow_percent_hack = no and swap_bangpath = no leave the local part alone (local delivery)', async () => {
  const { replies } = await rcptReplies({ ...OUTSIDE, allow_percent_hack: 'no', swap_bangpath: 'no', smtpd_relay_restrictions: 'reject_unauth_destination' }, [
    '<victim%remote.example@localhost>',
    '<remote.example!victim@localhost>',
  ]);
  assert.deepEqual(replies, ['250 2.1.5 Ok', '250 2.1.5 Ok']);
});

test('mynetworks forms: CIDR, [ipv6]/len, negation and cidr: tables', async () => {
  assert.deepEqual((await rcptReplies({ mynetworks: '!127.0.0.1 127.0.0.0/8' }, ['<x@remote.example>'])).replies, ['454 4.7.1 <x@remote.example>: Relay access denied']);
  assert.deepEqual((await rcptReplies({ mynetworks: '[::1]/128 127.0.0.0/30' }, ['<x@remote.example>'])).replies, ['250 2.1.5 Ok']);
  assert.deepEqual((await rcptReplies({ mynetworks: 'inline:{127.0.0.1=ok}' }, ['<x@remote.example>'])).replies, ['250 2.1.5 Ok']);
});

test('reject, permit_sasl_authenticated and an unknown restriction (451 4.3.5, logged)', async () => {
  const r1 = await rcptReplies({ smtpd_relay_restrictions: 'reject' }, ['<x@localhost>']);
  assert.deepEqual(r1.replies, ['554 5.7.1 <x@localhost>: Recipient address rejected: Access denied']);
  const r2 = await rcptReplies({ smtpd_relay_restrictions: 'permit_sasl_authenticated, reject_unauth_destination', ...OUTSIDE }, ['<x@remote.example>']);
  assert.deepEqual(r2.replies, ['554 5.7.1 <x@remote.example>: Relay access denied']);
  const r3 = await rcptReplies({ smtpd_relay_restrictions: 'permit_mynetworks, bogus_restriction, reject_unauth_destination', ...OUTSIDE }, ['<x@localhost>']);
  assert.deepEqual(r3.replies, ['451 4.3.5 Server configuration error']);
  assert.ok(r3.log.some((l) => l.includes('warning: unknown smtpd restriction: "bogus_restriction"')));
});

test('a configuration without any relay stopper is refused at start (never an open relay)', async () => {
  await assert.rejects(startTestSmtpd({ smtpd_relay_restrictions: 'permit_mynetworks' }), /specify at least one working instance of: reject_unauth_destination/);
});
