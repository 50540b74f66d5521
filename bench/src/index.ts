export { writeResults, textTable, RESULTS_DIR, type SuiteResults } from './results.js';
export { timeAsync, type Timing } from './timing.js';
export { SUITES, type BenchOptions, type Suite } from './suites.js';
export { withPeakShares } from './roofline.js';
