/**
 * Image decoding for every format a user's shards hold (JPEG, PNG, WebP, and what libvips gives
 * for free: AVIF, TIFF, GIF's first frame) with sharp. EXIF orientation is applied; CMYK, grey,
 * 16-bit and palette images come out as 8-bit sRGB with alpha (compositing over the background
 * stays in `toFloat`, as for PNGs before). Crop and resize happen inside libvips where a caller
 * asks for them (`fit`), so JavaScript touches only pixels of the output size; libvips shrinks
 * JPEGs on load when the reduction allows it.
 *
 * Node only: the browser page decodes with pngjs or the browser's own decoder.
 */
import sharp, { type Sharp } from 'sharp';
import { DataError, messageOf } from './errors.js';
import { coverGeometry, cropRgba, resizeBicubic } from './image.js';
import type { RgbaImage } from './png.js';

/** Image members in the order a sample's image is chosen (webdataset's `jpg;png;jpeg;webp`, then what libvips also reads). */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'avif', 'tif', 'tiff', 'gif'] as const;

/** A sample's image member: the first of IMAGE_EXTENSIONS present (extensions compared in any case). */
export function imageMember(files: Record<string, Uint8Array>): { ext: string; bytes: Uint8Array } | undefined {
  const lower = new Map(Object.keys(files).map((k) => [k.toLowerCase(), k]));
  for (const ext of IMAGE_EXTENSIONS) {
    const k = lower.get(ext);
    if (k !== undefined) return { ext: k, bytes: files[k]! };
  }
  return undefined;
}

/** A box in source pixels (after EXIF orientation), integer as torchvision's crops are. */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/**
 * What libvips does before handing pixels over:
 * - `native`: nothing (full size);
 * - `cover`: CLIP's evaluation transform, shorter side to `size` (bicubic), centre crop;
 * - `crop`: the box `box(width, height)` (chosen once the oriented size is known), resized to `size`² (bicubic);
 * - `shorter`: shrink (bicubic) so the shorter side is at most `max`; never enlarges.
 */
export type Fit =
  | { kind: 'native' }
  | { kind: 'cover'; size: number }
  | { kind: 'crop'; size: number; box: (width: number, height: number) => Box }
  | { kind: 'shorter'; max: number };

const WHERE = { file: '<buffer>', record: 0 as string | number };

/**
 * Decodes `bytes` to 8-bit RGBA (sRGB); with `rgb`, an 8-bit sRGB image without alpha (most JPEGs)
 * comes out as RGB (`channels: 3`), skipping the conversion to RGBA (a quarter of the decode's
 * time on 256-px JPEGs). A corrupt, truncated or unsupported file throws a `DataError` naming
 * `where.file` and `where.record` (kind `corrupt image`).
 */
export async function decodeImage(
  bytes: Uint8Array,
  where: { file: string; record: string | number } = WHERE,
  fit: Fit = { kind: 'native' },
  o: { rgb?: boolean } = {},
): Promise<RgbaImage> {
  try {
    // failOn 'warning': libjpeg's "premature end of data" is a warning, and a truncated file must not pass as a grey-bottomed image.
    const open = () => sharp(bytes, { failOn: 'warning', limitInputPixels: 2 ** 28, sequentialRead: true }).autoOrient();
    const meta = await open().metadata(); // the header alone
    if (!meta.width || !meta.height) throw new Error('no image size in the header');
    const plainRgb = o.rgb && meta.space === 'srgb' && meta.channels === 3 && meta.depth === 'uchar';
    const pixels = async (img: Sharp, rgb = plainRgb): Promise<RgbaImage> => {
      const { data, info } = await (rgb ? img : img.toColourspace('srgb').ensureAlpha()).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.channels !== (rgb ? 3 : 4)) throw new Error(`${info.channels} channels after conversion to ${rgb ? 'RGB' : 'RGBA'}`);
      const image: RgbaImage = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
      return rgb ? { ...image, channels: 3 } : image;
    };
    if (fit.kind === 'native') return await pixels(open());
    if (fit.kind === 'shorter') return await pixels(open().resize(fit.max, fit.max, { fit: 'outside', withoutEnlargement: true, kernel: 'cubic' }));
    // Shrinking, libvips' bicubic is PIL's (measured: under 0.1 level apart on average); enlarging, it
    // interpolates differently (several levels), so an image smaller than the output is decoded
    // as it is and enlarged by PIL's own algorithm (`resizeBicubic`, RGBA): few pixels either way.
    // The size as displayed: EXIF orientations 5–8 swap width and height.
    const [width, height] = (meta.orientation ?? 1) >= 5 ? [meta.height, meta.width] : [meta.width, meta.height];
    const S = fit.size;
    if (fit.kind === 'crop') {
      const b = fit.box(width, height);
      const region = open().extract({ left: b.x, top: b.y, width: b.w, height: b.h });
      if (S <= b.w && S <= b.h) return await pixels(region.resize(S, S, { fit: 'fill', kernel: 'cubic' }));
      return resizeBicubic(await pixels(region, false), S, S);
    }
    const { w, h, left, top } = coverGeometry(width, height, S);
    if (w <= width && h <= height) return await pixels(open().resize(w, h, { fit: 'fill', kernel: 'cubic' }).extract({ left, top, width: S, height: S }));
    return cropRgba(resizeBicubic(await pixels(open(), false), w, h), left, top, S, S);
  } catch (e) {
    throw new DataError(where.file, where.record, `corrupt or unreadable image (${messageOf(e)})`, { cause: e, kind: 'corrupt image' });
  }
}
