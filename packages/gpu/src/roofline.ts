/**
 * A roofline plot as SVG: arithmetic intensity (FLOPs per byte of compulsory traffic) against
 * GFLOP/s on log axes, under the adapter's two measured ceilings (its streaming bandwidth, a slope,
 * and its arithmetic peak, flat), one point per kernel and shape. A point's distance below the roof
 * above it is what that kernel leaves on the table; which roof it sits under says whether memory
 * or arithmetic bounds it.
 */

/**
 * The adapter's measured ceilings (`mode bench peak`), which rates are read against: the best f32
 * arithmetic rate, the best streaming bandwidth, and the fixed cost of one dispatch as the runtime
 * records it (null when not measured).
 */
export interface Roof {
  flops: number;
  bandwidth: number;
  dispatchSeconds: number | null;
  /** Where the numbers come from, as tables name it. */
  from: string;
}

export interface RooflinePoint {
  label: string;
  flops: number;
  bytes: number;
  seconds: number;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** What the roof allows at intensity `i` (FLOP/byte), in FLOP/s. */
export const attainable = (roof: Roof, i: number): number => Math.min(roof.flops, roof.bandwidth * i);

export function rooflineSvg(points: RooflinePoint[], roof: Roof, title: string): string {
  const pts = points.filter((p) => p.flops > 0 && p.bytes > 0 && p.seconds > 0).map((p) => ({ ...p, i: p.flops / p.bytes, rate: p.flops / p.seconds }));
  const ridge = roof.flops / roof.bandwidth;
  const pow2 = (x: number, up: boolean) => 2 ** (up ? Math.ceil(Math.log2(x)) : Math.floor(Math.log2(x)));
  const pow10 = (x: number, up: boolean) => 10 ** (up ? Math.ceil(Math.log10(x)) : Math.floor(Math.log10(x)));
  const [x0, x1] = [pow2(Math.min(ridge / 16, ...pts.map((p) => p.i)), false), pow2(Math.max(ridge * 16, ...pts.map((p) => p.i)), true)];
  const [y0, y1] = [pow10(Math.min(roof.bandwidth * x0, ...pts.map((p) => p.rate)), false), pow10(roof.flops * 1.5, true)];
  const [W, H, l, r, t, b] = [640, 360, 64, 20, 28, 44];
  const sx = (x: number) => l + ((Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0))) * (W - l - r);
  const sy = (y: number) => H - b - ((Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0))) * (H - t - b);
  const xTicks = Array.from({ length: Math.round(Math.log2(x1 / x0)) + 1 }, (_, k) => x0 * 2 ** k).filter((_, k, a) => a.length <= 12 || k % 2 === 0);
  const yTicks = Array.from({ length: Math.round(Math.log10(y1 / y0)) + 1 }, (_, k) => y0 * 10 ** k);
  const num = (v: number) => (v >= 1 ? String(Math.round(v)) : v.toPrecision(1));
  const gf = (v: number) => `${(v / 1e9).toPrecision(3)}`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" role="img" aria-label="${esc(title)}" font-family="sans-serif">`,
    `<text x="${l}" y="16" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${l}" y1="${H - b}" x2="${W - r}" y2="${H - b}" stroke="#333"/><line x1="${l}" y1="${t}" x2="${l}" y2="${H - b}" stroke="#333"/>`,
    ...xTicks.map((x) => `<text x="${sx(x).toFixed(1)}" y="${H - b + 15}" text-anchor="middle" font-size="10">${num(x)}</text>`),
    ...yTicks.map((y) => `<text x="${l - 6}" y="${(sy(y) + 4).toFixed(1)}" text-anchor="end" font-size="10">${num(y / 1e9)}</text>`),
    `<text x="${(l + W - r) / 2}" y="${H - 8}" text-anchor="middle" font-size="12">arithmetic intensity (FLOP per byte)</text>`,
    `<text x="14" y="${(t + H - b) / 2}" transform="rotate(-90 14 ${(t + H - b) / 2})" text-anchor="middle" font-size="12">GFLOP/s</text>`,
    // The roof: bandwidth × intensity up to the ridge, then the arithmetic peak.
    `<polyline class="roof" fill="none" stroke="#d62728" stroke-width="2" points="${[
      [x0, roof.bandwidth * x0],
      [ridge, roof.flops],
      [x1, roof.flops],
    ]
      .map(([x, y]) => `${sx(x!).toFixed(1)},${sy(y!).toFixed(1)}`)
      .join(' ')}"/>`,
    `<text x="${(W - r - 4).toFixed(1)}" y="${(sy(roof.flops) - 5).toFixed(1)}" text-anchor="end" font-size="11" fill="#d62728">${gf(roof.flops)} GFLOP/s</text>`,
    `<text x="${(sx(x0) + 6).toFixed(1)}" y="${(sy(roof.bandwidth * x0) - 6).toFixed(1)}" font-size="11" fill="#d62728">${gf(roof.bandwidth)} GB/s</text>`,
  ];
  for (const p of pts) {
    const [cx, cy] = [sx(p.i), sy(p.rate)];
    const share = p.rate / attainable(roof, p.i);
    parts.push(
      `<g class="point"><circle cx="${cx.toFixed(1)}" cy="${cy.toFixed(1)}" r="4" fill="#1f77b4"><title>${esc(p.label)}: ${gf(p.rate)} GFLOP/s at ${p.i.toPrecision(3)} FLOP/byte, ${(100 * share).toFixed(0)}% of the roof above it</title></circle>` +
        `<text x="${(cx + 6).toFixed(1)}" y="${(cy + 4).toFixed(1)}" font-size="10">${esc(p.label)}</text></g>`,
    );
  }
  if (!pts.length) parts.push(`<text x="${l + 10}" y="${t + 20}" font-size="12">no kernel declared both its FLOPs and its bytes</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}
