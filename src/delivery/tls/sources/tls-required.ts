/**
 * tls-required.ts — the message's own word: RFC 8689 §5 `TLS-Required: No`
 * (Postfix ≥3.10 policy_create()): no table lookups, and the level is capped
 * at `may` — the sender prefers delivery over protection for this message.
 *
 * Contract: asked at the hop step only; `demand` (may) when the header is
 * present, else `silent`. The cap itself (never raising `none`) is the
 * combiner's rule. The other sources skip their lookups on their own when the
 * header is present (they see `message.tlsRequiredNo`).
 *
 * Not here: REQUIRETLS (the opposite demand, RFC 8689 §4).
 */
import type { HopQuery, PolicySource, SourceAnswer } from './types.ts';

export const TLS_REQUIRED_NO_LABEL = 'TLS-Required: No';

export function tlsRequiredNoSource(): PolicySource {
  return {
    name: 'tls-required-no',
    hop(q: HopQuery): SourceAnswer {
      if (!q.message.tlsRequiredNo) return { kind: 'silent', note: 'no TLS-Required: No header' };
      return { kind: 'demand', level: 'may', note: 'TLS-Required: No (RFC 8689 §5): no table lookups, level capped at may', label: TLS_REQUIRED_NO_LABEL };
    },
  };
}
