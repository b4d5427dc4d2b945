/**
 * delivery-log.test.ts — format_tv rounding and the to=/queue active/expired
 * lines, field by field, against lines in Postfix's shape.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatDelay, formatDeliveryLine, formatExpired, formatQueueActive, formatTv, type DeliveryLineParams } from '../../../src/reports/delivery-log.ts';

test('format_tv: 2 significant digits, at most N decimals, whole seconds from 100 s', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [0.4, '0'], // below the 0.01 resolution (rounds to 0.0004 s → 0)
    [5, '0.01'], // 0.005 rounds up
    [12.3, '0.01'],
    [123, '0.12'],
    [1234, '1.2'],
    [1250, '1.3'],
    [9999, '10'],
    [12_345, '12'],
    [99_500, '100'],
    [123_456, '123'],
    [100, '0.1'],
    [1000, '1'],
  ];
  for (const [ms, want] of cases) assert.equal(formatDelay(ms, 2), want, `${ms} ms`);
  assert.equal(formatDelay(-5, 2), '0');
  assert.equal(formatDelay(Number.NaN, 2), '0');
  // delay_logging_resolution_limit changes the decimals only for small values.
  assert.equal(formatDelay(1.234, 6), '0.0012');
  assert.equal(formatDelay(1.234, 3), '0.001');
  assert.equal(formatDelay(123, 0), '0');
  assert.equal(formatDelay(1500, 0), '2');
  assert.equal(formatTv(0, 999_999, 2, 2), '1');
});

const base: DeliveryLineParams = {
  queueId: '4F1A2B3C4D',
  address: 'bob@example.net',
  origAddress: 'bob@example.net',
  relay: 'mx.example.net[192.0.2.25]:25',
  arrivalTime: 1_700_000_000_000,
  activeTime: 1_700_000_000_050,
  timing: { started: 1_700_000_000_061, connected: 1_700_000_000_433, finished: 1_700_000_000_612 },
  dsn: '2.0.0',
  status: 'sent',
  reason: '250 2.0.0 Ok: queued as 9A8B7C',
  resolutionLimit: 2,
};

test('sent line: every field in Postfix order', () => {
  assert.equal(
    formatDeliveryLine(base),
    '4F1A2B3C4D: to=<bob@example.net>, relay=mx.example.net[192.0.2.25]:25, delay=0.61, delays=0.05/0.01/0.37/0.18, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9A8B7C)',
  );
});

test('orig_to (only when different, ignoring case), conn_use and tls=', () => {
  assert.equal(
    formatDeliveryLine({ ...base, origAddress: 'Bob@Example.NET' }).includes('orig_to'),
    false,
  );
  assert.equal(
    formatDeliveryLine({ ...base, origAddress: 'alias@example.org', connUse: 3, tls: 'may:none' }),
    '4F1A2B3C4D: to=<bob@example.net>, orig_to=<alias@example.org>, relay=mx.example.net[192.0.2.25]:25, conn_use=3, delay=0.61, delays=0.05/0.01/0.37/0.18, tls=may:none, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 9A8B7C)',
  );
});

test('deferred with relay=none after a long wait in the queue', () => {
  const arrival = base.arrivalTime;
  const line = formatDeliveryLine({
    ...base,
    relay: 'none',
    activeTime: arrival + 3_600_400,
    timing: { started: arrival + 3_600_420, connected: arrival + 3_600_420, finished: arrival + 3_600_930 },
    dsn: '4.7.4',
    status: 'deferred',
    reason: 'TLS is required, but was not offered by host mx.example.net[192.0.2.25]',
  });
  assert.equal(
    line,
    '4F1A2B3C4D: to=<bob@example.net>, relay=none, delay=3601, delays=3600/0.02/0/0.51, dsn=4.7.4, status=deferred (TLS is required, but was not offered by host mx.example.net[192.0.2.25])',
  );
});

test('queue active and expired lines', () => {
  assert.equal(formatQueueActive('4F1A2B3C4D', 'alice@example.org', 4120, 3), '4F1A2B3C4D: from=<alice@example.org>, size=4120, nrcpt=3 (queue active)');
  assert.equal(formatQueueActive('4F1A2B3C4D', '', 512, 1), '4F1A2B3C4D: from=<>, size=512, nrcpt=1 (queue active)');
  assert.equal(formatExpired('4F1A2B3C4D', 'alice@example.org'), '4F1A2B3C4D: from=<alice@example.org>, status=expired, returned to sender');
});
