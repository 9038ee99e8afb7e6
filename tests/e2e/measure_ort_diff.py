"""Where ONNX Runtime and TorchScript first part from segqat's INT8 engine,
per seed: the e2e tests' models (float from scratch, then QAT 8-bit, QAT
7-bit and PTQ KL, the seed's recipe with last_conv float) diffed with
`segqat-worker diff --runtime onnx|torchscript` over the 16 val images. The
figures in docs/deploy.md come from here.

  SEGQAT_WORKER=build/bin/segqat-worker .venv/bin/python \\
      tests/e2e/measure_ort_diff.py [--form qdq|exact|torchscript] [SEED ...]
      (default: all three; seeds 7 8 9 10)

--form: qdq and exact are FREEZE.ONNX_FORM of the model.onnx that ONNX
Runtime runs (engine/export/onnx_model.h); torchscript diffs model.ts.
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqat_e2e import SYNTHETIC_CFG, dataset_overrides, run  # noqa: E402

RECIPE = ["MODEL.DEEPLAB.ENCODER_WITH_ASPP", "False", "MODEL.DEEPLAB.ENABLE_DECODER", "False"]


def ort_diff(work, name, ds, model, form):
    out = os.path.join(work, name + "_ort.json")
    runtime = ["--runtime", "torchscript"] if form == "torchscript" else \
        ["--runtime", "onnx", "--python", sys.executable]
    extra = [] if form == "torchscript" else ["FREEZE.ONNX_FORM", form]
    run(["diff", "--cfg", SYNTHETIC_CFG, "--images", "16", "--json", out] + runtime +
        ["TEST.TEST_MODEL", model] + ds + extra, expect_ok=False)
    with open(out) as f:
        return json.load(f)


def summary(seed, name, d):
    first = next((t for t in d["tensors"] if t["differing"] or t["unmatched"]), None)
    codes = sum(t["codes"] for t in d["tensors"])
    differing = sum(t["differing"] for t in d["tensors"])
    worst = max(t["max_difference"] for t in d["tensors"])
    where = ("%s (%s; %s): %d of %d codes, by %d" %
             (first["name"], first["op"], first["runtime_op"], first["differing"],
              first["codes"], first["max_difference"]) if first else "none")
    print("seed %s %-14s pixels %.2f%%  codes differing %.3f%% (max %d)  first: %s" %
          (seed, name, 100 * d["pixel_agreement"], 100.0 * differing / codes, worst, where),
          flush=True)


def main(seeds, forms):
    for seed in seeds:
        work = tempfile.mkdtemp(prefix="segqat_ort_diff_")
        try:
            data = os.path.join(work, "data")
            run(["make-dataset", "--out", data, "--train", "64", "--val", "16",
                 "--height", "128", "--width", "256", "--seed", seed])
            ds = dataset_overrides(data) + ["TRAIN.SEED", seed]
            float_dir = os.path.join(work, "float")
            run(["train", "--cfg", SYNTHETIC_CFG, "--do_eval", "--log_steps", "80"] + ds +
                ["TRAIN.MODEL_SAVE_DIR", float_dir, "TRAIN.SNAPSHOT_EPOCH", "40"])
            base = os.path.join(float_dir, "best_model")
            qat = ["train", "--quant", "--log_steps", "80", "--not_quant_pattern", "last_conv",
                   "--cfg", SYNTHETIC_CFG, "--do_eval"] + ds + RECIPE + [
                "TRAIN.PRETRAINED_MODEL_DIR", base, "TRAIN.SYNC_BATCH_NORM", "False",
                "SOLVER.LR", "0.0001", "TRAIN.SNAPSHOT_EPOCH", "10"]
            models = {}
            for name, epochs, bits in (("QAT-8", "6", "8"), ("QAT-7", "4", "7")):
                out = os.path.join(work, name)
                run(qat + ["TRAIN.MODEL_SAVE_DIR", out, "SOLVER.NUM_EPOCHS", epochs,
                           "SLIM.activation_bits", bits])
                models[name] = os.path.join(out, "best_model")
            ptq = os.path.join(work, "ptq")
            run(["ptq", "--cfg", SYNTHETIC_CFG, "--not_quant_pattern", "last_conv", "--calib",
                 "kl"] + ds + RECIPE +
                ["TRAIN.PRETRAINED_MODEL_DIR", os.path.join(float_dir, "final"),
                 "TRAIN.MODEL_SAVE_DIR", ptq])
            models["PTQ-KL"] = os.path.join(ptq, "final")
            for name, model in models.items():
                for form in forms:
                    summary(seed, "%s %s" % (name, form), ort_diff(work, name, ds, model, form))
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    forms = ["qdq", "exact", "torchscript"]
    if args[:1] == ["--form"]:
        forms, args = [args[1]], args[2:]
    main(args or ["7", "8", "9", "10"], forms)
