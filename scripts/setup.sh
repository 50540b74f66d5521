#!/usr/bin/env bash
# Set-up on Debian bookworm, idempotent and safe to re-run (as root, or with sudo):
#   1. npm packages from package-lock.json (skipped when it is unchanged since the last run)
#   2. the TypeScript build (incremental)
#   3. Debian packages for `mode data prepare` (openclipart-svg, dataset-fashion-mnist)
#   4. a WebGPU adapter: when none opens, Mesa's lavapipe (software Vulkan) from
#      bookworm-backports; bookworm's own Mesa 22 is too old for Dawn.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
say() { printf '[setup] %s\n' "$*"; }

if ! cmp -s package-lock.json node_modules/.mode-installed-lock 2>/dev/null; then
  say "npm install (from package-lock.json)"
  # Not `npm ci`: it insists on every platform's optional nx binary, and the registry this
  # machine reaches serves only linux-x64's. `npm install` follows the lockfile all the same.
  npm install --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.mode-installed-lock
fi
say "build (tsc -b)"
npx --no-install tsc -b

# Data sets for `mode data prepare` (packages/data): public-domain clip art and Fashion-MNIST
# come from Debian; the other sources are npm packages. Installed only when missing.
data_pkgs=()
for p in openclipart-svg dataset-fashion-mnist; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || data_pkgs+=("$p")
done
if [ ${#data_pkgs[@]} -gt 0 ]; then
  say "installing Debian data packages: ${data_pkgs[*]}"
  apt_install() { DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${data_pkgs[@]}" >/dev/null; }
  # No package lists yet (or stale ones): update once, then install.
  apt-cache show "${data_pkgs[@]}" >/dev/null 2>&1 || $SUDO apt-get update -qq
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
