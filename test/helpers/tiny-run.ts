// The tiny `mode run` the pipeline tests share (run.test.ts locally, slurm.test.ts through SLURM):
// seconds per stage, two experts, checkpoints every 2 steps so a kill always has one to resume.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const bin = join(root, 'packages/cli/bin/mode.js');

export const tinyRunArgs = (run: string, ...more: string[]) => [
  bin,
  'run',
  '--run',
  run,
  '--preset',
  'tiny',
  '--seed-steps',
  '16',
  '--expert-steps',
  '8',
  '--experts',
  '2',
  '--fine',
  '8',
  '--eval-limit',
  '64',
  '--task',
  'mnist',
  'openmoji',
  '--checkpoint-every',
  '2',
  '--parallel',
  '1',
  ...more,
];
