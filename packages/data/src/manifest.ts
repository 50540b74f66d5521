/**
 * Users' own data: a JSONL manifest, one record a line —
 *   {"image": "img/cat.png", "text": "a cat on a mat"}       (image-text pairs)
 *   {"image": "img/cat.png", "label": "cat"}                 (classification)
 * Image paths are relative to the manifest's folder (or absolute). PNG and SVG are read; SVG
 * is rendered with resvg. Other fields of a pair's record go to its `.json`.
 */
import { readFileSync } from 'node:fs';
import { dirname, extname, isAbsolute, resolve } from 'node:path';
import { BadRecords, DataError, messageOf, report } from './errors.js';
import { decodeUtf8 } from './records.js';
import { decodePng, encodePng } from './png.js';
import { safeKey } from './shards.js';
import { DatasetBuilder, type DatasetInfo, type LabelledSample, type PairSample } from './dataset.js';
import { renderSvg } from './sources/render.js';

export interface ManifestRecord {
  /** 1-based line number. */
  line: number;
  /** Absolute image path. */
  image: string;
  text?: string;
  label?: string | number;
  extra: Record<string, unknown>;
}

/** Reads a JSONL manifest; each bad line is a DataError naming the manifest and the line. */
export function* readManifest(path: string, bad?: BadRecords): Generator<ManifestRecord> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataError(path, undefined, `cannot read manifest (${messageOf(e)})`);
  }
  const base = dirname(path);
  let start = 0;
  for (let line = 1; start < bytes.length; line++) {
    let end = bytes.indexOf(10, start);
    if (end < 0) end = bytes.length;
    const raw = bytes.subarray(start, end);
    start = end + 1;
    try {
      const text = decodeUtf8(raw, path, `line ${line}`, 'the line').trim();
      if (!text) continue;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        throw new DataError(path, `line ${line}`, `not valid JSON (${messageOf(e)})`);
      }
      if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new DataError(path, `line ${line}`, 'not a JSON object');
      const { image, text: caption, label, ...extra } = obj as Record<string, unknown>;
      if (typeof image !== 'string' || !image) throw new DataError(path, `line ${line}`, 'missing "image" (a path)');
      if (caption !== undefined && typeof caption !== 'string') throw new DataError(path, `line ${line}`, '"text" must be a string');
      if (label !== undefined && typeof label !== 'string' && typeof label !== 'number')
        throw new DataError(path, `line ${line}`, '"label" must be a string or a number');
      if (caption === undefined && label === undefined)
        throw new DataError(path, `line ${line}`, 'missing caption (no "text"; or give a "label" for a classification set)');
      if (typeof caption === 'string' && !caption.trim()) throw new DataError(path, `line ${line}`, 'missing caption ("text" is empty)');
      const rec: ManifestRecord = { line, image: isAbsolute(image) ? image : resolve(base, image), extra };
      if (caption !== undefined) rec.text = caption;
      if (label !== undefined) rec.label = label;
      yield rec;
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      report(e, bad);
    }
  }
}

/** The image of a manifest record as PNG bytes: PNGs are checked by decoding, SVGs rendered at `svgSize`. */
export function loadImage(rec: ManifestRecord, manifest: string, svgSize = 128): Uint8Array {
  const where = { file: manifest, record: `line ${rec.line} (${rec.image})` };
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(rec.image);
  } catch (e) {
    throw new DataError(where.file, where.record, `cannot read image (${messageOf(e)})`);
  }
  const ext = extname(rec.image).toLowerCase();
  if (ext === '.svg') {
    try {
      return encodePng(renderSvg(decodeUtf8(bytes, where.file, where.record, 'SVG'), svgSize), svgSize, svgSize, 3);
    } catch (e) {
      if (e instanceof DataError) throw e;
      throw new DataError(where.file, where.record, `SVG does not render (${messageOf(e)})`);
    }
  }
  decodePng(bytes, where); // throws "corrupt PNG" naming the manifest line
  return bytes;
}

export interface ImportOptions {
  /** Output data set folder. */
  out: string;
  name?: string;
  bad?: BadRecords;
  /** Classification: class names in label order (default: sorted distinct labels), and prompt templates. */
  classes?: string[];
  templates?: string[];
  split?: string;
  samplesPerShard?: number;
  onSample?: () => void;
}

/** Writes a manifest's records as a data set: pairs when the records have "text", else classification. */
export async function importManifest(manifest: string, options: ImportOptions): Promise<DatasetInfo> {
  const records = [...readManifest(manifest, options.bad)];
  const pairs = records.some((r) => r.text !== undefined);
  const name = options.name ?? safeKey(manifest.replace(/^.*\//, '').replace(/\.jsonl?$/, ''));
  const builder = new DatasetBuilder(
    options.out,
    { name, kind: pairs ? 'pairs' : 'classification', source: manifest },
    { samplesPerShard: options.samplesPerShard ?? 1000, gzip: !pairs },
  );
  const bad = options.bad;
  const keyOf = (r: ManifestRecord) => `${name}-${String(r.line).padStart(6, '0')}`;
  try {
    if (pairs) {
      const samples = function* (): Generator<PairSample> {
        for (const r of records) {
          try {
            if (r.text === undefined) throw new DataError(manifest, `line ${r.line}`, 'missing caption (no "text")');
            yield { key: keyOf(r), png: loadImage(r, manifest), text: r.text, json: { image: r.image, ...r.extra } };
          } catch (e) {
            if (!(e instanceof DataError)) throw e;
            report(e, bad);
          }
        }
      };
      await builder.writeSplit(options.split ?? 'train', samples(), options.onSample);
      return builder.finish();
    }
    const labels = records.map((r) => String(r.label));
    const classes = options.classes ?? [...new Set(labels)].sort();
    const index = new Map(classes.map((c, i) => [c, i]));
    const samples = function* (): Generator<LabelledSample> {
      for (const r of records) {
        try {
          const label = typeof r.label === 'number' ? r.label : index.get(String(r.label));
          if (label === undefined || !Number.isInteger(label) || label < 0 || label >= classes.length)
            throw new DataError(manifest, `line ${r.line}`, `label ${JSON.stringify(r.label)} is not one of the ${classes.length} classes`);
          yield { key: keyOf(r), png: loadImage(r, manifest), label };
        } catch (e) {
          if (!(e instanceof DataError)) throw e;
          report(e, bad);
        }
      }
    };
    await builder.writeSplit(options.split ?? 'test', samples(), options.onSample);
    return builder.finish({ classes, templates: options.templates ?? ['a photo of a {}.'] });
  } catch (e) {
    builder.abort();
    throw e;
  }
}
