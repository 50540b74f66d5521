/**
 * The SLURM launcher: a run's stages as SLURM jobs, each stage one job (a job array when it has
 * several tasks: the experts, one array task each), each depending on the one before
 * (`--dependency=afterok:ID`, `--kill-on-invalid-dep=yes`, so a failure cancels what follows).
 * The tasks are the same `mode` command lines the local launcher runs, so the outputs are the
 * same bit for bit; each task appends to the same log file.
 *
 * While it waits it polls `scontrol show job` (no accounting needed), prints job ids, states and
 * log paths as they change, and echoes the tasks' progress lines from their logs. A failed task
 * is reported with its log's tail and the jobs after it are cancelled; rerunning submits only
 * what has no valid output (every stage's outputs are resumable). Submitted job ids are kept in
 * RUN/slurm/jobs.json: a rerun while they still run waits for them instead of submitting twice.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ECHO, type Task } from './launcher.js';

/** sbatch resources: from flags or a JSON config file (the same keys, and per-stage overrides under `stages`). */
export interface SlurmResources {
  partition?: string;
  time?: string;
  cpusPerTask?: number;
  mem?: string;
  gres?: string;
  /** More sbatch flags, as given. */
  extra?: string[];
}

export interface SlurmConfig extends SlurmResources {
  stages?: Record<string, SlurmResources>;
  /** Milliseconds between polls of scontrol. */
  pollMs?: number;
}

export interface SlurmStage {
  name: string;
  tasks: Task[];
  /** Array tasks at once (sbatch --array=0-N%P); unlimited when absent. */
  parallel?: number;
}

export interface StageTiming {
  stage: string;
  seconds: number;
  skipped: boolean;
}

const KEYS = ['partition', 'time', 'cpusPerTask', 'mem', 'gres', 'extra', 'stages', 'pollMs'];
const userError = (message: string) => Object.assign(new Error(message), { userFacing: true });

export function readSlurmConfig(path: string): SlurmConfig {
  let c: unknown;
  try {
    c = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw userError(
      `--slurm-config ${path}: ${(e as Error).message}. Fix: a JSON object like {"partition": "gpu", "gres": "gpu:1", "stages": {"experts": {"time": "4:00:00"}}}`,
    );
  }
  if (!c || typeof c !== 'object' || Array.isArray(c)) throw userError(`--slurm-config ${path}: not a JSON object`);
  for (const k of Object.keys(c)) if (!KEYS.includes(k)) throw userError(`--slurm-config ${path}: unknown key "${k}" (keys: ${KEYS.join(', ')})`);
  return c as SlurmConfig;
}

/** The sbatch flags of `r`. */
export function resourceFlags(r: SlurmResources): string[] {
  return [
    ...(r.partition ? [`--partition=${r.partition}`] : []),
    ...(r.time ? [`--time=${r.time}`] : []),
    ...(r.cpusPerTask ? [`--cpus-per-task=${r.cpusPerTask}`] : []),
    ...(r.mem ? [`--mem=${r.mem}`] : []),
    ...(r.gres ? [`--gres=${r.gres}`] : []),
    ...(r.extra ?? []),
  ];
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** The batch script of a stage: array task i runs task i's mode command, appending to its log. */
export function batchScript(stage: SlurmStage, node = process.execPath, bin = BIN): string {
  return [
    '#!/bin/bash',
    `# mode run, stage ${stage.name}: ${stage.tasks.length} task(s), one per array index`,
    'case "${SLURM_ARRAY_TASK_ID:-0}" in',
    ...stage.tasks.map((t, i) => `${i}) log=${quote(t.log)}; args=(${t.args.map(quote).join(' ')}) ;;`),
    '*) echo "no task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;',
    'esac',
    'mkdir -p "$(dirname "$log")"',
    `printf '\\n$ mode %s  (SLURM job %s on %s)\\n' "\${args[*]}" "\${SLURM_JOB_ID:-?}" "$(hostname)" >> "$log"`,
    `exec ${quote(node)} ${quote(bin)} "\${args[@]}" >> "$log" 2>&1`,
    '',
  ].join('\n');
}

/** One `scontrol show job -o` record as key → value. */
export function parseJobRecords(text: string): Record<string, string>[] {
  return text
    .split('\n')
    .filter((l) => l.includes('JobId='))
    .map((line) => {
      const rec: Record<string, string> = {};
      // Values may hold spaces only in a few fields we do not read; split on key= boundaries.
      for (const m of line.matchAll(/(\w[\w:/]*)=(\S*)/g)) rec[m[1]!] ??= m[2]!;
      return rec;
    });
}

const ACTIVE = new Set(['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED', 'REQUEUED', 'RESIZING']);
const BAD = new Set(['FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED', 'BOOT_FAIL', 'DEADLINE']);

interface Submitted {
  stage: SlurmStage;
  job: string;
  started?: number;
  ended?: number;
  /** Array index → last state seen. */
  states: Map<number, string>;
  summary: string;
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error)
    throw userError(
      `${cmd}: ${(r.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : r.error.message}. Fix: install SLURM's client tools (Debian: slurm-client) and set SLURM_CONF, or use --launcher local`,
    );
  if (r.status !== 0) throw userError(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export class SlurmLauncher {
  private readonly dir: string;
  private readonly offsets = new Map<string, number>();

  constructor(
    runDir: string,
    private readonly config: SlurmConfig = {},
    private readonly say: (line: string) => void = (l) => console.log(l),
  ) {
    this.dir = join(runDir, 'slurm');
    mkdirSync(this.dir, { recursive: true });
  }

  private get jobsFile() {
    return join(this.dir, 'jobs.json');
  }

  private recorded(): { stage: string; job: string }[] {
    return existsSync(this.jobsFile) ? (JSON.parse(readFileSync(this.jobsFile, 'utf8')) as { stage: string; job: string }[]) : [];
  }

  private record(jobs: { stage: string; job: string }[]): void {
    writeFileSync(`${this.jobsFile}.tmp`, JSON.stringify(jobs, null, 1) + '\n');
    renameSync(`${this.jobsFile}.tmp`, this.jobsFile);
  }

  /** Records of a job (all its array tasks); empty once SLURM has forgotten it. */
  private show(job: string): Record<string, string>[] {
    const r = spawnSync('scontrol', ['show', 'job', '-o', job], { encoding: 'utf8' });
    if (r.error) run('scontrol', []); // throws the clear message
    if (r.status !== 0) return [];
    return parseJobRecords(r.stdout);
  }

  /** Waits for jobs a previous `mode run` submitted that are still queued or running. */
  async reattach(): Promise<void> {
    const live = this.recorded().filter((j) => this.show(j.job).some((r) => ACTIVE.has(r.JobState ?? '')));
    if (!live.length) return;
    this.say(`[slurm] jobs of an earlier mode run are still queued or running: ${live.map((j) => `${j.stage} ${j.job}`).join(', ')}; waiting for them`);
    for (;;) {
      if (!live.some((j) => this.show(j.job).some((r) => ACTIVE.has(r.JobState ?? '')))) return;
      await new Promise((r) => setTimeout(r, this.config.pollMs ?? 1000));
    }
  }

  /** Submits the stages as a chain of jobs and waits for them all; the stages' timings. */
  async runChain(stages: SlurmStage[]): Promise<StageTiming[]> {
    const submitted: Submitted[] = [];
    let previous: string | undefined;
    for (const stage of stages) {
      // What the logs hold from earlier runs is not echoed again.
      for (const t of stage.tasks) this.offsets.set(t.log, existsSync(t.log) ? statSync(t.log).size : 0);
      const script = join(this.dir, `${stage.name}.sh`);
      writeFileSync(script, batchScript(stage), { mode: 0o755 });
      const n = stage.tasks.length;
      const r = { ...this.config, ...this.config.stages?.[stage.name] };
      const args = [
        '--parsable',
        `--job-name=mode-${stage.name}`,
        `--chdir=${process.cwd()}`,
        `--output=${join(this.dir, `${stage.name}-%A_%a.out`)}`,
        ...(n > 1 ? [`--array=0-${n - 1}${stage.parallel ? `%${stage.parallel}` : ''}`] : []),
        ...(previous ? [`--dependency=afterok:${previous}`, '--kill-on-invalid-dep=yes'] : []),
        ...resourceFlags(r),
        script,
      ];
      const job = run('sbatch', args).trim().split(';')[0]!;
      previous = job;
      submitted.push({ stage, job, states: new Map(), summary: '' });
      this.record([...this.recorded(), { stage: stage.name, job }]);
      this.say(
        `[slurm] ${stage.name}: job ${job}${n > 1 ? ` (array 0-${n - 1})` : ''}${submitted.length > 1 ? `, after ${submitted.at(-2)!.job}` : ''}; logs ${[...new Set(stage.tasks.map((t) => t.log))].join(', ')}`,
      );
    }
    await this.wait(submitted);
    return submitted.map((s) => ({
      stage: s.stage.name,
      seconds: ((s.ended ?? performance.now()) - (s.started ?? s.ended ?? performance.now())) / 1000,
      skipped: false,
    }));
  }

  private async wait(submitted: Submitted[]): Promise<void> {
    for (;;) {
      let active = false;
      for (const s of submitted) {
        const recs = this.show(s.job);
        for (const rec of recs) {
          const state = rec.JobState ?? 'UNKNOWN';
          const ids = rec.ArrayTaskId ? expandRange(rec.ArrayTaskId) : [0];
          for (const i of ids) s.states.set(i, state);
        }
        if (!recs.length && s.states.size === 0) s.states.set(0, 'UNKNOWN');
        const states = [...s.states.values()];
        if (states.some((x) => x === 'RUNNING' || !ACTIVE.has(x))) s.started ??= performance.now();
        const count = new Map<string, number>();
        for (const x of states) count.set(x, (count.get(x) ?? 0) + 1);
        const summary = [...count].map(([x, c]) => `${c} ${x}`).join(', ');
        this.echoLogs(s.stage);
        if (summary !== s.summary) {
          s.summary = summary;
          this.say(`[slurm] ${s.stage.name} (job ${s.job}): ${summary}`);
        }
        const failed = [...s.states].find(([, x]) => BAD.has(x));
        if (failed) {
          this.cancel(submitted);
          const [i, state] = failed;
          const task = s.stage.tasks[i]!;
          const tail = existsSync(task.log) ? readFileSync(task.log, 'utf8').split('\n').filter(Boolean).slice(-12).join('\n  ') : '(no log)';
          const jobId = s.stage.tasks.length > 1 ? `${s.job}_${i}` : s.job;
          throw userError(
            `${task.name} (SLURM job ${jobId}) ${state}; its log ${task.log} ends:\n  ${tail}\nThe jobs after it were cancelled. Fix what it says, then run the same mode run --launcher slurm again: it submits only what has no valid output.`,
          );
        }
        if (states.some((x) => ACTIVE.has(x))) active = true;
        else s.ended ??= performance.now();
      }
      if (!active) return;
      await new Promise((r) => setTimeout(r, this.config.pollMs ?? 1000));
    }
  }

  private cancel(submitted: Submitted[]): void {
    const live = submitted.filter((s) => [...s.states.values()].some((x) => ACTIVE.has(x))).map((s) => s.job);
    if (live.length) spawnSync('scancel', live, { encoding: 'utf8' });
  }

  /** Echoes the progress lines a stage's task logs gained since the last look. */
  private echoLogs(stage: SlurmStage): void {
    for (const t of stage.tasks) {
      const size = existsSync(t.log) ? statSync(t.log).size : 0;
      const from = this.offsets.get(t.log) ?? 0;
      if (size <= from) continue;
      const fd = openSync(t.log, 'r');
      const buf = Buffer.alloc(size - from);
      readSync(fd, buf, 0, buf.length, from);
      closeSync(fd);
      const end = buf.lastIndexOf(0x0a) + 1; // whole lines only
      this.offsets.set(t.log, from + end);
      for (const l of buf.subarray(0, end).toString('utf8').split('\n')) if (l && ECHO.test(l)) this.say(`[${t.name}] ${l}`);
    }
  }
}

/** "0-3,5" or "1-3%2" → [0, 1, 2, 3, 5]. */
export function expandRange(s: string): number[] {
  return s
    .replace(/%\d+$/, '')
    .split(',')
    .flatMap((part) => {
      const [a, b] = part.split('-').map(Number);
      return b === undefined ? [a!] : Array.from({ length: b - a! + 1 }, (_, i) => a! + i);
    });
}
