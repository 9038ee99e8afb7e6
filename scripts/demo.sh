#!/usr/bin/env bash
# The main job end to end on generated data: float base model from scratch,
# the seed's QAT recipe on it, conversion to INT8, and the three mIoUs side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "${SEGQAT_JOBS:-2}" --target segqat-worker

out=${SEGQAT_DEMO_DIR:-./demo-out}
worker=build/bin/segqat-worker
cfg=configs/deeplabv3p_mobilenetv2_synthetic.yaml
rm -rf "$out"
"$worker" make-dataset --out "$out/dataset" --train 64 --val 16 --height 128 --width 256
data=(DATASET.DATA_DIR "$out/dataset" DATASET.TRAIN_FILE_LIST "$out/dataset/train_list.txt"
      DATASET.VAL_FILE_LIST "$out/dataset/val_list.txt")

echo "== float training from scratch"
"$worker" train --cfg "$cfg" --do_eval --log_steps 40 "${data[@]}" TRAIN.MODEL_SAVE_DIR "$out/float"

echo "== quant-aware training (the seed's recipe)"
"$worker" train --quant --log_steps 8 --not_quant_pattern last_conv --cfg "$cfg" --do_eval \
  "${data[@]}" TRAIN.PRETRAINED_MODEL_DIR "$out/float/best_model" \
  TRAIN.MODEL_SAVE_DIR "$out/quant" MODEL.DEEPLAB.ENCODER_WITH_ASPP False \
  MODEL.DEEPLAB.ENABLE_DECODER False TRAIN.SYNC_BATCH_NORM False SOLVER.LR 0.0001 \
  TRAIN.SNAPSHOT_EPOCH 1 SOLVER.NUM_EPOCHS 6

echo "== evaluation"
"$worker" eval --cfg "$cfg" --metrics-json "$out/float.json" TEST.TEST_MODEL "$out/float/best_model" "${data[@]}"
"$worker" eval --cfg "$cfg" --metrics-json "$out/qat.json" TEST.TEST_MODEL "$out/quant/best_model" "${data[@]}"
"$worker" eval --cfg "$cfg" --convert --metrics-json "$out/int8.json" TEST.TEST_MODEL "$out/quant/best_model" "${data[@]}"

miou() { sed -e 's/.*"miou": \([0-9.]*\).*/\1/' "$1"; }
printf '\n%-28s %s\n' "model" "mIoU"
printf '%-28s %s\n' "float (best_model)" "$(miou "$out/float.json")"
printf '%-28s %s\n' "QAT (best_model)" "$(miou "$out/qat.json")"
printf '%-28s %s\n' "INT8 (converted)" "$(miou "$out/int8.json")"
