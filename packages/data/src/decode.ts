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
import { coverGeometry, resizeBicubic, type Window } from './image.js';
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

/** What a decode needs to know before the pixels: the stored size, the EXIF orientation, and whether the pixels are plain 8-bit RGB. */
export interface ImageHeader {
  width: number;
  height: number;
  /** EXIF orientation, 1–8 (1 when absent or invalid). */
  orientation: number;
  /** 8-bit sRGB without alpha: decodes straight to RGB. */
  plainRgb: boolean;
}

/**
 * A JPEG's header read in JavaScript: its frame's size and component count, and the EXIF
 * orientation from the first `Exif` APP1 segment; undefined when `bytes` is not a JPEG or its
 * header cannot be walked (then libvips reads it). Saves the decode a round trip to libvips'
 * threads: measured 0.2–0.3 ms of CPU per 256-px image, a twentieth of the whole training transform.
 */
export function jpegHeader(bytes: Uint8Array): ImageHeader | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  const u16 = (at: number, little = false) => (little ? bytes[at]! | (bytes[at + 1]! << 8) : (bytes[at]! << 8) | bytes[at + 1]!);
  let orientation = 1;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // no length
      continue;
    }
    const length = u16(at + 2);
    const body = at + 4;
    if (length < 2 || body + length - 2 > bytes.length) return undefined;
    if (marker === 0xe1 && orientation === 1 && length >= 16 && String.fromCharCode(...bytes.subarray(body, body + 6)) === 'Exif\0\0')
      orientation = exifOrientation(bytes, body + 6, body + length - 2, u16);
    // SOF0–3, 5–7, 9–11, 13–15: precision, height, width, components.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      const [height, width, components] = [u16(body + 1), u16(body + 3), bytes[body + 5]!];
      if (!width || !height) return undefined;
      return { width, height, orientation, plainRgb: bytes[body] === 8 && components === 3 };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before a frame header
    at = body + length - 2;
  }
  return undefined;
}

/** The orientation tag (0x0112) of IFD0 in the TIFF block at [start, end); 1 when absent or out of range. */
function exifOrientation(bytes: Uint8Array, start: number, end: number, u16: (at: number, little?: boolean) => number): number {
  const little = bytes[start] === 0x49; // "II"
  const u32 = (at: number) => (little ? u16(at, true) + u16(at + 2, true) * 65536 : u16(at) * 65536 + u16(at + 2));
  if (start + 8 > end) return 1;
  const ifd = start + u32(start + 4);
  if (ifd + 2 > end) return 1;
  const count = u16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > end) return 1;
    if (u16(entry, little) === 0x0112) {
      const v = u16(entry + 8, little);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

/** What a fit leaves to JavaScript: PIL's bicubic resize of the decoded pixels to `outW`×`outH`, keeping `window` (see `resizeBicubic`). */
export interface PendingResize {
  outW: number;
  outH: number;
  window: Window;
}

/**
 * Decodes `bytes` and does what libvips does best of `fit`, leaving the rest as a `PendingResize`.
 * Shrinking (the usual case: 256-px shards to 224) runs in libvips, on its own threads, within 2
 * levels of PIL (JPEGs shrink on load where the reduction allows). Enlarging, libvips
 * interpolates differently (3–13 levels), so the decoded (and cropped) pixels are left to PIL's
 * own algorithm in JavaScript, exact (`resizeBicubic`; the batch builder's `resizeToCHW` writes
 * them straight into the model's input). Measured on 256-px JPEGs: PIL's algorithm in JavaScript
 * costs 1.7 ms an image on the loader's thread, libvips' resize as much CPU but on its own threads,
 * which is what lets one loader worker keep up.
 */
export async function decodeRegion(
  bytes: Uint8Array,
  where: { file: string; record: string | number } = WHERE,
  fit: Fit = { kind: 'native' },
  o: { rgb?: boolean } = {},
): Promise<{ image: RgbaImage; resize: PendingResize | null }> {
  try {
    // failOn 'warning': libjpeg's "premature end of data" is a warning, and a truncated file must not pass as a grey-bottomed image.
    const open = () => sharp(bytes, { failOn: 'warning', limitInputPixels: 2 ** 28, sequentialRead: true }).autoOrient();
    const head = jpegHeader(bytes) ?? (await libvipsHeader(open));
    const rgb = !!o.rgb && head.plainRgb;
    const pixels = async (img: Sharp): Promise<RgbaImage> => {
      const { data, info } = await (rgb ? img : img.toColourspace('srgb').ensureAlpha()).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.channels !== (rgb ? 3 : 4)) throw new Error(`${info.channels} channels after conversion to ${rgb ? 'RGB' : 'RGBA'}`);
      const image: RgbaImage = { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
      return rgb ? { ...image, channels: 3 } : image;
    };
    const done = async (img: Sharp) => ({ image: await pixels(img), resize: null });
    if (fit.kind === 'native') return await done(open());
    if (fit.kind === 'shorter') return await done(open().resize(fit.max, fit.max, { fit: 'outside', withoutEnlargement: true, kernel: 'cubic' }));
    // The size as displayed: EXIF orientations 5–8 swap width and height.
    const [width, height] = head.orientation >= 5 ? [head.height, head.width] : [head.width, head.height];
    const S = fit.size;
    if (fit.kind === 'crop') {
      const b = fit.box(width, height);
      const region = open().extract({ left: b.x, top: b.y, width: b.w, height: b.h });
      if (S <= b.w && S <= b.h) return await done(region.resize(S, S, { fit: 'fill', kernel: 'cubic' }));
      return { image: await pixels(region), resize: { outW: S, outH: S, window: { x: 0, y: 0, w: S, h: S } } };
    }
    const { w, h, left, top } = coverGeometry(width, height, S);
    if (w <= width && h <= height) return await done(open().resize(w, h, { fit: 'fill', kernel: 'cubic' }).extract({ left, top, width: S, height: S }));
    return { image: await pixels(open()), resize: { outW: w, outH: h, window: { x: left, y: top, w: S, h: S } } };
  } catch (e) {
    throw new DataError(where.file, where.record, `corrupt or unreadable image (${messageOf(e)})`, { cause: e, kind: 'corrupt image' });
  }
}

/**
 * Decodes `bytes` to 8-bit RGBA (sRGB), fitted as `fit` asks; with `rgb`, an 8-bit sRGB image
 * without alpha (most JPEGs) comes out as RGB (`channels: 3`), skipping the conversion to RGBA (a
 * quarter of the decode's time on 256-px JPEGs). A corrupt, truncated or unsupported file throws
 * a `DataError` naming `where.file` and `where.record` (kind `corrupt image`).
 */
export async function decodeImage(
  bytes: Uint8Array,
  where: { file: string; record: string | number } = WHERE,
  fit: Fit = { kind: 'native' },
  o: { rgb?: boolean } = {},
): Promise<RgbaImage> {
  const { image, resize } = await decodeRegion(bytes, where, fit, o);
  return resize ? resizeBicubic(image, resize.outW, resize.outH, resize.window) : image;
}

/** The header as libvips reads it (any format). */
async function libvipsHeader(open: () => Sharp): Promise<ImageHeader> {
  const meta = await open().metadata();
  if (!meta.width || !meta.height) throw new Error('no image size in the header');
  const plainRgb = meta.space === 'srgb' && meta.channels === 3 && meta.depth === 'uchar';
  return { width: meta.width, height: meta.height, orientation: meta.orientation ?? 1, plainRgb };
}
