#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/).
import { run } from '../dist/cli/sealpost.js';

const code = await run(process.argv[1] ?? 'sealpost', process.argv.slice(2));
// Let pending stdout writes drain before exiting with the command's status.
process.exitCode = code;
