/**
 * Unit tests for params.ts: the registry (3.7 + 3.8–3.11 + sealpost_), inferred types, value parsers, service-derived names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allParamNames, paramSpec, parseBool, parseTime, serviceParams, splitList, ValueError } from '../../../src/config/params.ts';

test('registry: every Postfix 3.7 name plus 3.8–3.11 additions and sealpost_ names', () => {
  const names = allParamNames();
  assert.ok(names.length > 850);
  for (const n of ['smtp_tls_policy_maps', 'requiretls_enable', 'smtp_tlsrpt_enable', 'smtp_tls_enforce_sts_mx_patterns', 'sealpost_dns_resolvers', 'smtp_use_tls']) assert.ok(paramSpec(n), n);
  assert.equal(paramSpec('smtp_tls_security_level')!.defaultText, '${{$compatibility_level} <level {3.11} ? {} : {may}}');
  assert.equal(paramSpec('smtp_use_tls')!.replacement, 'smtp_tls_security_level = may');
  assert.deepEqual([...names].sort(), names);
});

test('types inferred from defaults: units from the default text', () => {
  assert.deepEqual([paramSpec('maximal_queue_lifetime')!.type, paramSpec('maximal_queue_lifetime')!.unit], ['time', 'd']);
  assert.deepEqual([paramSpec('delay_warning_time')!.type, paramSpec('delay_warning_time')!.unit], ['time', 'h']);
  assert.equal(paramSpec('smtp_connect_timeout')!.unit, 's');
  assert.equal(paramSpec('smtp_tls_note_starttls_offer')!.type, 'bool');
  assert.equal(paramSpec('smtputf8_enable')!.type, 'bool');
  assert.equal(paramSpec('message_size_limit')!.type, 'size');
  assert.equal(paramSpec('smtp_mx_address_limit')!.type, 'int');
  assert.equal(paramSpec('transport_maps')!.type, 'list');
});

test('value parsers', () => {
  assert.equal(parseTime('5', 'd'), 432000);
  assert.equal(parseTime('2w'), 1209600);
  assert.throws(() => parseTime('5x'), ValueError);
  assert.throws(() => parseTime('-1s'), ValueError);
  assert.equal(parseBool('Yes'), true);
  assert.equal(parseBool('NO'), false);
  assert.throws(() => parseBool('true'), ValueError);
  assert.deepEqual(splitList('a, b\tc,,d { e f }, inline:{ {x=1}, {y=2} }'), ['a', 'b', 'c', 'd', '{ e f }', 'inline:{ {x=1}, {y=2} }']);
});

test('service-derived parameters for delivery agents only', () => {
  const relay = new Map(serviceParams('relay', 'smtp'));
  assert.equal(relay.get('relay_destination_concurrency_limit'), '$default_destination_concurrency_limit');
  assert.equal(relay.size, 16);
  assert.equal(new Map(serviceParams('uucp', 'pipe')).get('uucp_time_limit'), '$command_time_limit');
  assert.deepEqual(serviceParams('submission', 'smtpd'), []);
});
