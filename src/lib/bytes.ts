/**
 * bytes.ts — byte scans more than one part of sealpost needs.
 *
 * Contract: pure functions over Uint8Array; no allocation.
 *
 * Not here: header parsing (message/), line handling (smtp/).
 */

/** True when any byte is outside US-ASCII (≥ 0x80): 8-bit content (RFC 6152) or UTF-8 headers (RFC 6532). */
export function hasEightBit(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return true;
  return false;
}
