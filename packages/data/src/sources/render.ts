/** SVG rasterisation with resvg (npm `@resvg/resvg-js`, a native binary per platform). */
import { Resvg } from '@resvg/resvg-js';

/**
 * Adds the SVG namespace to a root `<svg>` that lacks one (resvg rejects such files; about 1 in
 * 5 Openclipart files), and drops the XML declaration (one file says `version="1"`, which resvg's
 * parser refuses; the declaration carries nothing resvg needs).
 */
export function fixSvgNamespace(input: string): string {
  const svg = input.replace(/^\uFEFF?\s*<\?xml\b[^>]*\?>/, '');
  const root = /<svg(?=[\s>/])[^>]*>/.exec(svg);
  if (!root || /\sxmlns\s*=/.test(root[0])) return svg;
  return svg.slice(0, root.index + 4) + ' xmlns="http://www.w3.org/2000/svg"' + svg.slice(root.index + 4);
}

/**
 * Renders `svg` to fit within `size`×`size`, centred on white, as RGB bytes. System fonts are
 * not loaded, so the output is the same on every machine (text elements are not drawn).
 */
export function renderSvg(svg: string, size: number): Uint8Array {
  const fixed = fixSvgNamespace(svg);
  const probe = new Resvg(fixed, { font: { loadSystemFonts: false } });
  const { width, height } = probe;
  if (!(width > 0 && height > 0)) throw new Error(`SVG has no size (${width}×${height})`);
  const fitTo = width >= height ? ({ mode: 'width', value: size } as const) : ({ mode: 'height', value: size } as const);
  const rendered = new Resvg(fixed, { fitTo, background: 'white', font: { loadSystemFonts: false } }).render();
  const w = Math.min(size, rendered.width);
  const h = Math.min(size, rendered.height);
  const px = rendered.pixels;
  const out = new Uint8Array(size * size * 3).fill(255);
  const ox = (size - w) >> 1;
  const oy = (size - h) >> 1;
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const s = (y * rendered.width + x) * 4;
      const d = ((oy + y) * size + ox + x) * 3;
      out[d] = px[s]!;
      out[d + 1] = px[s + 1]!;
      out[d + 2] = px[s + 2]!;
    }
  return out;
}

/** True when every pixel has the same value: the SVG drew nothing visible. */
export function isBlank(rgb: Uint8Array): boolean {
  for (let i = 3; i < rgb.length; i++) if (rgb[i] !== rgb[i % 3]) return false;
  return true;
}
