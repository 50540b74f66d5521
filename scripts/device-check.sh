#!/usr/bin/env bash
# On a machine with a GPU and no Node (a lent device machine): unpacks what scripts/device-pack.sh
# packed into .device/ (Node, dawn.node, the CLI bundle), then runs mode info, mode selftest,
# mode bench peak, mode bench kernels and mode bench train, each under its own time limit so that
# the whole stays within ten minutes, and leaves the results in $OUT (default out/device): the
# log, info.json and each suite's Markdown and JSON (8 files). --quick: the quick versions of the
# kernels and train benches; the peak is always measured whole, since the others' % of peak reads
# it. --smoke: info, selftest and the peak only (what the test runs on lavapipe, where the kernels
# and train benches alone take longer than the ten minutes). Needs bash, xz and coreutils; nothing
# of this repo's node_modules.
set -uo pipefail
cd "$(dirname "$0")/.."
quick=""
smoke=""
case "${1:-}" in
  --quick) quick="--quick" ;;
  --smoke) smoke=1 ;;
  "") ;;
  *) echo "device-check: unknown option $1 (--quick or --smoke)" >&2; exit 2 ;;
esac
pack=$PWD/.device
out=${OUT:-$PWD/out/device}
[ -f "$pack/mode.mjs" ] || { echo "device-check: no $pack/mode.mjs. Fix: bash scripts/device-pack.sh here, then carry .device" >&2; exit 2; }
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
xz -dc "$pack/node.xz" >"$work/node" && chmod +x "$work/node"
mkdir -p "$work/node_modules/webgpu/dist/linux-x64"
cp "$pack/webgpu/index.js" "$pack/webgpu/package.json" "$work/node_modules/webgpu/"
xz -dc "$pack/webgpu/dist/linux-x64/dawn.node.xz" >"$work/node_modules/webgpu/dist/linux-x64/dawn.node"
cp "$pack/mode.mjs" "$work/mode.mjs"
# The Vulkan loader where the machine lacks one; NVIDIA's driver file where it is not found.
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1' || export LD_LIBRARY_PATH="$pack/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] && [ -f "$nv" ] && export VK_DRIVER_FILES=$nv
# Caches and results of this check only: nothing read from or left in the machine's home.
export PATH="$work:$PATH" MODE_KERNELS_DIR="$PWD/kernels" MODE_BENCH_RESULTS="$out/" \
  MODE_TUNE_CACHE="$work/cache/autotune.json" MODE_PEAK_CACHE="$work/cache/peak.json" XDG_CACHE_HOME="$work/cache"
log="$out/device-check.log"
: >"$log"
status=0
step() { # seconds, then the mode command
  local limit=$1
  shift
  echo "== mode $* (limit ${limit} s)" | tee -a "$log"
  timeout "$limit" "$work/node" "$work/mode.mjs" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && { echo "== mode $*: exit $rc" | tee -a "$log"; status=1; }
  return 0
}
echo "== node $("$work/node" --version) from $work/node; $(uname -srm)" | tee -a "$log"
timeout 60 "$work/node" "$work/mode.mjs" info --json >"$out/info.json" 2>>"$log" || status=1
step 60 info
step 150 selftest
step 60 bench peak
if [ -z "$smoke" ]; then
  step 180 bench kernels $quick
  step 120 bench train $quick
else
  echo "== mode bench kernels, mode bench train: skipped (--smoke)" | tee -a "$log"
fi
ls "$out" | tee -a "$log"
exit $status
