/** Stats, the long-tail plot (SVG) and the terminal distribution of a curation run. */

export interface EntryCount {
  entry: string;
  count: number;
}

/** The `k` entries with the largest counts. */
export function topEntries(entries: readonly string[], counts: ArrayLike<number>, k: number): EntryCount[] {
  const idx: number[] = [];
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) idx.push(i);
  idx.sort((a, b) => counts[b]! - counts[a]! || a - b);
  return idx.slice(0, k).map((i) => ({ entry: entries[i]!, count: round(counts[i]!) }));
}

const round = (x: number) => (Number.isInteger(x) ? x : Math.round(x * 1000) / 1000);

/** Counts sorted in decreasing order, zeros dropped. */
export function sortedCounts(counts: ArrayLike<number>): Float64Array {
  const out: number[] = [];
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out.push(counts[i]!);
  return Float64Array.from(out).sort().reverse();
}

/**
 * MetaCLIP's long-tail figure: entry counts sorted in decreasing order (rank on x, count on y,
 * both log-scale), before and after balancing, with the threshold t. Hand-written SVG.
 */
export function longTailSvg(before: ArrayLike<number>, after: ArrayLike<number>, t: number, title = 'Entry counts before and after balancing'): string {
  const W = 720;
  const H = 440;
  const L = 70;
  const R = 20;
  const T = 40;
  const B = 50;
  const b = sortedCounts(before);
  const a = sortedCounts(after);
  const maxRank = Math.max(2, b.length, a.length);
  const maxCount = Math.max(10, b[0] ?? 1, a[0] ?? 1, Number.isFinite(t) ? t : 1);
  const minCount = Math.min(1, a.length ? a[a.length - 1]! : 1);
  const lx = (r: number) => L + (Math.log10(r) / Math.log10(maxRank)) * (W - L - R);
  const yMin = Math.log10(minCount) - 0.1;
  const yMax = Math.log10(maxCount) + 0.1;
  const ly = (c: number) => T + (1 - (Math.log10(c) - yMin) / (yMax - yMin)) * (H - T - B);
  const path = (s: Float64Array) => {
    if (s.length === 0) return '';
    const pts: string[] = [];
    let lastX = -1;
    for (let i = 0; i < s.length; i++) {
      const x = lx(i + 1);
      if (x - lastX < 0.5 && i !== s.length - 1) continue; // ≤ ~1300 points
      lastX = x;
      pts.push(`${x.toFixed(1)},${ly(s[i]!).toFixed(1)}`);
    }
    return pts.length === 1 ? `M${pts[0]} h1` : `M${pts.join(' L')}`;
  };
  const ticks: string[] = [];
  for (let e = 0; 10 ** e <= maxRank; e++) {
    const x = lx(10 ** e).toFixed(1);
    ticks.push(
      `<line x1="${x}" y1="${H - B}" x2="${x}" y2="${H - B + 5}" stroke="#444"/><text x="${x}" y="${H - B + 18}" text-anchor="middle">${fmt(10 ** e)}</text>`,
    );
  }
  for (let e = Math.ceil(yMin); e <= yMax; e++) {
    const y = ly(10 ** e).toFixed(1);
    ticks.push(
      `<line x1="${L - 5}" y1="${y}" x2="${L}" y2="${y}" stroke="#444"/><text x="${L - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(10 ** e)}</text>`,
    );
    ticks.push(`<line x1="${L}" y1="${y}" x2="${W - R}" y2="${y}" stroke="#eee"/>`);
  }
  const tLine = Number.isFinite(t)
    ? `<line x1="${L}" y1="${ly(t).toFixed(1)}" x2="${W - R}" y2="${ly(t).toFixed(1)}" stroke="#888" stroke-dasharray="5,4"/><text x="${W - R - 4}" y="${(ly(t) - 6).toFixed(1)}" text-anchor="end" fill="#666">t = ${fmt(t)}</text>`
    : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${W / 2}" y="22" text-anchor="middle" font-size="15">${esc(title)}</text>
${ticks.join('\n')}
<line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#444"/><line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#444"/>
<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">entry rank (by count, log scale)</text>
<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">matched pairs per entry (log scale)</text>
${tLine}
<path d="${path(b)}" fill="none" stroke="#d62728" stroke-width="2"/>
<path d="${path(a)}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<rect x="${W - R - 190}" y="${T + 6}" width="182" height="44" fill="white" stroke="#ccc"/>
<line x1="${W - R - 180}" y1="${T + 20}" x2="${W - R - 156}" y2="${T + 20}" stroke="#d62728" stroke-width="2"/><text x="${W - R - 150}" y="${T + 24}">before (${fmt(b.length)} entries)</text>
<line x1="${W - R - 180}" y1="${T + 38}" x2="${W - R - 156}" y2="${T + 38}" stroke="#1f77b4" stroke-width="2"/><text x="${W - R - 150}" y="${T + 42}">after (${fmt(a.length)} entries)</text>
</svg>
`;
}

function fmt(x: number): string {
  if (x >= 1e6) return `${+(x / 1e6).toPrecision(3)}M`;
  if (x >= 1e3) return `${+(x / 1e3).toPrecision(3)}k`;
  return `${+x.toPrecision(3)}`;
}

function esc(s: string): string {
  return s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
}

/** Entries per decade of count (1–9, 10–99, …), before and after: the distribution as text. */
export function distributionTable(before: ArrayLike<number>, after: ArrayLike<number>): string {
  const decades = (c: ArrayLike<number>) => {
    const h: number[] = [];
    for (let i = 0; i < c.length; i++) {
      const v = c[i]!;
      if (v <= 0) continue;
      const d = v < 1 ? 0 : Math.floor(Math.log10(v) + 1e-9);
      h[d] = (h[d] ?? 0) + 1;
    }
    return h;
  };
  const hb = decades(before);
  const ha = decades(after);
  const rows = Math.max(hb.length, ha.length);
  const width = 40;
  let max = 1;
  for (let d = 0; d < rows; d++) max = Math.max(max, hb[d] ?? 0, ha[d] ?? 0);
  const bar = (n: number) => '#'.repeat(Math.round((n / max) * width));
  const lines = ['count per entry   entries before  entries after'];
  for (let d = 0; d < rows; d++) {
    const label = d === 0 ? '<10' : `${fmt(10 ** d)}–${fmt(10 ** (d + 1) - 1)}`;
    const b = hb[d] ?? 0;
    const a = ha[d] ?? 0;
    lines.push(`${label.padEnd(16)}  ${String(b).padStart(14)}  ${String(a).padStart(13)}  ${bar(b)}`);
    lines.push(`${''.padEnd(16)}  ${''.padStart(14)}  ${''.padStart(13)}  ${bar(a).replace(/#/g, '=')}`);
  }
  lines.push('(# before, = after)');
  return lines.join('\n');
}
