#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh runs on a GPU machine that has the CUDA
# driver and a Python with torch 2.11.0 (CUDA 13.0) but none of Debian's -dev
# libraries: the built programs, every shared library they load except
# LibTorch, its nvidia libraries and the C/C++ runtime (that machine's torch
# and system provide those), the configs and gpu-check.sh, in one xz tarball
# of about 52 MiB (190 MiB unpacked: OpenCV's imgcodecs alone loads GDAL, GDCM
# and OpenEXR; they are built with BIND_NOW, so every one must travel). The
# check at the end proves the programs start and load nothing from outside
# the bundle but the C runtime and LibTorch. xz -9 takes about 2 minutes.
#
#   scripts/gpu-bundle.sh [BUILD_DIR] [OUT]   (defaults: build, gpu-bundle/segqat-gpu.tar.xz)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
out=${2:-gpu-bundle/segqat-gpu.tar.xz}
die() { echo "gpu-bundle: $*" >&2; exit 1; }

programs=(segqatd segqat segqat-worker gpu_collectives_check bench_qat_step)
cmake --build "$build" -j "${SEGQAT_JOBS:-2}" --target "${programs[@]}" >/dev/null
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$stage/configs"
for p in "${programs[@]}"; do cp "$build/bin/$p" "$stage/bin/"; done
cp configs/deeplabv3p_mobilenetv2_synthetic.yaml configs/deeplabv3p_mobilenetv2_cityscapes.yaml \
   "$stage/configs/"

# Left to the GPU machine: the C and C++ runtime, LibTorch and its CUDA libraries.
provided='^(linux-vdso|ld-linux|libc|libm|libmvec|libdl|librt|libpthread|libutil|libresolv|libanl|libnsl|libstdc\+\+|libgcc_s)\.so'
closure() {  # name=>path of every library the staged programs load
  for p in "$stage"/bin/*; do LD_LIBRARY_PATH="$stage/lib" ldd "$p"; done |
    awk '/=>/ && $3 ~ /^\// {print $1 " " $3}' | sort -u
}
while read -r name path; do
  [[ "$name" =~ $provided || "$path" == */site-packages/* ]] && continue
  cp -L "$path" "$stage/lib/$name"
done < <(closure)

# Every library must now resolve inside the bundle.
while read -r name path; do
  [[ "$name" =~ $provided || "$path" == */site-packages/* || "$path" == "$stage"/lib/* ]] ||
    die "$name would load from $path, outside the bundle"
done < <(closure)
LD_LIBRARY_PATH="$stage/lib" "$stage/bin/segqat-worker" version >/dev/null ||
  die "segqat-worker does not start on the bundled libraries"

mkdir -p "$(dirname "$out")"
tar -C "$stage" -cf - . | xz -9 -T2 >"$out"
cp scripts/gpu-check.sh "$(dirname "$out")/"
echo "gpu-bundle: $out: $(ls "$stage/lib" | wc -l) libraries, $(du -sm "$stage" | cut -f1) MiB" \
     "unpacked, $(( $(stat -c %s "$out") / 1048576 )) MiB packed"
