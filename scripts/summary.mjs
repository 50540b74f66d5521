// Prints vitest's JSON report as the one closing line CI reads: "N passed, N failed[, N skipped]".
import { readFileSync } from 'node:fs';

const file = process.argv[2];
// Failed checks that ran before vitest (typecheck, format), counted by scripts/test.sh.
const otherFailures = Number(process.argv[3] ?? 0);
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.log(`0 passed, ${1 + otherFailures} failed`);
  console.error(`summary: no vitest report at ${file}: ${e.message}`);
  process.exit(1);
}
// A test file that failed to load has no failing test of its own: count it as one failure.
const brokenFiles = (report.testResults ?? []).filter((f) => f.status === 'failed' && !f.assertionResults?.some((a) => a.status === 'failed')).length;
// vitest's exit status: non-zero with nothing counted above means a file crashed (its process died).
const vitestStatus = Number(process.argv[4] ?? 0);
const counted = report.numFailedTests + brokenFiles + otherFailures;
const failed = counted || (vitestStatus !== 0 || report.success === false ? 1 : 0);
const skipped = report.numPendingTests + report.numTodoTests;
console.log(`${report.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed || report.numPassedTests === 0 ? 1 : 0);
