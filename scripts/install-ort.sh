#!/usr/bin/env bash
# Installs the ONNX Runtime (CPU) Node.js harness used by the export tests
# (tests/export/ort). Idempotent: node/npm and node_modules already present
# are left as they are.
#
# onnxruntime-node is installed with --ignore-scripts: its postinstall only
# downloads optional GPU binaries from outside the npm registry; the CPU
# binding for linux x64 ships inside the npm tarball.
set -euo pipefail

die() { echo "install-ort: $*" >&2; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ort_dir="$root/tests/export/ort"
[ -f "$ort_dir/package-lock.json" ] || die "missing $ort_dir/package-lock.json"

# 1. node and npm from Debian, only when absent.
missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm  >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q || die "apt-get update failed"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
  echo "install-ort: installed ${missing[*]}"
fi
command -v node >/dev/null 2>&1 || die "node not found after install"
command -v npm  >/dev/null 2>&1 || die "npm not found after install"

# 2. node_modules from the lock file, only when onnxruntime-node is absent or
#    is not the version pinned in package.json (e.g. after a version bump).
cd "$ort_dir"
want="$(node -p "require('./package.json').dependencies['onnxruntime-node']")"
have=""
if [ -f node_modules/onnxruntime-node/package.json ]; then
  have="$(node -p "require('./node_modules/onnxruntime-node/package.json').version")"
fi
if [ "$have" != "$want" ]; then
  echo "install-ort: npm ci in $ort_dir (onnxruntime-node $want)"
  npm ci --ignore-scripts --no-audit --no-fund || die "npm ci failed in $ort_dir"
else
  echo "install-ort: onnxruntime-node $have already present"
fi

# 3. The native binding must load; fails clearly on an unsupported platform.
node -e "require('onnxruntime-node')" \
  || die "onnxruntime-node $want is installed but its native binding does not load"
echo "install-ort: ok"
