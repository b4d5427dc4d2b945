/**
 * bare-newline.ts — smtpd_forbid_bare_newline (postconf(5)): its values, and what the SMTP
 * server does with a command or DATA line that ended in a bare LF.
 *
 * Contract: `parseBareNewlineMode()` reads the parameter value like Postfix (case does not
 * matter; `yes` is a compatibility alias for `normalize`). `bareNewlineAction()` says whether a
 * line that ended in bare LF is accepted (processed as if it ended in CRLF) or rejected, and
 * `bareLfReply()` gives Postfix's reply text for the rejection. All modes except `no` also
 * require the standard end of data `<CR><LF>.<CR><LF>` — dot-stuff.ts enforces that in every
 * mode (a deliberate difference from Postfix's `no`, which also ends DATA at `<LF>.<LF>`).
 *
 * Not here: smtpd_forbid_bare_newline_exclusions (the listener matches the client against
 * $mynetworks and picks the mode), logging.
 */

/** postconf(5) smtpd_forbid_bare_newline, with `yes` folded into `normalize`. */
export type BareNewlineMode = 'no' | 'normalize' | 'reject';

/** Postfix ≥ 3.9 default. */
export const DEFAULT_BARE_NEWLINE_MODE: BareNewlineMode = 'normalize';

/** postconf(5) smtpd_forbid_bare_newline_reject_code default. */
export const DEFAULT_BARE_NEWLINE_REJECT_CODE = 550;

/** Parse a smtpd_forbid_bare_newline value (case does not matter); undefined when invalid. */
export function parseBareNewlineMode(value: string): BareNewlineMode | undefined {
  const v = value.trim().toLowerCase();
  if (v === 'no' || v === 'normalize' || v === 'reject') return v;
  // postconf(5): "yes — Compatibility alias for normalize".
  if (v === 'yes') return 'normalize';
  return undefined;
}

/**
 * postconf(5): with `reject`, "reject a command or message content when a line contains bare
 * <LF>"; `normalize` and `no` process it as if the client sent <CR><LF>.
 */
export function bareNewlineAction(mode: BareNewlineMode, line: { readonly bareLf: boolean }): 'accept' | 'reject' {
  return mode === 'reject' && line.bareLf ? 'reject' : 'accept';
}

/** Postfix smtpd's reply (then it disconnects): `550 5.5.2 <myhostname> Error: bare <LF> received`. */
export function bareLfReply(myhostname: string, code = DEFAULT_BARE_NEWLINE_REJECT_CODE): string {
  return `${code} 5.5.2 ${myhostname} Error: bare <LF> received`;
}
