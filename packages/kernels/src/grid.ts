/** Workgroups for `n` items at `size` per workgroup, as a 2-D grid (x ≤ 65535) for large n. */
export function grid(n: number, size: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / size));
  const x = Math.min(groups, 65535);
  return [x, Math.ceil(groups / x)];
}
