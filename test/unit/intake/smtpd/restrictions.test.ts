import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TableSet } from '../../../../src/maps/registry.ts';
import { domainListFromText, networkListFromText } from '../../../../src/intake/smtpd/match-list.ts';
import { checkRecipient, relayConfigProblem, resolveRecipient } from '../../../../src/intake/smtpd/restrictions.ts';
import type { RelaySettings } from '../../../../src/intake/smtpd/restrictions.ts';

const tables = new TableSet();
function settings(over: Partial<RelaySettings> = {}): RelaySettings {
  return {
    relayRestrictions: ['permit_mynetworks', 'permit_sasl_authenticated', 'defer_unauth_destination'],
    recipientRestrictions: [],
    mynetworks: networkListFromText('mynetworks', '127.0.0.0/8 [::1]/128', tables),
    mydestination: domainListFromText('mydestination', 'mx.example.org, localhost', tables, false),
    relayDomains: domainListFromText('relay_domains', 'partner.example', tables, true),
    allowUntrustedRouting: false,
    allowPercentHack: true,
    swapBangpath: true,
    resolveDequoted: true,
    relayRejectCode: 554,
    rejectCode: 554,
    deferCode: 450,
    myorigin: 'mx.example.org',
    ...over,
  };
}
const ctx = (recipient: string, clientAddress = '198.51.100.7', saslAuthenticated = false) => ({ recipient, hadSourceRoute: false, clientAddress, localAddress: '192.0.2.25', saslAuthenticated });

test('the default relay restrictions: mynetworks and SASL relay, others only to auth destinations', async () => {
  const s = settings();
  assert.deepEqual(await checkRecipient(s, ctx('x@remote.example')), { kind: 'defer', reply: '454 4.7.1 <x@remote.example>: Relay access denied' });
  assert.equal((await checkRecipient(s, ctx('x@remote.example', '127.0.0.1'))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('x@remote.example', '::1'))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('x@remote.example', '198.51.100.7', true))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('x@MX.example.org'))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('x@deep.sub.partner.example'))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('postmaster'))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('x@[192.0.2.25]'))).kind, 'permit');
  assert.equal((await checkRecipient(s, ctx('x@[192.0.2.26]'))).kind, 'defer');
});

test('resolveRecipient: percent hack, bang path and quoted @ are unwrapped for local domains', async () => {
  const s = settings();
  assert.deepEqual(await resolveRecipient('u%remote.example@localhost', s, ctx('')), { address: 'u@remote.example', cls: 'remote', routed: false });
  assert.deepEqual(await resolveRecipient('remote.example!u@localhost', s, ctx('')), { address: 'u@remote.example', cls: 'remote', routed: false });
  assert.deepEqual(await resolveRecipient('u@remote.example@localhost', s, ctx('')), { address: 'u@remote.example', cls: 'remote', routed: false });
  assert.deepEqual(await resolveRecipient('u%localhost@localhost', s, ctx('')), { address: 'u@localhost', cls: 'local', routed: false });
  assert.deepEqual(await resolveRecipient('u%evil.example@partner.example', s, ctx('')), { address: 'u%evil.example@partner.example', cls: 'relay', routed: true });
});

test('relayConfigProblem: unknown names and a missing relay stopper', () => {
  assert.match(relayConfigProblem({ relayRestrictions: ['permit_mynetworks', 'frobnicate'], recipientRestrictions: [] })!, /unknown smtpd restriction: "frobnicate"/);
  assert.match(relayConfigProblem({ relayRestrictions: ['permit_mynetworks'], recipientRestrictions: [] })!, /specify at least one working instance/);
  assert.equal(relayConfigProblem({ relayRestrictions: [], recipientRestrictions: ['permit_mynetworks', 'reject_unauth_destination'] }), undefined);
});

test('recipient restrictions run after relay restrictions; permit ends only its own list', async () => {
  const s = settings({ relayRestrictions: ['permit_mynetworks', 'reject_unauth_destination'], recipientRestrictions: ['reject'] });
  assert.equal((await checkRecipient(s, ctx('x@remote.example', '127.0.0.1'))).kind, 'reject');
  const s2 = settings({ relayRestrictions: ['permit', 'reject_unauth_destination'] });
  assert.equal((await checkRecipient(s2, ctx('x@remote.example'))).kind, 'permit');
});

test('a table lookup error fails closed', async () => {
  const s = settings({ mynetworks: networkListFromText('mynetworks', 'socketmap:inet:127.0.0.1:1:x', tables) });
  const v = await checkRecipient(s, ctx('x@remote.example'));
  assert.equal(v.kind, 'lookup-error');
});
