#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, its driver and a python3
# whose torch is 2.11.0 with CUDA 13.0, and none of Debian's -dev libraries
# (our H200 test machine): it runs the programs that scripts/gpu-bundle.sh
# packed on a build machine. About 5 minutes on one H200; writes everything it
# prints to OUT_DIR/gpu-check.log.
#   1. segqat-worker version: LibTorch, CUDA, cuDNN, NCCL, the GPUs it sees
#   2. one NCCL all-reduce (one rank on cuda:0) and a 2-rank Gloo group on
#      CUDA tensors
#   3. segqatd + `segqat-worker serve --gpus all`: a float job and then the
#      seed's QAT job, each placed on cuda:0 (--gpus 1); the QAT job's first
#      steps' losses beside the same QAT run on the CPU (same data, seed and
#      float model)
#   4. the GPU-trained QAT checkpoint evaluated on the CPU: simulated (fake
#      quant) against converted (the INT8 engine) mIoU
#   5. float and QAT step times on the GPU beside the CPU's (bench_qat_step)
#
#   scripts/gpu-check.sh OUT_DIR [BUNDLE]   (BUNDLE: gpu-bundle/segqat-gpu.tar.xz)
# Environment: SEGQAT_PYTHON (python3), SEGQAT_FLOAT_EPOCHS (10),
# SEGQAT_QAT_EPOCHS (3), SEGQAT_CPU_ROUNDS (5). Without a GPU it runs every
# step on the CPU (a dry run of the script).
set -uo pipefail
out=${1:?usage: scripts/gpu-check.sh OUT_DIR [BUNDLE]}
bundle=${2:-gpu-bundle/segqat-gpu.tar.xz}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.log") 2>&1
step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }
die() { echo "gpu-check: FAILED: $*"; exit 1; }

root=$(mktemp -d /tmp/segqat-gpu.XXXXXX)
tar -C "$root" -xJf "$bundle" || die "cannot unpack $bundle"
python=${SEGQAT_PYTHON:-python3}
torch_lib=$("$python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') ||
  die "$python has no torch"
export LD_LIBRARY_PATH="$root/lib:$torch_lib"
bin=$root/bin cfg=$root/configs/deeplabv3p_mobilenetv2_synthetic.yaml work=$root/work
mkdir -p "$work"
pids=()
# Only the servers: a bare `wait` would also wait for the tee above, forever.
trap 'kill -9 "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null' EXIT

step "versions"
nvidia-smi -L 2>/dev/null || echo "(no nvidia-smi)"
"$python" -c 'import torch; print("python torch", torch.__version__, "sees", torch.cuda.device_count(), "GPU(s)")'
"$bin/segqat-worker" version || die "segqat-worker does not start"
gpus=(--gpus 1)
if ! "$bin/segqat-worker" version | grep -q "^GPU cuda:0"; then
  echo "no GPU visible: a dry run, every job on the CPU and no GPU timings"
  gpus=()
fi

step "collectives: NCCL, one rank; Gloo, two ranks on CUDA tensors"
"$bin/gpu_collectives_check" --port $((21000 + RANDOM % 20000)) || echo "gpu-check: collectives FAILED"

step "dataset"
"$bin/segqat-worker" make-dataset --out "$work/data" --train 64 --val 16 --height 128 --width 256 \
    --seed 7 || die "make-dataset"
ds=(DATASET.DATA_DIR "$work/data" DATASET.TRAIN_FILE_LIST "$work/data/train_list.txt"
    DATASET.VAL_FILE_LIST "$work/data/val_list.txt")
qat=(MODEL.DEEPLAB.ENCODER_WITH_ASPP False
     MODEL.DEEPLAB.ENABLE_DECODER False TRAIN.SYNC_BATCH_NORM False SOLVER.LR 0.0001
     TRAIN.SNAPSHOT_EPOCH 1 SOLVER.NUM_EPOCHS "${SEGQAT_QAT_EPOCHS:-3}")

step "segqatd + segqat-worker serve --gpus all"
port=$((21000 + RANDOM % 20000))
"$bin/segqatd" --listen 127.0.0.1:$port --data-dir "$work/server" --local-workers 0 \
    >"$work/segqatd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/segqatd.log" && break; sleep 0.1; done
"$bin/segqat-worker" serve --server 127.0.0.1:$port --gpus all --name gpu \
    --work-dir "$work/worker" >"$work/worker.log" 2>&1 &
pids+=($!)
sleep 3
segqat() { "$bin/segqat" --server 127.0.0.1:$port "$@"; }
name() { "$python" -c 'import json, sys; print(json.load(sys.stdin)["name"])'; }
segqat workers

step "float job on cuda:0"
float=$(segqat train --cfg "$cfg" --do_eval "${gpus[@]}" --wait --json "${ds[@]}" \
        SOLVER.NUM_EPOCHS "${SEGQAT_FLOAT_EPOCHS:-10}" |
        name) || die "float job"
segqat get "$float"
step "QAT job on cuda:0 (the seed's recipe)"
quant=$(segqat train --quant --not_quant_pattern last_conv --cfg "$cfg" --do_eval "${gpus[@]}" \
        --log_steps 1 --wait --json "${ds[@]}" \
        TRAIN.PRETRAINED_MODEL_DIR "$float/best_model" "${qat[@]}" | name) || die "QAT job"
segqat get "$quant"
grep -m3 -E "cuda:0|device" "$work/worker.log"
segqat download "$float" best_model -o "$work/float" >/dev/null || die "download float"
segqat download "$quant" best_model -o "$work/quant" >/dev/null || die "download QAT"
grep -F "[job ${quant#jobs/}]" "$work/worker.log" >"$work/gpu_quant.log"

step "the same QAT run on the CPU"
"$bin/segqat-worker" train --quant --not_quant_pattern last_conv --cfg "$cfg" --log_steps 1 "${ds[@]}" \
    TRAIN.PRETRAINED_MODEL_DIR "$work/float/best_model" TRAIN.MODEL_SAVE_DIR "$work/cpu_quant" \
    "${qat[@]}" SOLVER.NUM_EPOCHS 1 >"$work/cpu_quant.log" 2>&1 || die "CPU QAT run"
losses() { grep -o "step=[0-9]* lr=[0-9.]* loss=[0-9.]*" "$1" | head -8 | sed 's/ lr=[0-9.]*//'; }
paste <(echo "GPU (cuda:0, via segqatd)"; losses "$work/gpu_quant.log") \
      <(echo "CPU"; losses "$work/cpu_quant.log") | expand -t 28

step "the GPU-trained QAT model on the CPU: simulated against converted (INT8 engine)"
"$bin/segqat-worker" eval --cfg "$cfg" --not_quant_pattern last_conv \
    --metrics-json "$work/sim.json" "${ds[@]}" TEST.TEST_MODEL "$work/quant/best_model" \
    >"$work/eval_sim.log" 2>&1 || { tail -3 "$work/eval_sim.log"; die "eval (simulated)"; }
"$bin/segqat-worker" eval --cfg "$cfg" --convert --metrics-json "$work/int8.json" \
    "${ds[@]}" TEST.TEST_MODEL "$work/quant/best_model" \
    >"$work/eval_int8.log" 2>&1 || { tail -3 "$work/eval_int8.log"; die "eval --convert"; }
"$python" - "$work/sim.json" "$work/int8.json" <<'PY'
import json, sys
sim, int8 = (json.load(open(p))["miou"] for p in sys.argv[1:3])
print("mIoU simulated %.4f  converted %.4f  converted - simulated %+.4f points"
      % (sim, int8, (int8 - sim) * 100))
PY

step "step times: GPU beside CPU (bench_qat_step, batch 8, 512x1024 on the GPU; batch 2, 256x512 on both)"
bench=(--cfg "$root/configs/deeplabv3p_mobilenetv2_cityscapes.yaml")
if [ ${#gpus[@]} -gt 0 ]; then
  "$bin/bench_qat_step" "${bench[@]}" --device cuda:0 --rounds 20 --batch 8 --height 512 --width 1024
  "$bin/bench_qat_step" "${bench[@]}" --device cuda:0 --rounds 20
fi
"$bin/bench_qat_step" "${bench[@]}" --device cpu --rounds "${SEGQAT_CPU_ROUNDS:-5}"
echo
echo "gpu-check: done in ${SECONDS}s"
