#!/usr/bin/env bash
# Set-up on Debian bookworm, idempotent and safe to re-run (as root, or with sudo):
#   1. npm packages from package-lock.json (skipped when it and the package.json files are
#      unchanged since the last run)
#   2. the TypeScript build (incremental)
#   3. Debian packages for `mode data prepare` (openclipart-svg, dataset-fashion-mnist), the
#      references the tests and benches compare with (python3-torch, python3-numpy on OpenBLAS,
#      python3-sklearn and python3-faiss for `mode bench kmeans`), chromium for the report's
#      browser test, slurm-wlm and munge for the SLURM launcher's
#   4. a WebGPU adapter: when none opens, Mesa's lavapipe (software Vulkan) from
#      bookworm-backports; bookworm's own Mesa 22 is too old for Dawn.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '[setup] %s\n' "$*"; }

# What the installed node_modules were made from: the lockfile and every package.json.
deps_stamp() { cat package.json package-lock.json packages/*/package.json bench/package.json 2>/dev/null | sha256sum; }
if [ "$(deps_stamp)" != "$(cat node_modules/.mode-installed 2>/dev/null)" ]; then
  say "npm install (from package-lock.json)"
  # Not `npm ci`: it insists on every platform's optional nx binary, and the registry this
  # machine reaches serves only linux-x64's. `npm install` follows the lockfile all the same.
  # The committed lockfile is what `npm install` writes (every platform's optional binaries
  # listed), so a fresh clone stays clean; when a package.json changed, it updates the lockfile.
  lock_before=$(sha256sum package-lock.json)
  npm install --no-audit --no-fund --loglevel=error
  [ "$(sha256sum package-lock.json)" = "$lock_before" ] ||
    say "npm install updated package-lock.json to match the package.json files: commit it with them"
  rm -f node_modules/.mode-installed-lock # the stamp of earlier versions of this script
  deps_stamp >node_modules/.mode-installed
fi
say "build (tsc -b)"
npx --no-install tsc -b

# Data sets for `mode data prepare` (packages/data): public-domain clip art and Fashion-MNIST
# come from Debian; the other sources are npm packages. PyTorch and numpy are the float64
# references of the model tests and the peers of the benches (never a dependency of the product);
# scikit-learn and faiss are the k-means peers of `mode bench kmeans` (its full-iteration rows);
# torchvision and PIL are OpenCLIP's image pipeline, the peer of `mode bench loader`'s real-data
# rows and the reference the image decoding tests compare pixels with;
# OpenBLAS makes them run at the CPU's speed (Debian's default BLAS is the slow reference one).
# Chromium (headless, driven by playwright-core) renders the run report in a test; slurm-wlm and
# munge are the single-node SLURM cluster the launcher's tests start (scripts/slurm.sh).
# Installed only when missing.
debian_pkgs=()
for p in openclipart-svg dataset-fashion-mnist python3-torch python3-torchvision python3-pil python3-numpy python3-sklearn python3-faiss libopenblas0-pthread chromium slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || debian_pkgs+=("$p")
done
if [ ${#debian_pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${debian_pkgs[*]}"
  apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${debian_pkgs[@]}" >/dev/null; }
  # No package lists yet (or stale ones): update once, then install.
  apt-cache show "${debian_pkgs[@]}" >/dev/null 2>&1 || $SUDO apt-get update -qq
  apt_install || { $SUDO apt-get update -qq && apt_install; }
fi

probe() { node packages/cli/bin/mode.js info >/dev/null 2>&1; }

if probe; then
  say "WebGPU adapter: $(node packages/cli/bin/mode.js info 2>/dev/null | head -1 | sed 's/^adapter *//')"
  exit 0
fi

say "no WebGPU adapter opens: installing Mesa lavapipe from bookworm-backports"
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # Same mirror and key as the machine's bookworm entry.
  src=/etc/apt/sources.list.d/debian.sources
  uri=$(awk '/^URIs:/{u=$2} /^Suites:/&&/(^| )bookworm( |$)/{print u; exit}' "$src" 2>/dev/null || true)
  key=$(awk '/^Signed-By:/{k=$2} /^Suites:/&&/(^| )bookworm( |$)/{f=1} f&&/^Signed-By:/{print $2; exit}' "$src" 2>/dev/null || true)
  $SUDO tee /etc/apt/sources.list.d/bookworm-backports.sources >/dev/null <<SRC
Types: deb
URIs: ${uri:-http://deb.debian.org/debian}
Suites: bookworm-backports
Components: main
Signed-By: ${key:-/usr/share/keyrings/debian-archive-keyring.gpg}
SRC
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null

if probe; then
  say "WebGPU adapter: $(node packages/cli/bin/mode.js info 2>/dev/null | head -1 | sed 's/^adapter *//')"
else
  node packages/cli/bin/mode.js info || true
  say "still no WebGPU adapter after installing lavapipe (see the error above)"
  exit 1
fi
