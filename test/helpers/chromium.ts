// Headless Chromium (Debian's `chromium`, installed by scripts/setup.sh) driven by playwright-core:
// for checking pages as a browser renders them. WebGPU there is SwiftShader's, behind
// --enable-unsafe-webgpu: right for correctness, not speed.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

export function launchChromium(): Promise<Browser> {
  if (!CHROMIUM) throw new Error('no chromium: run bash scripts/setup.sh (it installs Debian chromium)');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--enable-unsafe-webgpu', '--no-sandbox'] });
}
