import { fill as fillKernel, rng } from '@mode/kernels';
import { engine as currentEngine, type Engine } from './engine.js';
import * as ops from './ops.js';

export type DType = 'f32' | 'u32';

/**
 * A GPU buffer shared by the tensors that view it (reshape, detach, the copies a backward
 * saves), counted: the buffer goes back to the pool when the last one lets go.
 */
export class Storage {
  private refs = 1;
  /**
   * Bumped by every in-place write (set, assign, an AdamW step), as PyTorch's version counter: a
   * backward compares it with the version it saved, so that it never computes from changed data.
   */
  version = 0;
  /** What made the last in-place write (named in the error). */
  lastWrite = '';
  constructor(
    readonly engine: Engine,
    private buffer_: GPUBuffer | null,
  ) {}
  get buffer(): GPUBuffer | null {
    return this.buffer_;
  }
  ref(): void {
    this.refs++;
  }
  /** Records an in-place write by `op`. */
  bump(op: string): void {
    this.version++;
    this.lastWrite = op;
  }
  unref(): void {
    if (--this.refs === 0 && this.buffer_) {
      this.engine.release(this.buffer_);
      this.buffer_ = null;
    }
  }
}

/** How an intermediate tensor was made: its inputs and the backward that maps its gradient to theirs. */
interface Node {
  op: string;
  inputs: Tensor[];
  /** Private handles on what the backward reads; disposed once it has run. */
  saved: Tensor[];
  /** saved[i].storage.version when the op recorded. */
  versions: number[];
  backward: (g: Tensor) => (Tensor | null)[];
}

// ---- grad mode and scopes -----------------------------------------------------------------

let gradEnabled = true;
/** Tensors made inside each open tidy()/noGrad() scope, innermost last. */
const scopes: Set<Tensor>[] = [];

export const isGradEnabled = () => gradEnabled;

type Returned = Tensor | readonly unknown[] | Record<string, unknown> | void | null | undefined | number | string | boolean;

/** The tensors in fn's result (a tensor, or an array or object holding tensors), which outlive the scope. */
function returnedTensors(r: unknown): Set<Tensor> {
  const out = new Set<Tensor>();
  const visit = (x: unknown, depth: number) => {
    if (x instanceof Tensor) out.add(x);
    else if (depth < 3 && x && typeof x === 'object') for (const v of Object.values(x)) visit(v, depth + 1);
  };
  visit(r, 0);
  return out;
}

/**
 * Runs `fn` (synchronously) and disposes every tensor made inside it, except those it returns and
 * those marked keep(). Data saved for a pending backward stays alive until that backward has run.
 */
export function tidy<T extends Returned>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) throw new Error('tidy/noGrad: fn must be synchronous (ops are; read() results after the scope)');
  } finally {
    scopes.pop();
  }
  const keep = returnedTensors(result);
  for (const t of scope) if (!keep.has(t)) t.dispose();
  const parent = scopes[scopes.length - 1];
  if (parent) for (const t of keep) parent.add(t);
  return result;
}

/** Runs `fn` without recording a graph (like torch.no_grad) and disposes its temporaries, as tidy(). */
export function noGrad<T extends Returned>(fn: () => T): T {
  const was = gradEnabled;
  gradEnabled = false;
  try {
    return tidy(fn);
  } finally {
    gradEnabled = was;
  }
}

// ---- seeded generator for randn and friends -------------------------------------------------

let seedStream = rng(0);
/** Seeds the generator behind randn/rand defaults, parameter initialisation and dropout. */
export function manualSeed(seed: number): void {
  seedStream = rng(seed);
}
/** A fresh 32-bit seed from the global stream. */
export const nextSeed = () => (seedStream() * 2 ** 32) >>> 0;

// ---- the tensor ---------------------------------------------------------------------------

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

function checkShape(shape: readonly number[]): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 1))
    throw new RangeError(`shape [${shape}] is invalid: every dimension must be a positive integer (empty tensors are not supported)`);
  return [...shape];
}

export class Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  requiresGrad: boolean;
  /** Gradient accumulated by backward() (for leaves with requiresGrad); zeroGrad() disposes it. */
  grad: Tensor | null = null;
  /** Set on intermediates recorded while grad is enabled; cleared when backward consumes them. */
  node: Node | null = null;
  /**
   * The op that made this intermediate, once a backward() consumed it (its graph is freed): an op
   * or a backward that would take it as a graph input is refused, since no gradient could flow.
   */
  consumedBy: string | null = null;
  private disposed_ = false;
  private kept_ = false;

  constructor(
    readonly storage: Storage,
    shape: readonly number[],
    readonly dtype: DType = 'f32',
    requiresGrad = false,
    track = true,
  ) {
    this.shape = checkShape(shape);
    this.size = numel(this.shape);
    this.requiresGrad = requiresGrad;
    if (track) scopes[scopes.length - 1]?.add(this);
  }

  /** A fresh tensor with an uninitialised buffer (what ops write their outputs into). */
  static empty(engine: Engine, shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    const s = checkShape(shape);
    return new Tensor(new Storage(engine, engine.alloc(4 * numel(s), label)), s, dtype);
  }

  get engine(): Engine {
    return this.storage.engine;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.disposed_;
  }
  get isLeaf(): boolean {
    return this.node === null;
  }

  /** The GPU buffer, for ops: throws once this tensor was disposed. */
  get buffer(): GPUBuffer {
    const b = this.storage.buffer;
    if (this.disposed_ || !b)
      throw new Error(`${this.describe()} was disposed (backward() frees the graph it walks: read what you need first, or call keep() on the tensor)`);
    return b;
  }

  describe(): string {
    return `tensor [${this.shape.join(', ')}] ${this.dtype}${this.node ? ` (from ${this.node.op})` : ''}`;
  }

  /** The values (row-major) once all queued work has run. */
  async read(): Promise<Float32Array> {
    if (this.dtype !== 'f32') throw new Error(`read(): ${this.describe()} holds u32 values; use readU32()`);
    return this.engine.read(this.buffer, Float32Array, this.size);
  }

  /** The values of a u32 tensor (indices, targets, k-means assignments). */
  async readU32(): Promise<Uint32Array> {
    if (this.dtype !== 'u32') throw new Error(`readU32(): ${this.describe()} holds f32 values; use read()`);
    return this.engine.read(this.buffer, Uint32Array, this.size);
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item(): ${this.describe()} has ${this.size} elements, not 1`);
    return (await this.read())[0]!;
  }

  /** Hands the buffer back (at once, or when the last saved copy is done with it). Idempotent. */
  dispose(): void {
    if (this.disposed_) return;
    this.disposed_ = true;
    this.storage.unref();
  }

  /** Keeps this tensor alive through tidy()/noGrad() exits and backward(); dispose it yourself. */
  keep(): this {
    this.kept_ = true;
    for (const s of scopes) s.delete(this);
    return this;
  }
  get kept(): boolean {
    return this.kept_;
  }

  /** A tensor on the same data that the graph does not see (requiresGrad false). */
  detach(): Tensor {
    this.buffer; // throws if disposed
    this.storage.ref();
    return new Tensor(this.storage, this.shape, this.dtype);
  }

  /** Overwrites the values in place (same element count), ordered after all queued work. */
  set(data: ArrayLike<number>): this {
    if (data.length !== this.size) throw new RangeError(`set: ${data.length} values for ${this.describe()} (${this.size} elements)`);
    const b = this.buffer;
    const typed = this.dtype === 'u32' ? Uint32Array.from(data) : data instanceof Float32Array ? data.slice() : Float32Array.from(data);
    this.storage.bump('set');
    this.engine.enqueue('set', () => this.engine.gpu.write(b, typed));
    return this;
  }

  /** A new handle on the same data with another shape of the same size (reshape without a graph). */
  view(shape: readonly number[]): Tensor {
    this.buffer;
    if (numel(shape) !== this.size) throw new RangeError(`view: shape [${shape}] does not hold the ${this.size} elements of ${this.describe()}`);
    this.storage.ref();
    return new Tensor(this.storage, shape, this.dtype);
  }

  /** A private handle on the same data, not tracked by scopes: what a backward saves. */
  alias(shape: readonly number[] = this.shape): Tensor {
    this.buffer;
    this.storage.ref();
    return new Tensor(this.storage, shape, this.dtype, false, false);
  }

  /**
   * Back-propagates from this tensor (a scalar, unless `grad` is given) to every leaf with
   * requiresGrad, adding into their `grad`. Each intermediate of the walked graph is disposed as
   * soon as the walk has passed it (its saved data once its backward ran), this tensor included
   * unless kept: the graph is consumed, as in PyTorch without retain_graph.
   */
  backward(grad?: Tensor): void {
    if (this.disposed_ || this.consumedBy)
      throw new Error(
        `backward(): ${this.describe()}: a backward() already consumed its graph (retain_graph is not supported: sum the losses before backward())`,
      );
    if (!this.requiresGrad) throw new Error(`backward(): ${this.describe()} does not require grad (no input of its graph has requiresGrad)`);
    if (!grad && this.size !== 1) throw new Error(`backward(): ${this.describe()} is not a scalar; pass its gradient`);
    if (grad && grad.shape.join() !== this.shape.join()) throw new Error(`backward(): gradient [${grad.shape}] does not match ${this.describe()}`);
    const order = topoOrder(this);
    checkGraph(order);
    const grads = new Map<Tensor, Tensor>();
    const was = gradEnabled;
    gradEnabled = false;
    try {
      grads.set(this, grad ? grad.alias() : fill(this.engine, this.shape, 1));
      for (let k = order.length - 1; k >= 0; k--) {
        const t = order[k]!;
        const node = t.node!;
        const g = grads.get(t);
        grads.delete(t);
        if (g) {
          const gs = tidy(() => node.backward(g));
          node.inputs.forEach((input, i) => {
            const gi = gs[i];
            if (!gi) return;
            if (gi.shape.join() !== input.shape.join()) throw new Error(`backward of ${node.op}: gradient [${gi.shape}] for input [${input.shape}]`);
            if (!input.requiresGrad) return gi.dispose();
            const prev = grads.get(input);
            grads.set(input, prev ? accumulate(prev, gi) : gi);
          });
          g.dispose();
        }
        node.saved.forEach((s) => s.dispose());
        // Consumed: a kept intermediate stays as plain data, outside any graph.
        t.consumedBy = node.op;
        t.node = null;
        t.requiresGrad = false;
        if (!t.kept_) t.dispose();
      }
      // What is left are leaves: their gradients accumulate across backward() calls.
      for (const [leaf, g] of grads) {
        g.keep();
        leaf.grad = leaf.grad ? accumulate(leaf.grad, g).keep() : g;
      }
    } finally {
      gradEnabled = was;
    }
  }

  // ---- methods, for chaining; each is the function of the same name in ops.ts ----
  add(b: Tensor | number): Tensor {
    return ops.add(this, b);
  }
  sub(b: Tensor | number): Tensor {
    return ops.sub(this, b);
  }
  mul(b: Tensor | number): Tensor {
    return ops.mul(this, b);
  }
  div(b: Tensor | number): Tensor {
    return ops.div(this, b);
  }
  neg(): Tensor {
    return ops.neg(this);
  }
  matmul(b: Tensor): Tensor {
    return ops.matmul(this, b);
  }
  exp(): Tensor {
    return ops.exp(this);
  }
  log(): Tensor {
    return ops.log(this);
  }
  sqrt(): Tensor {
    return ops.sqrt(this);
  }
  relu(): Tensor {
    return ops.relu(this);
  }
  gelu(o?: ops.GeluOptions): Tensor {
    return ops.gelu(this, o);
  }
  tanh(): Tensor {
    return ops.tanh(this);
  }
  sigmoid(): Tensor {
    return ops.sigmoid(this);
  }
  sum(axes?: number | number[], keepDims = false): Tensor {
    return ops.sum(this, axes, keepDims);
  }
  mean(axes?: number | number[], keepDims = false): Tensor {
    return ops.mean(this, axes, keepDims);
  }
  max(axes?: number | number[], keepDims = false): Tensor {
    return ops.max(this, axes, keepDims);
  }
  reshape(shape: readonly number[]): Tensor {
    return ops.reshape(this, shape);
  }
  transpose(a = -2, b = -1): Tensor {
    return ops.transpose(this, a, b);
  }
  permute(dims: readonly number[]): Tensor {
    return ops.permute(this, dims);
  }
  slice(axis: number, start: number, end: number): Tensor {
    return ops.slice(this, axis, start, end);
  }
  expand(shape: readonly number[]): Tensor {
    return ops.expand(this, shape);
  }
  softmax(): Tensor {
    return ops.softmax(this);
  }
  logSoftmax(): Tensor {
    return ops.logSoftmax(this);
  }
}

/** Intermediates reachable from root, inputs before the tensors made from them. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, boolean][] = [[root, false]];
  while (stack.length) {
    const [t, expanded] = stack.pop()!;
    if (expanded) {
      order.push(t);
      continue;
    }
    if (seen.has(t) || !t.node) continue;
    seen.add(t);
    stack.push([t, true]);
    for (const input of t.node.inputs) if (!seen.has(input) && input.node) stack.push([input, false]);
  }
  return order;
}

const consumedError = (op: string, input: Tensor) =>
  new Error(
    `${op}: an input (${input.describe()}, made by ${input.consumedBy}) was consumed by an earlier backward(), which freed its graph, ` +
      `so no gradient would reach what it was made from. Sum the losses before backward() (one backward over the total), or detach() it to use it as data.`,
  );

/**
 * Refuses, before any gradient is computed, a walk that would give silently wrong gradients: a
 * node whose input an earlier backward consumed (a second loss over a shared trunk), or whose
 * saved data was written in place after it was saved.
 */
function checkGraph(order: Tensor[]): void {
  for (const t of order) {
    const node = t.node!;
    for (const input of node.inputs) if (input.consumedBy) throw consumedError(`backward(): ${node.op}`, input);
    node.saved.forEach((s, i) => {
      if (s.storage.version !== node.versions[i])
        throw new Error(
          `backward(): ${s.describe()}, saved by ${node.op} for its backward, was modified in place by ${s.storage.lastWrite} after it was saved ` +
            `(version ${node.versions[i]}, now ${s.storage.version}). Write after backward(), or write into a copy.`,
        );
    });
  }
}

/** a + b into a new tensor; both are disposed. */
function accumulate(a: Tensor, b: Tensor): Tensor {
  const s = noGrad(() => ops.add(a, b));
  a.dispose();
  b.dispose();
  return s;
}

/**
 * Records an op's output in the graph (when grad is enabled and an input requires grad): the
 * backward gets the output's gradient and private handles on `save` (in that order).
 */
export function record(op: string, out: Tensor, inputs: Tensor[], save: Tensor[], backward: (g: Tensor, saved: Tensor[]) => (Tensor | null)[]): Tensor {
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  const consumed = inputs.find((t) => t.consumedBy);
  if (consumed) {
    out.dispose();
    throw consumedError(op, consumed);
  }
  const saved = save.map((t) => t.alias());
  out.requiresGrad = true;
  out.node = { op, inputs, saved, versions: save.map((t) => t.storage.version), backward: (g) => backward(g, saved) };
  return out;
}

// ---- creation -------------------------------------------------------------------------------

export interface CreateOptions {
  requiresGrad?: boolean;
  dtype?: DType;
  engine?: Engine;
}

/** A tensor holding `data` (row-major), of `shape` (default: 1-D). */
export function tensor(data: ArrayLike<number>, shape?: readonly number[], opts: CreateOptions = {}): Tensor {
  const s = checkShape(shape ?? [data.length]);
  if (numel(s) !== data.length) throw new RangeError(`tensor: ${data.length} values do not fill shape [${s}] (${numel(s)} elements)`);
  const dtype = opts.dtype ?? 'f32';
  const eng = opts.engine ?? currentEngine();
  if (dtype === 'u32')
    for (let i = 0; i < data.length; i++)
      if (!(Number.isInteger(data[i]) && data[i]! >= 0 && data[i]! <= 0xffffffff)) throw new RangeError(`tensor: value ${data[i]} at ${i} is not a u32`);
  const typed = dtype === 'u32' ? Uint32Array.from(data) : data instanceof Float32Array ? data.slice() : Float32Array.from(data);
  return new Tensor(new Storage(eng, eng.upload(typed, 'tensor')), s, dtype, !!opts.requiresGrad);
}

function fill(eng: Engine, shape: readonly number[], value: number, requiresGrad = false): Tensor {
  const t = Tensor.empty(eng, shape, 'f32', 'full');
  const b = t.buffer;
  eng.enqueue('fill', () => fillKernel(eng.gpu, b, t.size, value));
  t.requiresGrad = requiresGrad;
  return t;
}

export const full = (shape: readonly number[], value: number, opts: CreateOptions = {}) =>
  fill(opts.engine ?? currentEngine(), shape, value, !!opts.requiresGrad);
export const zeros = (shape: readonly number[], opts: CreateOptions = {}) => full(shape, 0, opts);
export const ones = (shape: readonly number[], opts: CreateOptions = {}) => full(shape, 1, opts);

export interface RandomOptions extends CreateOptions {
  /** Default: the next seed of the global stream (manualSeed). */
  seed?: number;
}

/** Normal samples (Box–Muller over mulberry32), times std plus mean; the same for a given seed everywhere. */
export function randn(shape: readonly number[], opts: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  const random = rng(opts.seed ?? nextSeed());
  const n = numel(checkShape(shape));
  const data = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - random()));
    const th = 2 * Math.PI * random();
    data[i] = (opts.mean ?? 0) + (opts.std ?? 1) * r * Math.cos(th);
    if (i + 1 < n) data[i + 1] = (opts.mean ?? 0) + (opts.std ?? 1) * r * Math.sin(th);
  }
  return tensor(data, shape, opts);
}

/** Uniform samples in [low, high). */
export function rand(shape: readonly number[], opts: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  const random = rng(opts.seed ?? nextSeed());
  const [lo, hi] = [opts.low ?? 0, opts.high ?? 1];
  return tensor(
    Float32Array.from({ length: numel(checkShape(shape)) }, () => lo + (hi - lo) * random()),
    shape,
    opts,
  );
}
