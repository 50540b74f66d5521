/**
 * Where JSON text first stops being JSON, for error messages that name `file:line:column`.
 * `JSON.parse`'s own messages give a position only for some errors (and differ between Node
 * versions), so this re-scans the text with the JSON grammar (RFC 8259) once parsing has failed.
 */
export interface JsonErrorPosition {
  /** 0-based offset in UTF-16 code units. */
  offset: number;
  /** 1-based line and column. */
  line: number;
  column: number;
  /** What was found and what was expected there, e.g. `unexpected '}' (expected a value)`. */
  reason: string;
}

class Stop {
  constructor(
    readonly offset: number,
    readonly reason: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** The first syntax error in `text`, or null when `text` is valid JSON. */
export function jsonErrorAt(text: string): JsonErrorPosition | null {
  const n = text.length;
  let i = 0;
  const show = (at: number) => {
    const c = text.codePointAt(at)!;
    return c < 0x20 ? `control character U+${c.toString(16).padStart(4, '0').toUpperCase()}` : `'${String.fromCodePoint(c)}'`;
  };
  const fail = (expected: string, at = i): never => {
    throw new Stop(at, at >= n ? `unexpected end of file (expected ${expected})` : `unexpected ${show(at)} (expected ${expected})`);
  };
  const ws = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) break;
      i++;
    }
  };
  const string = () => {
    const open = i++;
    for (;;) {
      if (i >= n) throw new Stop(open, "unterminated string (no closing '\"')");
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail("'\"' or more of the string; control characters must be escaped");
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else fail('an escape: \\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX', i + 1);
      } else i++;
    }
  };
  const value = (depth: number): void => {
    if (depth > 10_000) fail('less nesting');
    ws();
    const c = text[i];
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === ']') {
          i++;
          return;
        } else fail("',' or ']'");
      }
    }
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('a string key');
        string();
        ws();
        if (text[i] !== ':') fail("':'");
        i++;
        value(depth + 1);
        ws();
        if (text[i] === ',') i++;
        else if (text[i] === '}') {
          i++;
          return;
        } else fail("',' or '}'");
      }
    }
    if (c === '"') return string();
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(text);
      if (!m) fail('a digit', i + 1);
      i += m![0].length;
      return;
    }
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    fail('a value');
  };
  try {
    value(0);
    ws();
    if (i < n) fail('the end of the file after the JSON value');
    return null;
  } catch (e) {
    if (!(e instanceof Stop)) throw e;
    return { offset: e.offset, ...lineColumn(text, e.offset), reason: e.reason };
  }
}

/** 1-based line and column of a 0-based offset (lines end at `\n`). */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let start = 0;
  for (let j = text.indexOf('\n'); j !== -1 && j < offset; j = text.indexOf('\n', j + 1)) {
    line++;
    start = j + 1;
  }
  return { line, column: offset - start + 1 };
}
