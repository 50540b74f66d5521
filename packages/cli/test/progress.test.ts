import { describe, expect, it } from 'vitest';
import { progress } from '../src/progress.js';

/** A stand-in for stderr that records what is written. */
const fakeStream = (isTTY: boolean) => {
  const chunks: string[] = [];
  return { isTTY, columns: 200, chunks, write: (c: string) => chunks.push(c) > 0, text: () => chunks.join('') };
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('progress (the long commands’ bar)', () => {
  it('writes nothing at all when the stream is not a terminal (CI logs)', async () => {
    const s = fakeStream(false);
    const p = progress({ stream: s, unit: 'records', fps: 1000 });
    expect(p.active).toBe(false);
    p.start('emoji', 100);
    for (let i = 1; i <= 100; i++) p.update(i);
    await sleep(20);
    p.stop();
    expect(s.chunks).toEqual([]);
  });

  it('on a terminal: the step, done/total, the rate and the ETA, redrawn in place', async () => {
    const s = fakeStream(true);
    const p = progress({ stream: s, unit: 'records', fps: 1000 });
    expect(p.active).toBe(true);
    p.start('emoji', 400);
    for (let i = 1; i <= 100; i++) {
      p.update(i);
      if (i % 25 === 0) await sleep(15);
    }
    const midway = s.text();
    const plain = (t: string) => t.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[78]/g, '');
    expect(plain(midway)).toMatch(/emoji \|[█░]+\| 25% \| 100\/400 records \| \d+ records\/s \| ETA \d+s/);
    const rates = [...plain(midway).matchAll(/(\d+) records\/s/g)].map((m) => Number(m[1]));
    expect(rates.at(-1)).toBeGreaterThan(0); // the last draw: 100 records in ≥ 45 ms
    p.start('clipart', 10); // a new step ends the previous one
    p.update(10);
    p.stop();
    const all = plain(s.text());
    expect(all).toContain('clipart |');
    expect(all).toMatch(/100% \| 10\/10 records/);
    expect(s.text()).toContain('\x1b[?25h'); // the cursor is shown again
  });

  it('shows the value the caller formats, with the rate of its own count', () => {
    const s = fakeStream(true);
    const p = progress({ stream: s, unit: 'texts', value: (b, t, n) => `${n} texts, ${b}/${t} B` });
    p.start('count', 1000);
    p.update(500, 42);
    p.stop();
    expect(s.text()).toMatch(/count \|[█░]+\| 50% \| 42 texts, 500\/1000 B \| \d+ texts\/s \| ETA/);
  });
});
