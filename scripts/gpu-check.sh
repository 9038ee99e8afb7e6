#!/usr/bin/env bash
# Builds segqat against a CUDA LibTorch and runs the GPU paths: one job placed
# with --gpus 1 on a worker that offers its GPU, and, where two GPUs are
# present, a 2-rank data-parallel job (one rank per GPU). For a machine with
# NVIDIA GPUs and PyTorch with CUDA (its share/cmake/Torch is a CUDA LibTorch);
# the other build dependencies as scripts/install-deps.sh installs them.
#
#   scripts/gpu-check.sh [TORCH_CMAKE_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
torch_dir="${1:-$(python3 -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "share/cmake/Torch"))')}"
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print("GPUs:", torch.cuda.device_count())'
gpus=$(python3 -c 'import torch; print(torch.cuda.device_count())')

cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTorch_DIR="$torch_dir" \
      -DSEGQAT_BUILD_TESTS=OFF -DSEGQAT_BUILD_BENCH=OFF
cmake --build build-gpu -j "$(nproc)"
bin=build-gpu/bin

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin/segqat-worker" make-dataset --out "$work/data" --train 32 --val 8 --height 128 --width 256
ds=(DATASET.DATA_DIR "$work/data" DATASET.TRAIN_FILE_LIST "$work/data/train_list.txt"
    DATASET.VAL_FILE_LIST "$work/data/val_list.txt" SOLVER.NUM_EPOCHS 2 BATCH_SIZE 4)
port=$((20000 + RANDOM % 20000))
"$bin/segqatd" --listen 127.0.0.1:$port --data-dir "$work/server" --local-workers 0 &
sleep 2
"$bin/segqat-worker" serve --server 127.0.0.1:$port --gpus all --name gpu \
    --work-dir "$work/worker" &
sleep 2
"$bin/segqat" --server 127.0.0.1:$port workers
echo "== one job on one GPU"
"$bin/segqat" --server 127.0.0.1:$port train --cfg configs/deeplabv3p_mobilenetv2_synthetic.yaml \
    --do_eval --gpus 1 --wait "${ds[@]}"
if [ "$gpus" -ge 2 ]; then
  echo "== a 2-rank data-parallel job, one rank per GPU"
  "$bin/segqat" --server 127.0.0.1:$port train --cfg configs/deeplabv3p_mobilenetv2_synthetic.yaml \
      --gpus 1 --workers 2 --wait "${ds[@]}"
else
  echo "== one GPU: the 2-rank job needs two"
fi
echo "gpu-check: OK"
