#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then type-checks, checks formatting and runs every test.
# Ends with one line: "N passed, N failed[, N skipped]". Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
status=0
echo "[test] typecheck (tsc -b, strict)"
npx --no-install tsc -b || status=1
echo "[test] format (prettier --check)"
npx --no-install prettier --check --log-level warn . || status=1
echo "[test] vitest"
results=$(mktemp)
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$results" || status=1
node scripts/summary.mjs "$results" || status=1
rm -f "$results"
exit $status
