/**
 * sealpost-bin.ts (test harness) — bin/sealpost.js from the TypeScript
 * sources: `node --import tsx test/harness/sealpost-bin.ts <args>` is the
 * installed command, for tests that need a real process (another user, exit
 * status, stderr as a terminal would see it).
 */
import { main } from '../../src/cli/main.ts';

await main();
