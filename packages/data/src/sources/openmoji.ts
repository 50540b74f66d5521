/**
 * OpenMoji (npm `openmoji`, CC BY-SA 4.0): another art style of the same emoji concepts, as a
 * zero-shot classification set labelled by Unicode emoji subgroup ("face smiling", "animal
 * mammal", ...). Skin-tone variants, components and OpenMoji's own extras are left out.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, messageOf } from '../errors.js';
import { encodePng } from '../png.js';
import type { LabelledSample } from '../dataset.js';
import { words } from './emoji.js';
import { packageDir, packageJson } from './paths.js';
import { isBlank, renderSvg } from './render.js';

interface OpenMojiEntry {
  hexcode: string;
  group: string;
  subgroups: string;
  annotation: string;
  skintone: string | number;
}

export interface OpenMojiItem {
  key: string;
  file: string;
  hexcode: string;
  annotation: string;
  label: number;
}

export const OPENMOJI_TEMPLATES = ['an emoji of {}.', 'a {} emoji.', 'an icon of {}.', 'a cartoon of {}.', 'a drawing of {}.'];

const LEFT_OUT_GROUPS = new Set(['component', 'extras-openmoji', 'extras-unicode']);

/** The items and class names (subgroups with at least `minPerClass` emoji, sorted). */
export function openmojiItems(minPerClass = 3): { items: OpenMojiItem[]; classes: string[]; subgroups: string[] } {
  const dir = packageDir('openmoji');
  const all = packageJson<OpenMojiEntry[]>('openmoji', 'data/openmoji.json').filter((e) => !LEFT_OUT_GROUPS.has(e.group) && e.skintone === '' && e.subgroups);
  const counts = new Map<string, number>();
  for (const e of all) counts.set(e.subgroups, (counts.get(e.subgroups) ?? 0) + 1);
  const subgroups = [...counts.keys()].filter((s) => counts.get(s)! >= minPerClass).sort();
  const index = new Map(subgroups.map((s, i) => [s, i]));
  const items = all
    .filter((e) => index.has(e.subgroups))
    .map((e) => ({
      key: `openmoji-${e.hexcode.toLowerCase()}`,
      file: join(dir, 'color/svg', `${e.hexcode}.svg`),
      hexcode: e.hexcode,
      annotation: e.annotation,
      label: index.get(e.subgroups)!,
    }));
  return { items, classes: subgroups.map(words), subgroups };
}

/** Renders one OpenMoji at `size`×`size` (RGB on white). */
export function renderOpenmoji(item: OpenMojiItem, size: number): LabelledSample {
  let rgb: Uint8Array;
  try {
    rgb = renderSvg(readFileSync(item.file, 'utf8'), size);
  } catch (e) {
    throw new DataError(item.file, item.key, `SVG does not render (${messageOf(e)})`);
  }
  if (isBlank(rgb)) throw new DataError(item.file, item.key, 'SVG renders blank');
  return { key: item.key, png: encodePng(rgb, size, size, 3), label: item.label };
}
