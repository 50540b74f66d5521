import { describe, expect, it } from 'vitest';
import { reflectKernel, workgroupSizeOf } from '../src/reflect.js';
import { sizeClass } from '../src/pool.js';

const SRC = `
struct Params { m: u32, scale: f32, v: vec3<f32>, k: i32, w: vec2u }
override TILE: u32 = 4;
@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@compute @workgroup_size(8, TILE) fn main() { c[0] = a[0].x * params.scale; }
`;

describe('reflectKernel', () => {
  const info = reflectKernel('demo', 'kernels/demo.wgsl', SRC);

  it('places uniform fields by WGSL alignment rules, not by hand', () => {
    expect(info.uniform!.fields.map((f) => [f.name, f.offset, f.scalar, f.count])).toEqual([
      ['m', 0, 'u32', 1],
      ['scale', 4, 'f32', 1],
      ['v', 16, 'f32', 3], // vec3 aligns to 16
      ['k', 28, 'i32', 1], // and packs a scalar into its tail
      ['w', 32, 'u32', 2],
    ]);
    expect(info.uniform!.size).toBe(48);
  });

  it('derives each binding: kind, access, minimum size', () => {
    expect(info.bindings.map((b) => [b.name, b.binding, b.kind, b.access, b.minBytes])).toEqual([
      ['params', 0, 'uniform', 'read', 48], // struct size rounds up to its 16-byte alignment,
      ['a', 1, 'storage', 'read', 16],
      ['c', 2, 'storage', 'read_write', 4],
    ]);
  });

  it('resolves the workgroup size through override constants', () => {
    expect(info.overrides).toEqual([{ name: 'TILE', type: 'u32' }]);
    expect(workgroupSizeOf(info, {})).toEqual([8, 4, 1]);
    expect(workgroupSizeOf(info, { TILE: 16 })).toEqual([8, 16, 1]);
  });

  it('refuses two uniform variables', () => {
    const two = SRC.replace('@compute', '@group(0) @binding(3) var<uniform> other: Params;\n@compute').replace('params.scale', 'params.scale * other.scale');
    expect(() => reflectKernel('two', 'kernels/two.wgsl', two)).toThrow(/at most one var<uniform>/);
  });

  it('reflects a uniform array as a caller-bound window (ubo), beside the parameter struct', () => {
    const src = SRC.replace('@compute', '@group(0) @binding(3) var<uniform> table: array<vec4<f32>, 4096>;\n@compute').replace(
      'params.scale',
      'params.scale * table[params.m].x',
    );
    const info = reflectKernel('ubo', 'kernels/ubo.wgsl', src);
    expect(info.uniform!.binding.name).toBe('params');
    expect(info.bindings.find((b) => b.name === 'table')).toMatchObject({ kind: 'ubo', access: 'read', minBytes: 65536 });
  });

  it('reflects a texture_2d<f32> as a texture binding and refuses other textures', () => {
    const tex = (decl: string, use: string) =>
      SRC.replace('@compute', `@group(0) @binding(3) ${decl};\n@compute`).replace('a[0].x * params.scale', `a[0].x * ${use} * params.scale`);
    const info = reflectKernel('tex', 'kernels/tex.wgsl', tex('var t: texture_2d<f32>', 'textureLoad(t, vec2(0u), 0).x'));
    expect(info.bindings.map((b) => [b.name, b.kind, b.access])).toEqual([
      ['params', 'uniform', 'read'],
      ['a', 'storage', 'read'],
      ['c', 'storage', 'read_write'],
      ['t', 'texture', 'read'],
    ]);
    expect(() => reflectKernel('u', 'kernels/u.wgsl', tex('var t: texture_2d<u32>', 'f32(textureLoad(t, vec2(0u), 0).x)'))).toThrow(
      /kernels\/u\.wgsl: binding t is a texture_2d<u32>; the only texture kernels here read is texture_2d<f32>/,
    );
    expect(() =>
      reflectKernel(
        'st',
        'kernels/st.wgsl',
        tex('var st: texture_storage_2d<rgba32float, write>', '1.0').replace('c[0] =', 'textureStore(st, vec2(0u), vec4(1.0)); c[0] ='),
      ),
    ).toThrow(/binding st is a sampler or storage texture/);
  });
});

describe('sizeClass', () => {
  it('rounds to powers of two below 4 KiB and quarter steps above', () => {
    expect([1, 16, 17, 4096, 4097, 5120, 5121, 1 << 20].map(sizeClass)).toEqual([16, 16, 32, 4096, 5120, 5120, 6144, 1 << 20]);
    for (let n = 1; n < 1 << 22; n = Math.ceil(n * 1.37)) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      if (n > 4096) expect(c / n).toBeLessThanOrEqual(1.25);
    }
  });
});
