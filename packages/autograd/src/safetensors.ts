import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import type { Module } from './nn.js';
import type { AdamW, AdamWState } from './optim.js';
import { tensor, Tensor } from './tensor.js';
import type { Engine } from './engine.js';

/**
 * The safetensors format (Hugging Face; what OpenCLIP checkpoints ship as):
 *   8 bytes   N, the header length (u64, little-endian)
 *   N bytes   JSON: { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } },
 *             padded with spaces to a multiple of 8
 *   the rest  the tensors' bytes, little-endian, row-major, offsets relative to this section
 * Written here: names sorted, data packed in that order, no gaps.
 */

export class SafetensorsError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

const DTYPES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1 } as const;
export type SafeDType = keyof typeof DTYPES;

export interface SafeTensor {
  dtype: SafeDType;
  shape: number[];
  /** The raw little-endian bytes. */
  data: Uint8Array;
}

export interface SafetensorsFile {
  tensors: Record<string, SafeTensor>;
  metadata: Record<string, string>;
}

/** Serialises tensors (sorted by name) and string metadata. */
export function encodeSafetensors(tensors: Record<string, SafeTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name]!;
    const bytes = t.shape.reduce((a, b) => a * b, 1) * DTYPES[t.dtype];
    if (bytes !== t.data.byteLength)
      throw new SafetensorsError(`encode: tensor "${name}" has ${t.data.byteLength} bytes, but ${t.dtype} [${t.shape}] needs ${bytes}`);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20); // padded with spaces
  head.set(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const name of names) {
    out.set(tensors[name]!.data, at);
    at += tensors[name]!.data.byteLength;
  }
  return out;
}

/** Parses and checks a safetensors file's bytes; errors name `file`, the tensor and the fix. */
export function decodeSafetensors(input: Uint8Array, file = '(buffer)'): SafetensorsFile {
  // A plain Uint8Array: Node's Buffer.slice would give views into a shared pool, not copies.
  const bytes = new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  const bad = (what: string) => new SafetensorsError(`${file}: ${what}. Fix: re-export the checkpoint with safetensors (e.g. safetensors.torch.save_file).`);
  if (bytes.byteLength < 8) throw bad(`${bytes.byteLength} bytes is too short for a safetensors file (8-byte header length first)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > bytes.byteLength - 8 || n > 100 * 2 ** 20)
    throw bad(`header length ${n} runs past the end of the file (${bytes.byteLength} bytes); the file is truncated or not safetensors`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw bad(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('the header is not a JSON object');
  const dataStart = 8 + n;
  const dataBytes = bytes.byteLength - dataStart;
  const out: SafetensorsFile = { tensors: {}, metadata: {} };
  const spans: [number, number, string][] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Object.values(v).some((x) => typeof x !== 'string')) throw bad('__metadata__ must map strings to strings');
      out.metadata = v as Record<string, string>;
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e?.dtype !== 'string' || !(e.dtype in DTYPES))
      throw bad(`tensor "${name}": unknown dtype ${JSON.stringify(e?.dtype)} (known: ${Object.keys(DTYPES).join(', ')})`);
    if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isInteger(d) || d < 0))
      throw bad(`tensor "${name}": shape ${JSON.stringify(e.shape)} is not a list of sizes`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((x) => Number.isInteger(x) && x >= 0) || off[0] > off[1] || off[1] > dataBytes)
      throw bad(`tensor "${name}": data_offsets ${JSON.stringify(off)} are not [begin, end] within the ${dataBytes} data bytes`);
    const dtype = e.dtype as SafeDType;
    const need = (e.shape as number[]).reduce((a, b) => a * b, 1) * DTYPES[dtype];
    if (off[1] - off[0] !== need) throw bad(`tensor "${name}": ${dtype} [${e.shape}] needs ${need} bytes, data_offsets span ${off[1] - off[0]}`);
    spans.push([off[0], off[1], name]);
    out.tensors[name] = { dtype, shape: e.shape as number[], data: bytes.slice(dataStart + off[0], dataStart + off[1]) };
  }
  spans.sort((a, b) => a[0] - b[0]);
  spans.forEach(([b, , name], i) => {
    if (i > 0 && b < spans[i - 1]![1]) throw bad(`tensor "${name}" overlaps tensor "${spans[i - 1]![2]}"`);
  });
  return out;
}

/** Writes atomically (a temporary name, then rename). */
export function writeSafetensorsFile(path: string, file: SafetensorsFile): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, encodeSafetensors(file.tensors, file.metadata));
  renameSync(tmp, path);
}

export function readSafetensorsFile(path: string): SafetensorsFile {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Fix: check the path.`);
  }
  return decodeSafetensors(bytes, path);
}

/** Reads tensors back from the GPU and saves them (f32 as F32, u32 as U32). */
export async function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  const out: Record<string, SafeTensor> = {};
  for (const [name, t] of Object.entries(tensors)) {
    const values = t.dtype === 'u32' ? await t.readU32() : await t.read();
    out[name] = { dtype: t.dtype === 'u32' ? 'U32' : 'F32', shape: [...t.shape], data: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  }
  writeSafetensorsFile(path, { tensors: out, metadata });
}

/** f32 values of a stored tensor: F32 exactly (bits kept), F16/BF16/F64/ints converted. */
export function toFloat32(t: SafeTensor, name = '?'): Float32Array {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const dv = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  if (t.dtype === 'F32') return new Float32Array(t.data.slice().buffer, 0, n);
  const f16 = (h: number) => {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    return e === 0 ? s * 2 ** -14 * (m / 1024) : e === 31 ? (m ? NaN : s * Infinity) : s * 2 ** (e - 15) * (1 + m / 1024);
  };
  const read: Partial<Record<SafeDType, (i: number) => number>> = {
    F16: (i) => f16(dv.getUint16(2 * i, true)),
    BF16: (i) => new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0]!,
    F64: (i) => dv.getFloat64(8 * i, true),
    I32: (i) => dv.getInt32(4 * i, true),
    U32: (i) => dv.getUint32(4 * i, true),
    I64: (i) => Number(dv.getBigInt64(8 * i, true)),
    I16: (i) => dv.getInt16(2 * i, true),
    U16: (i) => dv.getUint16(2 * i, true),
    I8: (i) => dv.getInt8(i),
    U8: (i) => dv.getUint8(i),
    BOOL: (i) => dv.getUint8(i),
  };
  const f = read[t.dtype];
  if (!f) throw new SafetensorsError(`tensor "${name}": cannot convert ${t.dtype} to f32`);
  return Float32Array.from({ length: n }, (_, i) => f(i));
}

/**
 * Tensors from a safetensors file (all of them, or the one named): F32 stays bit-exact, U32
 * becomes a u32 tensor, other dtypes are converted to f32 (the kernels compute in f32).
 */
export function fromSafetensors(path: string, opts?: { engine?: Engine }): Record<string, Tensor>;
export function fromSafetensors(path: string, name: string, opts?: { engine?: Engine }): Tensor;
export function fromSafetensors(path: string, a?: string | { engine?: Engine }, b?: { engine?: Engine }): Tensor | Record<string, Tensor> {
  const file = readSafetensorsFile(path);
  const opts = typeof a === 'object' ? a : (b ?? {});
  const make = (name: string, t: SafeTensor) => {
    const shape = t.shape.length ? t.shape : [];
    if (shape.some((d) => d === 0)) throw new SafetensorsError(`${path}: tensor "${name}" is empty ([${t.shape}]); empty tensors are not supported`);
    if (t.dtype === 'U32') return tensor(new Uint32Array(t.data.slice().buffer), shape, { dtype: 'u32', ...opts });
    return tensor(toFloat32(t, name), shape, opts);
  };
  if (typeof a === 'string') {
    const t = file.tensors[a];
    if (!t) throw new SafetensorsError(`${path}: no tensor named "${a}"; it has: ${Object.keys(file.tensors).join(', ')}`);
    return make(a, t);
  }
  return Object.fromEntries(Object.entries(file.tensors).map(([n, t]) => [n, make(n, t)]));
}

/** Saves a module's stateDict() (its parameter names are the keys). */
export async function saveModule(module: Module, path: string, metadata: Record<string, string> = {}): Promise<void> {
  await saveSafetensors(path, module.stateDict(), { format: 'pt', ...metadata });
}

/** Loads a module's tensors in place from a file saved by saveModule or by PyTorch/OpenCLIP. */
export function loadModule(module: Module, path: string, strict = true): void {
  loadModuleFrom(module, readSafetensorsFile(path), path, strict);
}

/** loadModule from a decoded file (decodeSafetensors: bytes fetched by a browser page, say); `where` names it in errors. */
export function loadModuleFrom(module: Module, file: SafetensorsFile, where: string, strict = true): void {
  const path = where;
  try {
    module.loadStateDict(
      Object.fromEntries(
        Object.entries(file.tensors).map(([n, t]) => [
          n,
          { shape: t.shape, data: t.dtype === 'U32' ? new Uint32Array(t.data.slice().buffer) : toFloat32(t, n) },
        ]),
      ),
      strict,
    );
  } catch (e) {
    throw new SafetensorsError(`${path}: ${(e as Error).message}. Fix: load a checkpoint of the same architecture, or pass strict = false.`);
  }
}

/**
 * Saves an optimiser's state, to resume a run exactly: the moments as F32 tensors
 * (`<param>.exp_avg`, `<param>.exp_avg_sq`) and, as JSON in the metadata (key `adamw`), the
 * hyper-parameters, t and each parameter's step. One file, so one atomic rename: a crash never
 * leaves moments and steps from different steps.
 */
export async function saveOptimizer(opt: AdamW, path: string, metadata: Record<string, string> = {}): Promise<void> {
  const { tensors, state } = opt.stateDict();
  await saveSafetensors(path, tensors, { ...metadata, adamw: JSON.stringify(state) });
}

/** Loads what saveOptimizer wrote into an optimiser over parameters of the same names. */
export function loadOptimizer(opt: AdamW, path: string): void {
  const file = readSafetensorsFile(path);
  let state: AdamWState;
  try {
    state = JSON.parse(file.metadata.adamw ?? 'null');
  } catch (e) {
    throw new SafetensorsError(`${path}: the "adamw" metadata is not valid JSON (${(e as Error).message}). Fix: load a file written by saveOptimizer.`);
  }
  if (!state) throw new SafetensorsError(`${path}: no "adamw" metadata; this is not an optimiser state. Fix: load a file written by saveOptimizer.`);
  try {
    opt.loadStateDict(Object.fromEntries(Object.entries(file.tensors).map(([n, t]) => [n, { shape: t.shape, data: toFloat32(t, n) }])), state);
  } catch (e) {
    throw new SafetensorsError(`${path}: ${(e as Error).message}. Fix: load the state of an optimiser over the same parameters.`);
  }
}
