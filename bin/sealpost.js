#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/).
// libuv's thread pool runs every fsync and file operation of the spool; its
// default of 4 threads caps durable intake and delivery under load. It must be
// sized before the pool is first used, so the CLI is imported only after this.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { main } = await import('../dist/cli/main.js');
await main();
