/**
 * entry.ts — the script `sealpost start` runs in its background child
 * (`node [--import tsx] entry start-fg -c DIR`): the CLI dispatcher, without
 * depending on how sealpost was installed (bin/ runs the compiled dist/).
 *
 * Contract: exit status is the command's; nothing else happens here.
 */
import { run } from '../cli/sealpost.ts';

process.exitCode = await run('sealpost', process.argv.slice(2));
