#!/usr/bin/env bash
# Sets up (scripts/setup.sh), then type-checks, checks formatting and runs every test.
# Ends with one line: "N passed, N failed[, N skipped]". Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
# Typecheck and format are checks too: each failure counts in the closing line.
checks_failed=0
echo "[test] typecheck (tsc -b, strict)"
npx --no-install tsc -b || checks_failed=$((checks_failed + 1))
echo "[test] format (prettier --check)"
npx --no-install prettier --check --log-level warn . || checks_failed=$((checks_failed + 1))
echo "[test] vitest"
results=$(mktemp)
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$results"
vitest_status=$?
# A test file whose process crashed may leave no failing test in the report: vitest's own exit
# status counts it (summary.mjs adds one failure when the report shows none).
node scripts/summary.mjs "$results" "$checks_failed" "$vitest_status"
status=$?
rm -f "$results"
exit $status
