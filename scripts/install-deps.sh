#!/usr/bin/env bash
# Installs every Debian 12 package segqat needs to build, test and run.
# Idempotent: packages already present are left as they are.
set -euo pipefail

packages=(
  # build
  cmake g++ pkg-config ninja-build
  # engine
  libgloo-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev
  libspdlog-dev libfmt-dev libyaml-cpp-dev libabsl-dev nlohmann-json3-dev
  # service
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libsqlite3-dev libssl-dev libcpp-httplib-dev
  # exports
  libonnx-dev libzip-dev
  # tests and outside checks
  libgtest-dev libgmock-dev
  clang libclang-rt-14-dev clang-format
  python3-venv python3-matplotlib python3-numpy python3-onnx python3-pil python3-grpcio python3-grpc-tools python3-protobuf
  prometheus
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: installed ${missing[*]}"
