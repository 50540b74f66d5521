/**
 * The autotuner's key: a shape class, not a shape. Dimensions round up to powers of two so that
 * one measurement serves every shape in its class; layout and dtype are part of the key because
 * they change which variants apply and how fast each is.
 */
export function pow2Class(n: number): number {
  return n <= 1 ? 1 : 2 ** Math.ceil(Math.log2(n));
}

export function tuneKey(family: string, dims: Record<string, number>, layout = '', dtype = 'f32'): string {
  const shape = Object.entries(dims)
    .map(([k, v]) => `${k}${pow2Class(v)}`)
    .join('.');
  return [family, shape, layout, dtype].filter(Boolean).join('|');
}
