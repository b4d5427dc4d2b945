#!/usr/bin/env node
// The installed entry point: runs the compiled CLI (npm run build makes dist/).
// libuv's thread pool runs every fsync and file operation of the spool; its
// default of 4 threads caps durable intake and delivery under load. It must be
// sized before the pool is first used, so the CLI is imported only after this.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { run } = await import('../dist/cli/sealpost.js');
const { describeError } = await import('../dist/lib/errors.js');

// `sealpost mailq | head -1`: a closed pipe ends the command quietly, as for any Unix tool.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
// Whatever escapes a command (an error event nobody awaited): one line for a
// file-system error, a bug report with the stack for anything else.
const program = process.argv[1]?.replace(/^.*\//, '').replace(/\.js$/, '') ?? 'sealpost';
const lastResort = (err) => {
  const d = describeError(err);
  process.stderr.write(d.bug ? `${program}: fatal: internal error (a sealpost bug; please report it): ${d.message}\n` : `${program}: fatal: ${d.message}\n`);
  process.exit(d.exitCode);
};
process.on('uncaughtException', lastResort);
process.on('unhandledRejection', lastResort);

const code = await run(process.argv[1] ?? 'sealpost', process.argv.slice(2));
// Let pending stdout writes drain before exiting with the command's status.
process.exitCode = code;
