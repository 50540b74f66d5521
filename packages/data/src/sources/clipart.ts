/**
 * Public-domain clip art from Debian's `openclipart-svg` (/usr/share/openclipart/svg), captioned
 * from each SVG's Dublin Core metadata: `dc:title`, `dc:description`, `dc:subject` keywords.
 * Collection boilerplate titles ("Part of the Flat Icon Collection", "gramastar") are replaced by
 * words from the file name; a caption repeated more than `maxPerCaption` times is thinned out
 * (identical captions in one batch are false negatives for the contrastive loss).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BadRecords, DataError, messageOf, report } from '../errors.js';
import { decodeUtf8 } from '../records.js';
import { encodePng } from '../png.js';
import { safeKey } from '../shards.js';
import type { PairSample } from '../dataset.js';
import { OPENCLIPART_DIR } from './paths.js';
import { isBlank, renderSvg } from './render.js';

export interface ClipartMeta {
  title: string;
  description: string;
  keywords: string[];
}

export interface ClipartEntry extends ClipartMeta {
  key: string;
  file: string;
  category: string;
  caption: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
export const decodeXml = (s: string): string =>
  s
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, '$1')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (m, e: string) =>
      e[0] === '#' ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1))) : (ENTITIES[e] ?? m),
    )
    .replace(/\s+/g, ' ')
    .trim();

/** The work's own title, description and keywords (not the creator's or publisher's `dc:title`). */
export function clipartMeta(svg: string): ClipartMeta {
  const work = /<cc:Work\b[^>]*>([\s\S]*?)<\/cc:Work>/.exec(svg)?.[1] ?? /<metadata\b[^>]*>([\s\S]*?)<\/metadata>/.exec(svg)?.[1] ?? '';
  const own = work.replace(/<cc:Agent\b[\s\S]*?<\/cc:Agent>/g, '');
  const field = (name: string) => decodeXml(new RegExp(`<dc:${name}\\b[^>]*>([\\s\\S]*?)</dc:${name}>`).exec(own)?.[1] ?? '');
  const subject = /<dc:subject\b[^>]*>([\s\S]*?)<\/dc:subject>/.exec(own)?.[1] ?? '';
  const keywords = [...subject.matchAll(/<rdf:li\b[^>]*>([\s\S]*?)<\/rdf:li>/g)].map((m) => decodeXml(m[1]!));
  return { title: field('title'), description: field('description'), keywords };
}

/** Keywords that say nothing about the picture. */
const NOISE = new Set([
  '',
  'hash',
  'unsorted',
  'mapsym',
  'lemon_theme_icon',
  'icon',
  'icons',
  'theme',
  'clip art',
  'clipart',
  'image',
  'svg',
  'media',
  'png',
  'public domain',
]);

/** "folder_outbox" / "star_49pt05step" / "home13" → "folder outbox" / "star" / "home". */
export function fileWords(file: string): string {
  const base = file.replace(/^.*\//, '').replace(/\.svg$/i, '');
  return base
    .split(/[_\-.\s]+/)
    .map((w) => w.replace(/\d+$/, ''))
    .filter((w) => w.length > 1 && !/\d/.test(w))
    .join(' ')
    .toLowerCase();
}

const BOILERPLATE = /collection|theme|clipart by|various|symbol_signs|^card$|^etiquette icons$|^gramastar$|road signs/i;
const URL = /\b(?:https?:\/\/|www\.)\S+/gi;

/** Title. Description. Keywords. — with boilerplate titles replaced by the file name's words. */
export function clipartCaption(meta: ClipartMeta, file: string, boilerplateTitle: boolean): string {
  const title = boilerplateTitle || !meta.title ? fileWords(file) || meta.title : meta.title;
  let description = meta.description.replace(URL, '').replace(/\s+/g, ' ').trim();
  if (/^(eps converted from|uk roadsigns)$/i.test(description) || description.toLowerCase() === title.toLowerCase()) description = '';
  if (description.length > 200) description = description.slice(0, 200).replace(/\s+\S*$/, '') + '…';
  const keywords = [...new Set(meta.keywords.map((k) => k.replace(/_/g, ' ').toLowerCase().trim()))].filter(
    (k) => !NOISE.has(k) && k !== title.toLowerCase() && k.length < 40,
  );
  const parts = [title, description, keywords.join(', ')].map((p) => p.trim().replace(/[.\s]+$/, '')).filter(Boolean);
  return parts.length ? parts.join('. ') + '.' : '';
}

/** Every `.svg` below `root` (symbolic links skipped: the package links some files into two categories). */
export function listSvgs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, d.name);
      if (d.isDirectory()) walk(p);
      else if (d.isFile() && d.name.toLowerCase().endsWith('.svg')) out.push(p);
    }
  };
  walk(root);
  return out;
}

export interface ScanOptions {
  root?: string;
  files?: string[];
  maxPerCaption?: number;
  bad?: BadRecords;
}

/** Reads every SVG's metadata and builds captions (no rendering): entries, and how many were left out and why. */
export function scanClipart(options: ScanOptions = {}): { entries: ClipartEntry[]; skipped: Record<string, number> } {
  const root = options.root ?? OPENCLIPART_DIR;
  const files = options.files ?? listSvgs(root);
  const maxPer = options.maxPerCaption ?? 10;
  const metas: { file: string; meta: ClipartMeta }[] = [];
  for (const file of files) {
    try {
      metas.push({ file, meta: clipartMeta(decodeUtf8(readFileSync(file), file, relative(root, file), 'SVG')) });
    } catch (e) {
      report(e instanceof DataError ? e : new DataError(file, undefined, `unreadable SVG (${messageOf(e)})`), options.bad);
    }
  }
  const titleCount = new Map<string, number>();
  for (const { meta } of metas) titleCount.set(meta.title, (titleCount.get(meta.title) ?? 0) + 1);
  const skipped: Record<string, number> = { 'no caption': 0, 'duplicate caption': 0 };
  const byCaption = new Map<string, ClipartEntry[]>();
  const keys = new Set<string>();
  for (const { file, meta } of metas) {
    const rel = relative(root, file);
    const caption = clipartCaption(meta, rel, BOILERPLATE.test(meta.title) || (titleCount.get(meta.title) ?? 0) >= 25);
    if (!caption) {
      // A source file without any metadata is left out by design (counted), not an error.
      skipped['no caption']!++;
      continue;
    }
    let key = `clipart-${safeKey(rel.replace(/\.svg$/i, '').replace(/\//g, '-'))}`;
    for (let i = 2; keys.has(key); i++) key = `${key}_${i}`;
    keys.add(key);
    const entry: ClipartEntry = { key, file, category: rel.split('/').slice(0, -1).join('/'), caption, ...meta };
    let list = byCaption.get(caption);
    if (!list) byCaption.set(caption, (list = []));
    list.push(entry);
  }
  const entries: ClipartEntry[] = [];
  for (const list of byCaption.values()) {
    // Keep an evenly spaced subset of a repeated caption's files (deterministic).
    const keep = list.length <= maxPer ? list : Array.from({ length: maxPer }, (_, i) => list[Math.floor((i * list.length) / maxPer)]!);
    skipped['duplicate caption']! += list.length - keep.length;
    entries.push(...keep);
  }
  entries.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { entries, skipped };
}

/** Renders one entry: `size`×`size` RGB PNG on white. Throws a DataError naming the file when resvg fails or draws nothing. */
export function renderClipart(entry: ClipartEntry, size: number): PairSample {
  let rgb: Uint8Array;
  try {
    rgb = renderSvg(readFileSync(entry.file, 'utf8'), size);
  } catch (e) {
    throw new DataError(entry.file, entry.key, `SVG does not render (${messageOf(e)})`);
  }
  if (isBlank(rgb)) throw new DataError(entry.file, entry.key, 'SVG renders blank (nothing visible at this size)');
  return {
    key: entry.key,
    png: encodePng(rgb, size, size, 3),
    text: entry.caption,
    json: {
      source: 'openclipart-svg',
      file: entry.file,
      category: entry.category,
      title: entry.title,
      description: entry.description,
      keywords: entry.keywords,
      license: 'public domain',
    },
  };
}
