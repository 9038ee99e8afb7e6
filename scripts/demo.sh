#!/usr/bin/env bash
# The main job end to end on the embedded default: builds what is missing,
# starts segqatd (SQLite job store, local artifact directory, in-process
# worker), generates a Cityscapes-like dataset, trains the float base model,
# runs the seed's QAT recipe on it through the CLI, converts and evaluates
# the INT8 model, downloads it, and prints float and INT8 mIoU side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/install-python.sh
cmake -S . -B build -G Ninja >/dev/null
cmake --build build -j "${SEGQAT_JOBS:-2}" --target segqatd segqat segqat-worker

out=$(realpath -m "${SEGQAT_DEMO_DIR:-./demo-out}")
listen=${SEGQAT_LISTEN:-127.0.0.1:50051}
cfg=configs/deeplabv3p_mobilenetv2_synthetic.yaml
rm -rf "$out" && mkdir -p "$out"

build/bin/segqatd --listen "$listen" --data-dir "$out/segqat-data" >"$out/segqatd.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "listening on" "$out/segqatd.log" && break; sleep 0.1; done
segqat() { build/bin/segqat --server "$listen" "$@"; }
json() { /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

echo "== dataset"
build/bin/segqat-worker make-dataset --out "$out/dataset" --train 64 --val 16 --height 128 --width 256
data=(DATASET.DATA_DIR "$out/dataset" DATASET.TRAIN_FILE_LIST "$out/dataset/train_list.txt"
      DATASET.VAL_FILE_LIST "$out/dataset/val_list.txt")

echo "== float base model (segqat train)"
float=$(segqat train --cfg "$cfg" --do_eval --log_steps 8 --wait --json "${data[@]}" | json "['name']")

echo "== quant-aware training, the seed's recipe (segqat train --quant)"
quant=$(segqat train --quant --log_steps 8 --not_quant_pattern last_conv --cfg "$cfg" --do_eval \
  --wait --json "${data[@]}" TRAIN.PRETRAINED_MODEL_DIR "$float/best_model" \
  MODEL.DEEPLAB.ENCODER_WITH_ASPP False MODEL.DEEPLAB.ENABLE_DECODER False \
  TRAIN.SYNC_BATCH_NORM False SOLVER.LR 0.0001 TRAIN.SNAPSHOT_EPOCH 1 SOLVER.NUM_EPOCHS 6 \
  | json "['name']")

echo "== evaluation: float, and the converted INT8 model (segqat eval --convert)"
eval_float=$(segqat eval --cfg "$cfg" --wait --json "${data[@]}" \
  TEST.TEST_MODEL "$float/best_model" | json "['name']")
eval_int8=$(segqat eval --cfg "$cfg" --convert --wait --json "${data[@]}" \
  TEST.TEST_MODEL "$quant/best_model" | json "['name']")

echo "== download"
segqat download "$eval_int8" int8 -o "$out/int8_model"
segqat download "$eval_float" metrics.json -o "$out/float_eval"
segqat download "$eval_int8" metrics.json -o "$out/int8_eval"

miou() { json "['miou']" <"$1"; }
qat_miou=$(segqat get "$quant" --json | json "['progress']['bestMiou']")
printf '\n%-36s %s\n' "model (generated val set, 16 images)" "mIoU"
printf '%-36s %.4f\n' "float  $float" "$(miou "$out/float_eval/metrics.json")"
printf '%-36s %.4f\n' "QAT    $quant" "$qat_miou"
printf '%-36s %.4f\n' "INT8   $quant (converted)" "$(miou "$out/int8_eval/metrics.json")"
echo "INT8 model (int8 weight codes and scales, torch.load-able) downloaded to $out/int8_model/int8"
