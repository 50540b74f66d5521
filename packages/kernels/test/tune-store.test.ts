import { describe, expect, it } from 'vitest';
import { checksumOf as nodeChecksum } from '../src/tune-store.js';
import { checksumOf, tuneStore } from '../src/tune-store.browser.js';

// The browser's autotune store (the page bundle swaps it in for tune-store.ts): localStorage,
// or memory where there is none (as here, in Node), and a checksum without node:crypto.
describe('the browser tune store', () => {
  it('keeps what was written where there is no localStorage, and its checksum tells sources apart', () => {
    const store = tuneStore();
    expect(store.where).toBe('localStorage["mode-autotune"]');
    expect(store.read()).toBeNull();
    store.write('{"version":1}');
    expect(store.read()).toBe('{"version":1}');
    const a = checksumOf(['matmul_tiled\0fn main() {}\0']);
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(checksumOf(['matmul_tiled\0fn main() {}\0'])).toBe(a);
    expect(checksumOf(['matmul_tiled\0fn main() { }\0'])).not.toBe(a);
    expect(checksumOf(['a', 'b'])).toBe(checksumOf(['ab'])); // parts are concatenated, as sha256's updates are
    expect(nodeChecksum(['a', 'b'])).toBe(nodeChecksum(['ab']));
    expect(nodeChecksum(['x'])).toMatch(/^[0-9a-f]{16}$/);
  });
});
