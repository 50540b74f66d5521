#!/usr/bin/env bash
# Packs what scripts/device-check.sh needs on a machine with a GPU and nothing else: this machine's
# Node (xz), the linux-x64 dawn.node with the webgpu package's loader, the Vulkan loader library,
# and the CLI as one bundle (esbuild; the native image libraries stubbed: the checks decode no
# images). Writes .device/ (git-ignored, ~35 MiB): carry it to the machine with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
out=.device
rm -rf "$out.tmp" && mkdir -p "$out.tmp/webgpu/dist/linux-x64" "$out.tmp/lib"
[ -f packages/cli/dist/main.js ] || npx --no-install tsc -b
npx --no-install esbuild scripts/device/entry.mjs --bundle --platform=node --format=esm --target=node20 \
  --outfile="$out.tmp/mode.mjs" --external:webgpu --log-level=warning \
  --alias:sharp=./scripts/device/stub-native.mjs --alias:@resvg/resvg-js=./scripts/device/stub-native.mjs \
  '--banner:js=import { createRequire as __cr } from "node:module"; const require = __cr(import.meta.url);'
cp node_modules/webgpu/index.js node_modules/webgpu/package.json "$out.tmp/webgpu/"
xz -T0 -3 -c node_modules/webgpu/dist/linux-x64/dawn.node >"$out.tmp/webgpu/dist/linux-x64/dawn.node.xz"
xz -T0 -3 -c "$(command -v node)" >"$out.tmp/node.xz"
# The Vulkan loader, for a machine that has the driver but not libvulkan.so.1.
lib=$(ldconfig -p | awk '/libvulkan\.so\.1 .*x86-64/ { print $NF; exit }')
if [ -n "$lib" ]; then cp -L "$lib" "$out.tmp/lib/libvulkan.so.1"; fi
node --version >"$out.tmp/node-version"
rm -rf "$out" && mv "$out.tmp" "$out"
echo "device-pack: $(du -sh "$out" | cut -f1) in $out (node $(cat "$out/node-version"))"
