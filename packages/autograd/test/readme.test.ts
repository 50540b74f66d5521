import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import * as autograd from '../src/index.js';

// The README's example, run as written: its import line is bound to this package's sources and
// its console.log captured; the printed probabilities must show XOR learnt.
it('the README example runs as written and learns XOR', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme)![1]!;
  expect(code.split('\n').filter((l) => l.trim()).length).toBeLessThanOrEqual(16);
  const body = code.replace(/^import \{([^}]*)\} from '@mode\/autograd';$/m, 'const {$1} = autograd;');
  expect(body).not.toMatch(/^import /m);
  const printed: unknown[] = [];
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
  await new AsyncFunction('autograd', 'console', body)(autograd, { log: (...a: unknown[]) => printed.push(...a) });
  const probs = printed[0] as Float32Array;
  expect(probs).toBeInstanceOf(Float32Array);
  const predicted = [0, 1, 2, 3].map((r) => (probs[2 * r + 1]! > probs[2 * r]! ? 1 : 0));
  expect(predicted).toEqual([0, 1, 1, 0]);
  expect(Math.min(...[0, 1, 2, 3].map((r) => probs[2 * r + predicted[r]!]!))).toBeGreaterThan(0.9);
});
