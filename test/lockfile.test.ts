import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// scripts/setup.sh runs `npm install`, which rewrites package-lock.json whenever it is not what
// npm would write: the tree is then dirty after set-up (and CI fails). Two ways it drifts, both
// checked here without the network: a package.json changed without the lockfile, and a lockfile
// pruned to one platform's optional binaries (nx's), which npm adds back.
const root = fileURLToPath(new URL('../', import.meta.url));
const json = (path: string) => JSON.parse(readFileSync(join(root, path), 'utf8'));

interface LockEntry {
  name?: string;
  version?: string;
  link?: boolean;
  resolved?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}
const lock = json('package-lock.json') as { lockfileVersion: number; packages: Record<string, LockEntry> };
const manifest = json('package.json') as { name: string; workspaces: string[] } & LockEntry;

/** The workspace folders: `packages/*` and `bench` from package.json's `workspaces`. */
const workspaces = manifest.workspaces.flatMap((w) =>
  w.endsWith('/*')
    ? readdirSync(join(root, w.slice(0, -2)))
        .map((d) => `${w.slice(0, -2)}/${d}`)
        .filter((d) => existsSync(join(root, d, 'package.json')))
    : [w],
);
const deps = (e: LockEntry) => ({
  dependencies: e.dependencies ?? {},
  devDependencies: e.devDependencies ?? {},
  optionalDependencies: e.optionalDependencies ?? {},
  peerDependencies: e.peerDependencies ?? {},
});

describe('package-lock.json is what `npm install` writes', () => {
  it('lockfile v3', () => {
    expect(lock.lockfileVersion).toBe(3);
  });

  it('the root and every workspace have their package.json dependencies, and a link', () => {
    expect(deps(lock.packages['']!)).toEqual(deps(manifest));
    expect(workspaces.length).toBeGreaterThan(5);
    const listed = Object.keys(lock.packages).filter((k) => !k.includes('node_modules/') && k !== '');
    expect(listed.sort(), 'workspaces in the lockfile').toEqual([...workspaces].sort());
    for (const w of workspaces) {
      const pkg = json(join(w, 'package.json')) as LockEntry & { name: string };
      const entry = lock.packages[w];
      expect(entry, `${w} in package-lock.json (run npm install)`).toBeDefined();
      expect(entry!.name, w).toBe(pkg.name);
      expect(deps(entry!), `${w}'s dependencies in package-lock.json match its package.json (run npm install)`).toEqual(deps(pkg));
      expect(lock.packages[`node_modules/${pkg.name}`], `${pkg.name} → ${w}`).toMatchObject({ resolved: w, link: true });
    }
  });

  it('every optional dependency is listed, for every platform (npm adds the missing ones back)', () => {
    const has = new Set(Object.keys(lock.packages).map((k) => k.slice(k.lastIndexOf('node_modules/') + 'node_modules/'.length)));
    const missing: string[] = [];
    for (const [path, e] of Object.entries(lock.packages))
      for (const name of Object.keys(e.optionalDependencies ?? {})) if (!has.has(name)) missing.push(`${name} (optional dependency of ${path || 'the root'})`);
    expect(missing).toEqual([]);
    // nx's native binaries: one per platform, ten in all.
    expect(Object.keys(lock.packages).filter((k) => /^node_modules\/@nx\/nx-/.test(k)).length).toBeGreaterThanOrEqual(10);
  });
});
