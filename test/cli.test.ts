import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The `mode` command end to end, as a user meets it: the built CLI (scripts/setup.sh builds it),
// stdout and stderr piped (not a terminal, as in CI logs).
const root = fileURLToPath(new URL('../', import.meta.url));
const mode = (args: string[], cwd = root) =>
  spawnSync(process.execPath, [join(root, 'packages/cli/bin/mode.js'), ...args], { cwd, encoding: 'utf8', timeout: 120_000 });

const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'mode-cli-'));
  writeFileSync(join(dir, 'pool.jsonl'), ['{"caption": "a red cat"}', '{"caption": "a blue dog"}'].join('\n') + '\n');
  return dir;
};

describe('mode curate, end to end', () => {
  it('a malformed --metadata file: one line naming the file, line and column; no stack trace', () => {
    const dir = scratch();
    const meta = join(dir, 'meta.json');
    writeFileSync(meta, '[\n  "cat",\n  "dog"\n  "sky"\n]\n');
    const r = mode(['curate', '--pool', join(dir, 'pool.jsonl'), '--metadata', meta, '--out', join(dir, 'out')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(`mode: Error: ${meta}:4:3: invalid JSON: unexpected '"' (expected ',' or ']'); metadata must be a JSON list of strings`);
    expect(r.stderr).not.toMatch(/SyntaxError|\n\s+at /);
    expect(existsSync(join(dir, 'out', 'stats.json'))).toBe(false);
  });

  it('a --metadata file that is missing or not a list of strings is named too', () => {
    const dir = scratch();
    const missing = mode(['curate', '--pool', join(dir, 'pool.jsonl'), '--metadata', join(dir, 'nope.json'), '--out', join(dir, 'out')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(new RegExp(`^mode: Error: ${join(dir, 'nope.json')}: cannot read the metadata file: ENOENT`));
    writeFileSync(join(dir, 'obj.json'), '{"cat": 1}');
    const obj = mode(['curate', '--pool', join(dir, 'pool.jsonl'), '--metadata', join(dir, 'obj.json'), '--out', join(dir, 'out')]);
    expect(obj.stderr.trim()).toBe(`mode: Error: ${join(dir, 'obj.json')}: metadata must be a JSON list of strings, not an object`);
  });

  it('a good run, not on a terminal: plain phase lines on stderr, no progress bar or escape codes', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'meta.json'), '["cat", "dog"]');
    const r = mode(['curate', '--pool', join(dir, 'pool.jsonl'), '--metadata', join(dir, 'meta.json'), '--t', '1', '--out', join(dir, 'out')]);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^\[count\] 1 task\(s\)/m);
    expect(r.stderr).toMatch(/^\[sample\] 1 task\(s\)/m);
    expect(r.stderr + r.stdout).not.toContain('\x1b');
    expect(r.stderr).not.toMatch(/ETA|█|░/);
    expect(r.stdout).toMatch(/matched +2 /);
  });
});

describe('mode data prepare, end to end', () => {
  it('not on a terminal: one line per set, no progress bar or escape codes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mode-data-'));
    const r = mode(['data', 'prepare', '--only', 'emoji', '--limit', '5', '--out', join(dir, 'data')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('  building emoji (5)');
    expect(r.stdout).toMatch(/^ {2}emoji +pairs +train 5 /m);
    expect(r.stderr + r.stdout).not.toContain('\x1b');
    expect(r.stderr).not.toMatch(/ETA|█|░/);
  });
});
