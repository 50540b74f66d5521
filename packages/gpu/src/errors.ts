/** Every error the runtime raises names what failed and, where one exists, the fix. */
export class GpuError extends Error {
  override name = 'GpuError';
}

/** No adapter could be opened: the message says why and which command fixes it. */
export class NoAdapterError extends GpuError {
  override name = 'NoAdapterError';
}

/** WGSL that did not compile; `message` lists `kernels/x.wgsl:LINE:COL message` lines. */
export class KernelCompileError extends GpuError {
  override name = 'KernelCompileError';
  constructor(
    message: string,
    readonly diagnostics: { file: string; line: number; column: number; severity: 'error' | 'warning' | 'info'; message: string }[],
  ) {
    super(message);
  }
}

/** A dispatch whose buffers or uniforms do not match what the kernel declares. */
export class BindingError extends GpuError {
  override name = 'BindingError';
}

/** The device was lost (destroyed, driver crash, out of memory); no further work can run. */
export class DeviceLostError extends GpuError {
  override name = 'DeviceLostError';
}
