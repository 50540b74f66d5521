import { padEntry, spaceText } from './spacing.js';

/**
 * The reference's matching loop, literally: space the text, then test every padded entry with a
 * substring search. O(entries × text) per text: the baseline the automaton is checked and timed
 * against.
 */
export class NaiveMatcher {
  private readonly padded: string[];

  constructor(entries: readonly string[], multilingual = false) {
    this.padded = entries.map((e) => padEntry(e, multilingual));
  }

  /** Matched entry ids in increasing order. */
  matchAll(text: string): number[] {
    const spaced = spaceText(text);
    const ids: number[] = [];
    const padded = this.padded;
    for (let id = 0; id < padded.length; id++) if (spaced.includes(padded[id]!)) ids.push(id);
    return ids;
  }
}
