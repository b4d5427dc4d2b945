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
exec node --import tsx --test --test-concurrency=2 "${files[@]}"
