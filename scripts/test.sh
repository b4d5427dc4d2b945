#!/usr/bin/env bash
# The test command (npm test): build, type-check, then run every *.test.ts file.
# Node 20's runner finds no tests when given a folder and exits 0, so the files
# are listed explicitly and an empty list is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.json
npx tsc -p tsconfig.test.json --noEmit
mapfile -t files < <(find test -name '*.test.ts' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under test/" >&2
  exit 1
fi
# --test-timeout: a test that hangs fails after 5 minutes, with its name, instead of
# holding CI until its 90 minutes are up. --test-force-exit: a file whose tests have
# all finished exits even if a failed setup left a listener open (a leaked handle kept
# a test process, and so the whole run, alive for ever).
exec node --import tsx --test --test-concurrency=2 --test-timeout=300000 --test-force-exit "${files[@]}"
