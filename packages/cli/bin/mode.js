#!/usr/bin/env node
// The `mode` command. The TypeScript is compiled by `npm run build` (the set-up script runs it).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('mode: the CLI is not built yet (packages/cli/dist/main.js is missing). Fix: npm run build');
  process.exit(1);
}
await import(main.href);
