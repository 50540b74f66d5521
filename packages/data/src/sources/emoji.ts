/**
 * Noto emoji (npm `emoji-datasource-google`: the 64-pixel sheet, each emoji at
 * `sheet_x`/`sheet_y` in 66-pixel cells with a 1-pixel border) captioned from npm
 * `emojibase-data` (CLDR English label and tags, Unicode group and subgroup). Skin-tone
 * variants are their own pairs: the label names the tone, the tags are the base emoji's.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BadRecords, DataError, report } from '../errors.js';
import { decodePng, encodePng, type RgbaImage } from '../png.js';
import type { PairSample } from '../dataset.js';
import { packageDir, packageJson } from './paths.js';

interface SheetEmoji {
  unified: string;
  non_qualified: string | null;
  sheet_x: number;
  sheet_y: number;
  has_img_google: boolean;
  skin_variations?: Record<string, { unified: string; non_qualified: string | null; sheet_x: number; sheet_y: number; has_img_google: boolean }>;
}

interface BaseEmoji {
  label: string;
  hexcode: string;
  emoji: string;
  tags?: string[];
  group?: number;
  subgroup?: number;
  skins?: BaseEmoji[];
}

export interface EmojiEntry {
  key: string;
  hexcode: string;
  emoji: string;
  label: string;
  tags: string[];
  group: string;
  subgroup: string;
  sheetX: number;
  sheetY: number;
  caption: string;
}

/** Unicode group and subgroup names by number (emojibase-data's meta/groups.json). */
export function emojiGroups(): { groups: Record<string, string>; subgroups: Record<string, string> } {
  return packageJson('emojibase-data', 'meta/groups.json');
}

/** "hand-fingers-open" → "hand fingers open". */
export const words = (slug: string): string => slug.replace(/-/g, ' ');

/** The caption: label, tags, then group and subgroup, e.g. "waving hand: light skin tone. bye, hello, wave. people body, hand fingers open." */
export function emojiCaption(label: string, tags: string[], group: string, subgroup: string): string {
  const tagText = tags.filter((t) => t.toLowerCase() !== label.toLowerCase()).join(', ');
  return `${label}.${tagText ? ` ${tagText}.` : ''} ${words(group)}, ${words(subgroup)}.`;
}

/** Every emoji on the Google sheet joined to its English annotation (no images read). */
export function emojiEntries(bad?: BadRecords): EmojiEntry[] {
  const sheet = packageJson<SheetEmoji[]>('emoji-datasource-google', 'emoji.json');
  const base = packageJson<BaseEmoji[]>('emojibase-data', 'en/data.json');
  const { groups, subgroups } = emojiGroups();
  const byHex = new Map<string, { e: BaseEmoji; parent: BaseEmoji }>();
  for (const e of base) {
    byHex.set(e.hexcode, { e, parent: e });
    for (const s of e.skins ?? []) byHex.set(s.hexcode, { e: s, parent: e });
  }
  const out: EmojiEntry[] = [];
  const sheetFile = join(packageDir('emoji-datasource-google'), 'emoji.json');
  const add = (v: { unified: string; non_qualified: string | null; sheet_x: number; sheet_y: number; has_img_google: boolean }) => {
    if (!v.has_img_google) return;
    const hit = byHex.get(v.unified) ?? (v.non_qualified ? byHex.get(v.non_qualified) : undefined);
    if (!hit || !hit.e.label) {
      report(new DataError(sheetFile, v.unified, 'missing caption (no emojibase-data en/data.json entry for this code point sequence)'), bad);
      return;
    }
    const group = groups[String(hit.e.group ?? hit.parent.group)] ?? 'unknown';
    const subgroup = subgroups[String(hit.e.subgroup ?? hit.parent.subgroup)] ?? 'unknown';
    const tags = hit.e.tags ?? hit.parent.tags ?? [];
    out.push({
      key: `emoji-${v.unified.toLowerCase()}`,
      hexcode: v.unified,
      emoji: hit.e.emoji,
      label: hit.e.label,
      tags,
      group,
      subgroup,
      sheetX: v.sheet_x,
      sheetY: v.sheet_y,
      caption: emojiCaption(hit.e.label, tags, group, subgroup),
    });
  };
  for (const e of sheet) {
    add(e);
    for (const v of Object.values(e.skin_variations ?? {})) add(v);
  }
  return out;
}

/** The 64-pixel Google sheet, decoded (about 4092×4092 RGBA; one second). */
export function loadEmojiSheet(): RgbaImage {
  const path = join(packageDir('emoji-datasource-google'), 'img/google/sheets/64.png');
  return decodePng(readFileSync(path), { file: path, record: 'sheet' });
}

const CELL = 66;
const SIZE = 64;

/** Crops one emoji from the sheet as 64×64 RGBA. */
export function cropEmoji(sheet: RgbaImage, sheetX: number, sheetY: number): Uint8Array {
  const out = new Uint8Array(SIZE * SIZE * 4);
  const x0 = sheetX * CELL + 1;
  const y0 = sheetY * CELL + 1;
  for (let y = 0; y < SIZE; y++) {
    const from = ((y0 + y) * sheet.width + x0) * 4;
    out.set(sheet.data.subarray(from, from + SIZE * 4), y * SIZE * 4);
  }
  return out;
}

/** Emoji pairs: 64×64 RGBA PNG, caption, and metadata. */
export function* emojiPairs(entries: EmojiEntry[] = emojiEntries(), sheet: RgbaImage = loadEmojiSheet()): Generator<PairSample> {
  for (const e of entries) {
    yield {
      key: e.key,
      png: encodePng(cropEmoji(sheet, e.sheetX, e.sheetY), SIZE, SIZE, 4),
      text: e.caption,
      json: { source: 'emoji-datasource-google', hexcode: e.hexcode, emoji: e.emoji, label: e.label, tags: e.tags, group: e.group, subgroup: e.subgroup },
    };
  }
}
