import { ResourceType, WgslReflect, type VariableInfo } from 'wgsl_reflect/wgsl_reflect.module.js';
import { GpuError } from './errors.js';

/**
 * One `var<storage|uniform>` or `texture_2d<f32>` the kernel declares, as reflection reads it.
 * 'uniform' is the kernel's parameter struct (the runtime fills it); 'ubo' is a `var<uniform>`
 * array the caller binds like a storage buffer (a window of at most maxUniformBufferBindingSize).
 */
export interface BindingInfo {
  name: string;
  group: number;
  binding: number;
  /** `texture`: a `texture_2d<f32>` read with textureLoad (no sampler). */
  kind: 'uniform' | 'ubo' | 'storage' | 'texture';
  access: 'read' | 'read_write';
  /** Smallest buffer that can back it: one element of a runtime-sized array, else the type's size. */
  minBytes: number;
}

/** A member of the kernel's uniform struct, placed where WGSL's layout rules put it. */
export interface UniformField {
  name: string;
  /** WGSL type name: `u32`, `i32`, `f32`, `f16` or a vector of them (`vec4f`, `vec2u`, …). */
  type: string;
  scalar: 'u32' | 'i32' | 'f32' | 'f16';
  offset: number;
  count: number;
}

export interface OverrideDecl {
  name: string;
  type: string;
}

export interface KernelInfo {
  name: string;
  /** Path shown in messages, e.g. `kernels/matmul.wgsl`. */
  file: string;
  source: string;
  entryPoint: string;
  /** `@workgroup_size` arguments as written: numbers or override names. */
  workgroupSizeArgs: string[];
  /** Workgroup size with the overrides' default values. */
  defaultWorkgroupSize: [number, number, number];
  bindings: BindingInfo[];
  /** The kernel's uniform struct (at most one `var<uniform>`), with its byte size. */
  uniform: { binding: BindingInfo; size: number; fields: UniformField[] } | null;
  overrides: OverrideDecl[];
}

const SUFFIX = { f: 'f32', u: 'u32', i: 'i32', h: 'f16' } as const;

/** `f32` → (f32, 1); `vec3i` → (i32, 3); anything else (arrays, matrices, structs) → null. */
function scalarType(typeName: string): { scalar: UniformField['scalar']; count: number } | null {
  if (typeName === 'u32' || typeName === 'i32' || typeName === 'f32' || typeName === 'f16') return { scalar: typeName, count: 1 };
  const vec = typeName.match(/^vec([234])([fuih])$/);
  return vec ? { scalar: SUFFIX[vec[2] as keyof typeof SUFFIX], count: Number(vec[1]) } : null;
}

/** Reads a kernel's interface from its WGSL: bindings, uniform layout, overrides, workgroup size. */
export function reflectKernel(name: string, file: string, source: string): KernelInfo {
  const reflect = new WgslReflect(source);
  const entries = reflect.entry.compute;
  if (entries.length !== 1) {
    throw new GpuError(`${file}: expected exactly one @compute entry point, found ${entries.length}`);
  }
  const entry = entries[0]!;
  const bindings = entry.resources.map((v) => bindingOf(file, v));
  bindings.sort((a, b) => a.group - b.group || a.binding - b.binding);

  const uniforms = entry.resources.filter((v) => v.resourceType === ResourceType.Uniform && !v.type.isArray);
  if (uniforms.length > 1) {
    throw new GpuError(
      `${file}: at most one var<uniform> struct per kernel (found ${uniforms.map((u) => u.name).join(', ')}); put all parameters in one struct`,
    );
  }
  let uniform: KernelInfo['uniform'] = null;
  if (uniforms.length === 1) {
    const u = uniforms[0]!;
    const members = u.members;
    if (!members) throw new GpuError(`${file}: var<uniform> ${u.name} must be a struct`);
    const fields = members.map((m): UniformField => {
      const type = m.type.getTypeName();
      const st = scalarType(type);
      if (!st) throw new GpuError(`${file}: uniform field ${u.name}.${m.name} has type ${type}; only scalars and vectors of u32/i32/f32/f16 are supported`);
      return { name: m.name, type, ...st, offset: m.offset };
    });
    uniform = { binding: bindings.find((b) => b.name === u.name)!, size: Math.ceil(u.size / 16) * 16, fields };
  }

  const wgAttr = entry.attributes?.find((a) => a.name === 'workgroup_size');
  const wgArgs = wgAttr ? (Array.isArray(wgAttr.value) ? wgAttr.value : [wgAttr.value ?? '1']).map(String) : ['1'];
  const ws = entry.workgroupSize ?? [1, 1, 1];
  return {
    name,
    file,
    source,
    entryPoint: entry.name,
    workgroupSizeArgs: wgArgs,
    defaultWorkgroupSize: [ws[0] ?? 1, ws[1] ?? 1, ws[2] ?? 1],
    bindings,
    uniform,
    overrides: reflect.overrides.map((o) => ({ name: o.name, type: o.type?.name ?? 'unknown' })),
  };
}

function bindingOf(file: string, v: VariableInfo): BindingInfo {
  if (v.resourceType === ResourceType.Texture) {
    const type = v.type.getTypeName();
    if (!/^texture_2d<f32>$/.test(type.replace(/\s/g, ''))) {
      throw new GpuError(`${file}: binding ${v.name} is a ${type}; the only texture kernels here read is texture_2d<f32> (with textureLoad)`);
    }
    return { name: v.name, group: v.group, binding: v.binding, kind: 'texture', access: 'read', minBytes: 0 };
  }
  if (v.resourceType !== ResourceType.Uniform && v.resourceType !== ResourceType.Storage) {
    throw new GpuError(`${file}: binding ${v.name} is a sampler or storage texture; compute kernels here use buffers and texture_2d<f32> only`);
  }
  // A uniform array is data the caller binds (uniform loads with per-lane addresses are cheap
  // gathers on lavapipe, unlike storage loads); the parameter struct is the runtime's.
  const kind = v.resourceType === ResourceType.Uniform ? (v.type.isArray ? 'ubo' : 'uniform') : 'storage';
  // A runtime-sized array reports size 0: one element is the least that can back it.
  const minBytes = v.type.isArray && v.count === 0 ? v.stride : v.size;
  return { name: v.name, group: v.group, binding: v.binding, kind, access: v.access === 'read_write' ? 'read_write' : 'read', minBytes };
}

/** The workgroup size a pipeline with these override values runs with. */
export function workgroupSizeOf(info: KernelInfo, overrides: Record<string, number | boolean>): [number, number, number] {
  const size = [...info.defaultWorkgroupSize] as [number, number, number];
  info.workgroupSizeArgs.forEach((arg, i) => {
    const v = overrides[arg];
    if (v !== undefined) size[i] = Number(v);
  });
  return size;
}
