/**
 * The local launcher: a stage's work as `mode` child processes, each its own device and process
 * (so experts train independently, as MoDE's do, and a crash takes down one task, not the run).
 * Output goes to the task's log file; progress lines are echoed prefixed with the task's name.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/mode.js', import.meta.url));

export interface Task {
  name: string;
  args: string[];
  log: string;
  env?: Record<string, string>;
}

export class TaskFailed extends Error {
  readonly userFacing = true;
  constructor(task: Task, code: number | null, signal: string | null) {
    const tail = readFileSync(task.log, 'utf8').split('\n').filter(Boolean).slice(-12).join('\n  ');
    super(
      `${task.name} failed (${signal ? `signal ${signal}` : `exit ${code}`}); its log ${task.log} ends:\n  ${tail}\nFix what it says, then run the same mode run again: finished work is kept.`,
    );
  }
}

/** Lines worth echoing: steps, stage results, errors (not Dawn's start-up warnings). */
export const ECHO =
  /^(step |trained|stopped|embedded|fitted|\d+ pairs|  expert|  ensemble|  linear probe|[\w-]+: \d+ images|fine chunk 0 iteration (1|\d*0):|wrote|mode |error|Error|.*(failed|Fix:))/;

export function runTask(task: Task, echo: (line: string) => void = (l) => console.log(l)): Promise<void> {
  mkdirSync(dirname(task.log), { recursive: true });
  const fd = openSync(task.log, 'a');
  writeSync(fd, `\n$ mode ${task.args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...task.args], { env: { ...process.env, ...task.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    const onData = (b: Buffer) => {
      writeSync(fd, b);
      pending += b.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop()!;
      for (const l of lines) if (ECHO.test(l)) echo(`[${task.name}] ${l}`);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    // Stopping the run stops its tasks (their checkpoints are written on SIGTERM).
    const stop = () => child.kill('SIGTERM');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    child.on('close', (code, signal) => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      closeSync(fd);
      if (code === 0) resolve();
      else reject(new TaskFailed(task, code, signal));
    });
  });
}

/** Runs tasks with at most `parallel` at once; the first failure is reported after the running ones end. */
export async function runTasks(tasks: Task[], parallel: number, echo?: (line: string) => void): Promise<void> {
  const queue = [...tasks];
  const errors: unknown[] = [];
  const worker = async () => {
    for (let t = queue.shift(); t; t = queue.shift()) {
      try {
        await runTask(t, echo);
      } catch (e) {
        errors.push(e);
        queue.length = 0;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, tasks.length)) }, worker));
  if (errors.length) throw errors[0];
}
