#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/).
// libuv's thread pool keeps its default of 4 threads: this script cannot size it (Node's
// ES module loader has started the pool before the first line here runs), and 16 threads,
// set in the environment, measured no faster (bench/relay-one.ts, 2026-12-05): the
// spool's hot-path create/rename/unlink calls are made directly (src/queue/meta-calls.ts),
// so the pool mostly runs fsyncs. UV_THREADPOOL_SIZE in the environment still applies.
const { main } = await import('../dist/cli/main.js');
await main();
