import { Command } from 'commander';
import { GpuError } from '@mode/gpu';
import { deviceOptions } from './device.js';
import * as bench from './commands/bench.js';
import * as cluster from './commands/cluster.js';
import * as curate from './commands/curate.js';
import * as encode from './commands/encode.js';
import * as data from './commands/data.js';
import * as ensemble from './commands/ensemble.js';
import * as info from './commands/info.js';
import * as evaluate from './commands/eval.js';
import * as model from './commands/model.js';
import * as run from './commands/run.js';
import * as selftest from './commands/selftest.js';
import * as study from './commands/study.js';
import * as train from './commands/train.js';
import * as web from './commands/web.js';

const program = deviceOptions(new Command('mode').description('Train and serve CLIP data experts on any Dawn-supported GPU').showHelpAfterError());

// Each command lives in commands/<name>.ts and registers itself here.
for (const command of [info, selftest, bench, data, curate, model, train, evaluate, encode, cluster, ensemble, run, study, web]) command.register(program);

/** Errors that already say what failed and how to fix it print without a stack trace. Packages
 * that cannot depend on @mode/gpu mark theirs with `userFacing = true`. */
const userFacing = (e: unknown): e is Error => e instanceof GpuError || (e instanceof Error && (e as { userFacing?: boolean }).userFacing === true);

program.parseAsync().catch((e: unknown) => {
  console.error(userFacing(e) ? `mode: ${e.name}: ${e.message}` : e);
  process.exit(1);
});
