import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Dawn prints two notes on lavapipe's limits ("…artificially reduced from 1000000 to 16…") straight
// to fd 2 when an adapter is requested. The runtime holds them back (into the adapter report) where
// it can reopen stderr, but a test worker's stderr is a socket it cannot: the workers' output
// reaches this process, which leaves those two lines out of the log.
const DAWN_NOTE =
  /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\n/gm;
const write = process.stderr.write.bind(process.stderr);
process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) =>
  write((typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()).replace(DAWN_NOTE, ''), ...rest)) as typeof process.stderr.write;

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run on the TypeScript sources; only the CLI's own tests need `npm run build`.
    alias: {
      '@mode/gpu': src('gpu'),
      '@mode/kernels': src('kernels'),
      '@mode/autograd': src('autograd'),
      '@mode/models': src('models'),
      '@mode/trainer': src('trainer'),
      '@mode/clusterer': src('clusterer'),
      '@mode/ensembler': src('ensembler'),
      '@mode/curator': src('curator'),
      '@mode/web': src('web'),
      // Before '@mode/data', which would otherwise match it as a prefix.
      '@mode/data/labels': fileURLToPath(new URL('./packages/data/src/labels.ts', import.meta.url)),
      '@mode/data': src('data'),
      '@mode/bench': fileURLToPath(new URL('./bench/src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Each test file is its own process with its own Dawn instance: no native state shared.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
