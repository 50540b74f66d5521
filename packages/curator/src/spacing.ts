/**
 * MetaCLIP's token-boundary rules (algorithms.md §1), as plain string functions. The automaton
 * applies the same text transform on the fly (see `Automaton.match`); these functions are the
 * definition that the tests and the naive baseline use.
 */

/** The marks the reference wraps in spaces: `X` → `" X "`. */
export const WRAPPED_MARKS = [',', '.', ';', ':', '?', '!', '`'] as const;
/** The characters the reference turns into one space each (no collapsing). */
export const SPACED_CHARS = ['\t', '\n', '\r'] as const;

/** Per ASCII code unit: 1 = wrap in spaces, 2 = replace by a space, 0 = keep. */
export const ASCII_ACTION = new Uint8Array(128);
for (const m of WRAPPED_MARKS) ASCII_ACTION[m.charCodeAt(0)] = 1;
for (const c of SPACED_CHARS) ASCII_ACTION[c.charCodeAt(0)] = 2;

/** `" " + text + " "`, each wrapped mark → `" X "`, each of `\t \n \r` → `" "`; spaces are not collapsed, case is kept. */
export function spaceText(text: string): string {
  let s = ` ${text} `;
  for (const m of WRAPPED_MARKS) s = s.split(m).join(` ${m} `);
  for (const c of SPACED_CHARS) s = s.split(c).join(' ');
  return s;
}

/**
 * Scripts written without spaces between words (MetaCLIP 2's no-space languages: zh, ja, ryu,
 * th, lo, my, km, bo, dz). Korean (Hangul) is written with spaces and is not included.
 */
const NO_SPACE_RANGES: readonly [number, number][] = [
  [0x0e00, 0x0e7f], // Thai
  [0x0e80, 0x0eff], // Lao
  [0x0f00, 0x0fff], // Tibetan (also Dzongkha)
  [0x1000, 0x109f], // Myanmar
  [0x1780, 0x17ff], // Khmer
  [0x19e0, 0x19ff], // Khmer symbols
  [0x2e80, 0x2fdf], // CJK radicals, Kangxi radicals
  [0x2ff0, 0x2fff], // ideographic description characters
  [0x3000, 0x303f], // CJK symbols and punctuation
  [0x3040, 0x30ff], // Hiragana, Katakana
  [0x3100, 0x312f], // Bopomofo
  [0x3190, 0x31ff], // Kanbun, Bopomofo extended, CJK strokes, Katakana phonetic extensions
  [0x3200, 0x32ff], // enclosed CJK letters and months
  [0x3300, 0x33ff], // CJK compatibility
  [0x3400, 0x4dbf], // CJK extension A
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xa9e0, 0xa9ff], // Myanmar extended-B
  [0xaa60, 0xaa7f], // Myanmar extended-A
  [0xf900, 0xfaff], // CJK compatibility ideographs
  [0xfe30, 0xfe4f], // CJK compatibility forms
  [0xff00, 0xffef], // half-width and full-width forms
  [0x16fe0, 0x16fff], // ideographic symbols
  [0x1b000, 0x1b16f], // Kana supplement, extended-A, small Kana
  [0x20000, 0x323af], // CJK extensions B–H, compatibility supplement
];

/** True for a code point of a script written without spaces (CJK, Thai, Lao, Burmese, Khmer, Tibetan), marks included. */
export function isNoSpaceScript(cp: number): boolean {
  if (cp < 0x0e00) return false;
  for (const [lo, hi] of NO_SPACE_RANGES) if (cp >= lo && cp <= hi) return true;
  return false;
}

function lastCodePoint(s: string): number {
  const n = s.length;
  const lo = s.charCodeAt(n - 1);
  if (n >= 2 && lo >= 0xdc00 && lo <= 0xdfff) {
    const hi = s.charCodeAt(n - 2);
    if (hi >= 0xd800 && hi <= 0xdbff) return ((hi - 0xd800) << 10) + (lo - 0xdc00) + 0x10000;
  }
  return lo;
}

/**
 * `" " + entry + " "`. With `multilingual` (MetaCLIP 2), the space is left off a side of the entry
 * that starts (or ends) with a character of a no-space script.
 */
export function padEntry(entry: string, multilingual = false): string {
  if (!multilingual || entry.length === 0) return ` ${entry} `;
  const left = isNoSpaceScript(entry.codePointAt(0)!) ? '' : ' ';
  const right = isNoSpaceScript(lastCodePoint(entry)) ? '' : ' ';
  return `${left}${entry}${right}`;
}
