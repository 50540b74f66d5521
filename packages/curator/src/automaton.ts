import { ASCII_ACTION, padEntry } from './spacing.js';

/**
 * One Aho-Corasick automaton over the padded metadata entries (algorithms.md §1, fast path).
 *
 * Alphabet: UTF-16 code units, the unit JavaScript strings are made of, so a text is matched
 * without encoding it. For well-formed text, substring matching on UTF-16 code units, on code
 * points (the Python reference) and on UTF-8 bytes all agree: each encoding is
 * self-synchronising. (They can differ only on lone surrogates.)
 *
 * Layout (all typed arrays in one buffer, so a `SharedArrayBuffer` hands it to workers as is):
 * - each node is one 16-byte record `[label | childCount << 16, first, fail, outLink]` in one
 *   Int32Array; a node's children are consecutive records `first .. first+childCount-1`, sorted
 *   by label, so a goto is a short scan (or a bisection) over them with no per-edge target array;
 * - child blocks are allocated in depth-first order: the block of a node's children is placed
 *   when the node is first reached, so a chain of single-child nodes (the tail of nearly every
 *   word) is a run of consecutive records and a walk down it reads memory sequentially. (A
 *   breadth-first numbering measured about 1.4× slower at 500k entries.);
 * - nodes with a large fan-out (the root, the space after it, …) get a dense row over the
 *   compressed alphabet instead (`classOf`: code unit → 1..classes, 0 = in no entry; `first` is
 *   then `~row`) for an O(1) goto, breadth-first within a budget of `DENSE_BUDGET` int32;
 * - `fail`: the failure link; `outLink`: the node itself if an entry ends there, else the nearest
 *   node on the failure chain where one ends, else -1. The output after `o` is `outLink[fail[o]]`;
 * - `term[v]`: the entry id ending at `v` (-1 if none); `nextDup[id]`: the next id with the same
 *   padded string (duplicates in the metadata each count, as in the reference's loop).
 *
 * Memory: 20 bytes per node plus 4 per entry, 256 KiB for `classOf`, and the dense rows.
 */

const MAGIC = 0x4d434143; // 'MCAC'
const VERSION = 1;
const HEADER_INTS = 16;
const DENSE_BUDGET = 1 << 19; // int32 cells for dense rows (2 MiB)
const DENSE_MIN_FANOUT = 12;
const LINEAR_MAX = 8; // fan-out up to which a goto scans instead of bisecting

export interface AutomatonOptions {
  /** MetaCLIP 2 padding: no space on a side of an entry that starts/ends in a no-space script. */
  multilingual?: boolean;
  /** Put the arrays in a SharedArrayBuffer (for worker_threads). Default true. */
  shared?: boolean;
}

export interface BuildInfo {
  entries: number;
  uniquePadded: number;
  nodes: number;
  classes: number;
  denseNodes: number;
  bytes: number;
  ms: number;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

export class Automaton {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  readonly nodes: number;
  readonly entries: number;
  readonly classes: number;
  /** Nodes with a dense row. */
  readonly denseNodes: number;
  readonly multilingual: boolean;
  /** Node records, 4 int32 each: label | childCount << 16, first child (or ~dense row), fail, outLink. */
  private readonly node: Int32Array;
  private readonly term: Int32Array;
  private readonly nextDup: Int32Array;
  private readonly classOf: Int32Array;
  private readonly dense: Int32Array;
  /** Per-entry stamp of the last text that emitted it: a text counts an entry once. */
  private stamp: Int32Array | null = null;
  private textNo = 0;

  private constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    const h = new Int32Array(buffer, 0, HEADER_INTS);
    if (h[0] !== MAGIC) throw new Error('not a serialised Aho-Corasick automaton (bad magic)');
    if (h[1] !== VERSION) throw new Error(`automaton format version ${h[1]}, expected ${VERSION}`);
    this.buffer = buffer;
    const n = (this.nodes = h[2]!);
    const m = (this.entries = h[3]!);
    const k = (this.classes = h[4]!);
    const d = (this.denseNodes = h[5]!); // rows
    this.multilingual = h[6] === 1;
    let off = HEADER_INTS * 4;
    const take = <T>(make: (off: number) => T, bytes: number): T => {
      const v = make(off);
      off += align8(bytes);
      return v;
    };
    this.node = take((o) => new Int32Array(buffer, o, n * 4), n * 16);
    this.term = take((o) => new Int32Array(buffer, o, n), n * 4);
    this.nextDup = take((o) => new Int32Array(buffer, o, m), m * 4);
    this.classOf = take((o) => new Int32Array(buffer, o, 65536), 65536 * 4);
    this.dense = take((o) => new Int32Array(buffer, o, d * (k + 1)), d * (k + 1) * 4);
  }

  /** Layout size in bytes for the given counts. */
  private static byteSize(n: number, m: number, k: number, d: number): number {
    return HEADER_INTS * 4 + n * 16 + align8(n * 4) + align8(m * 4) + 65536 * 4 + align8(d * (k + 1) * 4);
  }

  /** Loads a serialised automaton (the bytes of `serialize()`, or its shared buffer) without rebuilding. */
  static fromBuffer(bytes: ArrayBuffer | SharedArrayBuffer | Uint8Array): Automaton {
    if (bytes instanceof Uint8Array) {
      // Copy into an 8-byte-aligned buffer of our own (a Node Buffer may sit at any offset of a pool).
      const shared = new SharedArrayBuffer(bytes.byteLength);
      new Uint8Array(shared).set(bytes);
      return new Automaton(shared);
    }
    return new Automaton(bytes);
  }

  /** The bytes to write to a file; `Automaton.fromBuffer` reads them back. */
  serialize(): Uint8Array {
    return new Uint8Array(this.buffer);
  }

  /** Builds the automaton over `entries` padded by the §1 rules (ids are indices into `entries`). */
  static build(entries: readonly string[], options: AutomatonOptions = {}): { automaton: Automaton; info: BuildInfo } {
    const t0 = performance.now();
    const multilingual = options.multilingual ?? false;
    const m = entries.length;

    // Unique padded strings; duplicates chained by id.
    const firstId = new Map<string, number>();
    const lastId = new Int32Array(m);
    const nextDup = new Int32Array(m).fill(-1);
    const uniq: string[] = [];
    for (let id = 0; id < m; id++) {
      const p = padEntry(entries[id]!, multilingual);
      const f = firstId.get(p);
      if (f === undefined) {
        firstId.set(p, id);
        lastId[id] = id;
        uniq.push(p);
      } else {
        nextDup[lastId[f]!] = id;
        lastId[f] = id;
      }
    }
    uniq.sort(); // UTF-16 code unit order: a prefix sorts before its extensions

    // Trie from the sorted strings: a node is a range of strings sharing its prefix; its children
    // split the range by the next code unit. Child blocks are allocated depth-first.
    let totalChars = 1;
    for (const p of uniq) totalChars += p.length;
    const lo = new Int32Array(totalChars);
    const hi = new Int32Array(totalChars);
    const depth = new Int32Array(totalChars);
    const firstB = new Int32Array(totalChars);
    const countB = new Int32Array(totalChars);
    const labelB = new Uint16Array(totalChars);
    const termB = new Int32Array(totalChars).fill(-1);
    const stack = new Int32Array(totalChars);
    hi[0] = uniq.length;
    let n = 1;
    let top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const v = stack[--top]!;
      let i = lo[v]!;
      const h = hi[v]!;
      const dv = depth[v]!;
      if (i < h && uniq[i]!.length === dv) termB[v] = firstId.get(uniq[i++]!)!;
      const start = n;
      while (i < h) {
        const c = uniq[i]!.charCodeAt(dv);
        let j = i + 1;
        while (j < h && uniq[j]!.charCodeAt(dv) === c) j++;
        labelB[n] = c;
        lo[n] = i;
        hi[n] = j;
        depth[n] = dv + 1;
        n++;
        i = j;
      }
      firstB[v] = start;
      countB[v] = n - start;
      for (let u = n - 1; u >= start; u--) stack[top++] = u;
    }

    // Breadth-first order (for the failure links and the choice of dense rows).
    const order = stack; // reused: the stack is empty now
    order[0] = 0;
    for (let qh = 0, qt = 1; qh < qt; qh++) {
      const v = order[qh]!;
      for (let u = firstB[v]!, e = u + countB[v]!; u < e; u++) order[qt++] = u;
    }

    // Compressed alphabet and dense rows (the root always has one).
    const classOfB = new Int32Array(65536);
    let k = 0;
    for (let u = 1; u < n; u++) if (classOfB[labelB[u]!] === 0) classOfB[labelB[u]!] = ++k;
    const maxRows = Math.max(1, Math.floor(DENSE_BUDGET / (k + 1)));
    const rowOf = new Int32Array(n).fill(-1);
    let d = 0;
    for (let q = 0; q < n && d < maxRows; q++) {
      const v = order[q]!;
      if (v === 0 || countB[v]! >= DENSE_MIN_FANOUT) rowOf[v] = d++;
    }
    for (let v = 0; v < n; v++)
      if (countB[v]! > 0xffff && rowOf[v]! < 0) throw new Error('automaton: a node with more than 65535 children did not get a dense row');

    const bytes = Automaton.byteSize(n, m, k, d);
    const buffer = (options.shared ?? true) ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
    const header = new Int32Array(buffer, 0, HEADER_INTS);
    header.set([MAGIC, VERSION, n, m, k, d, multilingual ? 1 : 0]);
    const a = new Automaton(buffer);
    const { node, term, dense } = a;
    dense.fill(-1);
    for (let v = 0; v < n; v++) {
      const r = rowOf[v]!;
      node[v * 4] = labelB[v]! | ((r >= 0 ? 0 : countB[v]!) << 16);
      node[v * 4 + 1] = r >= 0 ? ~r : firstB[v]!;
      if (r >= 0) for (let u = firstB[v]!, e = u + countB[v]!; u < e; u++) dense[r * (k + 1) + classOfB[labelB[u]!]!] = u;
    }
    term.set(termB.subarray(0, n));
    a.nextDup.set(nextDup);
    a.classOf.set(classOfB);

    // Failure and output links, breadth-first (a node's parent and its parent's failure come first).
    node[2] = 0;
    node[3] = -1; // the root is never terminal: padded entries are never empty
    for (let q = 0; q < n; q++) {
      const v = order[q]!;
      for (let u = firstB[v]!, e = u + countB[v]!; u < e; u++) {
        let f = 0;
        if (v !== 0) {
          const c = labelB[u]!;
          let s = node[v * 4 + 2]!;
          for (;;) {
            const t = a.goto(s, c);
            if (t >= 0) {
              f = t;
              break;
            }
            if (s === 0) break;
            s = node[s * 4 + 2]!;
          }
        }
        node[u * 4 + 2] = f;
        node[u * 4 + 3] = termB[u]! >= 0 ? u : node[f * 4 + 3]!;
      }
    }
    const info: BuildInfo = { entries: m, uniquePadded: uniq.length, nodes: n, classes: k, denseNodes: d, bytes, ms: performance.now() - t0 };
    return { automaton: a, info };
  }

  /** The child of `s` on code unit `c`, or -1. */
  private goto(s: number, c: number): number {
    const cls = this.classOf[c]!;
    if (cls === 0) return -1;
    const node = this.node;
    let lo = node[s * 4 + 1]!;
    if (lo < 0) return this.dense[~lo * (this.classes + 1) + cls]!;
    let hi = lo + (node[s * 4]! >>> 16);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const x = node[mid * 4]! & 0xffff;
      if (x === c) return mid;
      if (x < c) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  /**
   * The entry ids that match `text` (each once), written to `out` from index 0; returns how many.
   * `out` must hold `entries` ints in the worst case (use `matchAll` when unsure). The text is
   * spaced on the fly exactly as `spaceText` does, without building the spaced string.
   */
  match(text: string, out: Int32Array): number {
    let stamp = this.stamp;
    if (stamp === null) stamp = this.stamp = new Int32Array(this.entries);
    if (++this.textNo === 0x7fffffff) {
      stamp.fill(0);
      this.textNo = 1;
    }
    const no = this.textNo;
    const { classOf, dense, node, term, nextDup } = this;
    const k1 = this.classes + 1;
    let count = 0;
    let s = 0;
    const len = text.length;
    // The spaced text, generated on the fly: the leading pad, then each code unit (a wrapped mark
    // as ' ', mark, ' ' via `phase`; tab, newline, return as ' '), then the trailing pad.
    let c = 32;
    let j = 0;
    let phase = 0;
    let mark = 0;
    for (;;) {
      // --- goto with failure
      const cls = classOf[c]!;
      if (cls === 0) s = 0;
      else {
        for (;;) {
          let t = -1;
          let lo = node[s * 4 + 1]!;
          if (lo < 0) t = dense[~lo * k1 + cls]!;
          else {
            let hi = lo + (node[s * 4]! >>> 16);
            if (hi - lo <= LINEAR_MAX) {
              for (; lo < hi; lo++)
                if ((node[lo * 4]! & 0xffff) === c) {
                  t = lo;
                  break;
                }
            } else {
              while (lo < hi) {
                const mid = (lo + hi) >>> 1;
                const x = node[mid * 4]! & 0xffff;
                if (x === c) {
                  t = mid;
                  break;
                }
                if (x < c) lo = mid + 1;
                else hi = mid;
              }
            }
          }
          if (t >= 0) {
            s = t;
            break;
          }
          if (s === 0) break;
          s = node[s * 4 + 2]!;
        }
        // --- outputs (the root is never terminal: padded entries are never empty)
        for (let o = node[s * 4 + 3]!; o > 0; o = node[node[o * 4 + 2]! * 4 + 3]!) {
          for (let id = term[o]!; id >= 0; id = nextDup[id]!) {
            if (stamp[id] !== no) {
              stamp[id] = no;
              out[count++] = id;
            }
          }
        }
      }
      // --- next code unit of the spaced text
      if (phase === 1) {
        c = mark;
        phase = 2;
      } else if (phase === 2) {
        c = 32;
        phase = 0;
      } else if (j < len) {
        c = text.charCodeAt(j++);
        if (c < 128) {
          const act = ASCII_ACTION[c]!;
          if (act === 1) {
            mark = c;
            c = 32;
            phase = 1;
          } else if (act === 2) c = 32;
        }
      } else if (j === len) {
        c = 32;
        j++;
      } else break;
    }
    return count;
  }

  /** Convenience: the matched ids of `text` as a new, sorted array. */
  matchAll(text: string): number[] {
    const out = new Int32Array(Math.max(16, this.entries));
    const n = this.match(text, out);
    return Array.from(out.subarray(0, n)).sort((a, b) => a - b);
  }
}
