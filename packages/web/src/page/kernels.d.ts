/** kernels/*.wgsl by name, inlined by bundle.ts's esbuild plugin. */
declare module 'mode:kernels' {
  const kernels: Record<string, string>;
  export default kernels;
}
