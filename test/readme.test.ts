import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { describe, expect, it } from 'vitest';
import { cacheDir } from '@mode/curator';
import { defaultDataDir } from '@mode/data';
import { tuneCachePath } from '../packages/kernels/src/autotune.js';

// The README's two commands, CI, and where the main command's outputs land. A new user runs the
// main command then the test command in a fresh clone; CI (.ci/run) does the same and requires a
// clean `git status` at the end.
const root = fileURLToPath(new URL('../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** The ```sh blocks of the README's "## The two commands" section: [main, test]. */
function readmeCommands(): { main: string; test: string } {
  const readme = read('README.md');
  const start = readme.indexOf('\n## The two commands\n');
  expect(start, 'README has a "## The two commands" section').toBeGreaterThan(-1);
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
  expect(blocks, 'two ```sh blocks: the main command, then the test command').toHaveLength(2);
  for (const b of blocks) expect(b, 'each command is one line').not.toContain('\n');
  return { main: blocks[0]!, test: blocks[1]! };
}

/** The paths (relative to the repository) that git ignores, of those given. */
function gitIgnored(paths: string[]): Set<string> {
  const r = spawnSync('git', ['check-ignore', '--stdin'], { cwd: root, input: paths.join('\n') + '\n', encoding: 'utf8' });
  expect(r.status === 0 || r.status === 1, `git check-ignore: ${r.stderr}`).toBe(true); // 1: none ignored
  return new Set(r.stdout.split('\n').filter(Boolean));
}

describe('the README’s two commands and CI', () => {
  it('.ci/run runs the README’s main command, then its test command, literally', () => {
    const { main, test } = readmeCommands();
    expect(main).toMatch(/^bash scripts\/setup\.sh && .*npx mode run$/);
    expect(test).toBe('bash scripts/test.sh');
    const code = read('.ci/run')
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .join('\n');
    // Where `cmd` appears as a whole command (not a prefix of a longer one such as `test.sh.off`).
    const find = (cmd: string) => {
      const escaped = cmd.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return [...code.matchAll(new RegExp(`(?<=^|[\\s(;&|])${escaped}(?=$|[\\s);&|])`, 'gm'))].map((m) => m.index);
    };
    const mains = find(main);
    const tests = find(test);
    expect(mains, `.ci/run runs the main command once, as the README shows it:\n${main}`).toHaveLength(1);
    expect(tests, `.ci/run runs the test command once, as the README shows it: ${test}`).toHaveLength(1);
    expect(tests[0], 'the test command after the main command').toBeGreaterThan(mains[0]!);
    expect(code).toContain('git status --porcelain');
  });

  it('.ci/run ends with the test command’s closing line, counting a failed main command and a dirty tree', () => {
    // .ci/run in a scratch repository, with stand-ins for the set-up, `npx` and the test command.
    const dir = mkdtempSync(join(tmpdir(), 'ci-run-'));
    mkdirSync(join(dir, '.ci'));
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'bin'));
    cpSync(join(root, '.ci/run'), join(dir, '.ci/run'));
    writeFileSync(join(dir, 'scripts/setup.sh'), 'echo setup\n');
    writeFileSync(join(dir, 'scripts/test.sh'), 'echo "some test output"\necho "${TEST_LINE}"\nexit ${TEST_RC:-0}\n');
    writeFileSync(join(dir, 'bin/npx'), '#!/bin/sh\n[ "$2" = "$FAIL" ] && exit 1\necho "ran npx $*"\n');
    chmodSync(join(dir, 'bin/npx'), 0o755);
    writeFileSync(join(dir, '.gitignore'), '/bin/\n/.ci/\n/scripts/\n');
    const git = (...args: string[]) => spawnSync('git', ['-c', 'user.name=ci', '-c', 'user.email=ci@example.invalid', ...args], { cwd: dir, encoding: 'utf8' });
    expect(git('init', '-q').status).toBe(0);
    git('add', '.gitignore');
    expect(git('commit', '-qm', 'scratch').status).toBe(0);
    const ci = (env: Record<string, string>) => {
      const r = spawnSync('bash', ['.ci/run'], {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}`, FAIL: '', ...env },
      });
      return { status: r.status, out: r.stdout, last: r.stdout.trimEnd().split('\n').at(-1) };
    };

    const ok = ci({ TEST_LINE: '7 passed, 0 failed, 2 skipped' });
    expect(ok.last).toBe('7 passed, 0 failed, 2 skipped');
    expect(ok.status).toBe(0);
    expect(ok.out).toContain('ran npx mode run');
    expect(ok.out.match(/passed, /g)).toHaveLength(1); // the test command's own line is not printed twice

    const mainFails = ci({ TEST_LINE: '7 passed, 0 failed', FAIL: 'selftest' });
    expect(mainFails.last).toBe('7 passed, 1 failed');
    expect(mainFails.status).not.toBe(0);
    expect(mainFails.out).not.toContain('ran npx mode run'); // && stops at the first failure

    const testsFail = ci({ TEST_LINE: '5 passed, 2 failed', TEST_RC: '1' });
    expect(testsFail.last).toBe('5 passed, 2 failed');
    expect(testsFail.status).not.toBe(0);

    const noLine = ci({ TEST_LINE: 'crashed', TEST_RC: '1' });
    expect(noLine.last).toBe('0 passed, 1 failed');

    writeFileSync(join(dir, 'curated.txt'), 'an output in the repository root\n');
    const dirty = ci({ TEST_LINE: '7 passed, 0 failed' });
    expect(dirty.out).toContain('?? curated.txt');
    expect(dirty.last).toBe('7 passed, 1 failed');
    expect(dirty.status).not.toBe(0);
  });

  it('the main command’s outputs land where git and the format check ignore them', async () => {
    const { main } = readmeCommands();
    const runArgs = main
      .slice(main.lastIndexOf('npx mode run') + 'npx mode run'.length)
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    const runFlag = runArgs.indexOf('--run');
    const readmeRun = runFlag === -1 ? 'out/run' : runArgs[runFlag + 1]!;
    // What mode run writes (test/run.test.ts checks it writes nothing outside its run folder), and
    // the caches: the data, the curator's metadata, the autotuner's choices.
    const written = [
      'run.json',
      'report.html',
      'results.json',
      'logs/seed.log',
      'curate/curated/dataset.json',
      'seed/final.safetensors',
      'seed/trace.json',
      'clusters/report.md',
    ];
    const inRepo = [
      ...written.map((f) => join(readmeRun, f)),
      ...[join(cacheDir(), 'metadata.json'), join(defaultDataDir(), 'emoji/dataset.json'), tuneCachePath()]
        .map((p) => relative(root, p))
        .filter((p) => !p.startsWith('..') && !isAbsolute(p)),
    ];
    const ignored = gitIgnored(inRepo);
    expect(
      inRepo.filter((p) => !ignored.has(p)),
      'written but not git-ignored',
    ).toEqual([]);
    for (const p of inRepo) {
      const info = await prettier.getFileInfo(join(root, p), { ignorePath: [join(root, '.gitignore'), join(root, '.prettierignore')] });
      expect(info.ignored, `prettier --check would check ${p}`).toBe(true);
    }
    // And a check that can fail: the same files in the repository root are not ignored.
    expect(gitIgnored(['report.html', 'results.json']).size).toBe(0);
  });
});
